"""The backend interface the core uses, its capabilities and results, and the HTTP plumbing adapters share."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from bot.errors import (
    AudioTooLargeError,
    MusicApiBadResponseError,
    MusicApiError,
    MusicApiTimeoutError,
    MusicApiUnavailableError,
)
from bot.models import Clip, GenerationRequest

DOWNLOAD_CHUNK_BYTES = 64 * 1024
ERROR_DETAIL_CHARS = 300


class Instrumental(StrEnum):
    """How a model treats vocals: a flag the member chooses, always instrumental, or never."""

    FLAG = "flag"
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What one model accepts. Slash-command validation is derived from this, so nothing is silently dropped."""

    name: str
    description_mode: bool = True
    custom_lyrics: bool = True
    lyrics_required: bool = False
    instrumental: Instrumental = Instrumental.FLAG
    duration_range: tuple[int, int] | None = None
    max_prompt_chars: int = 400
    max_lyrics_chars: int = 3000
    max_tags_chars: int = 200
    max_title_chars: int = 80


@dataclass(frozen=True, slots=True)
class Capabilities:
    models: tuple[ModelSpec, ...]
    default_model: str
    outputs_per_request: int
    cover_art: bool
    writes_titles: bool
    # Poll keys per request: None means the POLL_BATCH_SIZE setting; 1 for APIs that poll one task at a time.
    poll_batch_size: int | None = None

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(model.name for model in self.models)

    def model(self, name: str | None) -> ModelSpec | None:
        wanted = name or self.default_model
        return next((model for model in self.models if model.name == wanted), None)


@dataclass(frozen=True, slots=True)
class Submission:
    """What a paid submit returned: the keys to poll (clip ids, or the provider's task id) and any clips."""

    poll_keys: tuple[str, ...]
    clips: tuple[Clip, ...] = ()
    task_id: str | None = None


@dataclass(frozen=True, slots=True)
class PollUpdate:
    """The state behind one poll key: its clips so far, whether it will change again, and a task-wide error."""

    key: str
    clips: tuple[Clip, ...]
    done: bool
    error: MusicApiError | None = None


class MusicBackend(Protocol):
    """A music provider. Submit is paid and never repeated blindly; poll, download and probe are free."""

    name: str
    capabilities: Capabilities

    async def submit(self, request: GenerationRequest, *, wait_audio: bool) -> Submission: ...

    async def poll(self, keys: Sequence[str]) -> list[PollUpdate]: ...

    async def download(self, url: str, destination: Path, *, max_bytes: int) -> int: ...

    async def probe(self) -> str:
        """Proves the URL and the key without spending; returns what it learnt, raises MusicApiError."""
        ...


def text_field(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def seconds_field(value: object) -> float | None:
    """A positive duration from a number or numeric string; anything else is unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float):
        return float(value) if value > 0 else None
    return None


def error_detail(body: str) -> str:
    """The API's own words from an error body, JSON (`message`, `msg`, `error`, `detail`) or plain text."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:ERROR_DETAIL_CHARS] or "(empty body)"
    if isinstance(data, dict):
        for key in ("message", "msg", "error", "detail"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value[:ERROR_DETAIL_CHARS]
    return body.strip()[:ERROR_DETAIL_CHARS]


@dataclass
class JsonClient:
    """One provider's HTTP calls over the process's shared session: JSON in, JSON out, typed errors."""

    session: aiohttp.ClientSession
    base_url: str
    headers: dict[str, str] = field(default_factory=dict)
    request_timeout: float = 30.0
    error_for_status: Callable[[int, str], MusicApiError] | None = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        timeout: float | None = None,
        json_body: dict[str, Any] | None = None,
        params: list[tuple[str, str]] | None = None,
    ) -> object:
        limit = timeout or self.request_timeout
        url = self.base_url.rstrip("/") + path
        try:
            async with self.session.request(
                method,
                url,
                json=json_body,
                params=params,
                headers={"Accept": "application/json", **self.headers},
                timeout=aiohttp.ClientTimeout(total=limit),
            ) as response:
                body = await response.text(errors="replace")
                if response.status not in (200, 201):
                    assert self.error_for_status is not None
                    raise self.error_for_status(response.status, body)
        except TimeoutError as exc:
            raise MusicApiTimeoutError(f"{method} {path} got no answer within {limit:.0f}s") from exc
        except aiohttp.ClientError as exc:
            raise MusicApiUnavailableError(f"{method} {path} failed: {type(exc).__name__}: {exc}") from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise MusicApiBadResponseError(f"{method} {path} answered with non-JSON: {body[:80]!r}") from exc

    async def download(self, url: str, destination: Path, *, max_bytes: int) -> int:
        """A result file (no auth: the providers' file links are public or signed)."""
        assert self.error_for_status is not None
        return await download_audio(
            self.session,
            url,
            destination,
            max_bytes=max_bytes,
            timeout=self.request_timeout,
            error_for_status=self.error_for_status,
        )


async def download_audio(
    session: aiohttp.ClientSession,
    url: str,
    destination: Path,
    *,
    max_bytes: int,
    timeout: float,
    error_for_status: Callable[[int, str], MusicApiError],
) -> int:
    """Streams a file to `destination` off the event loop, refusing past `max_bytes`; returns its size."""
    limits = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
    try:
        async with session.get(url, timeout=limits) as response:
            if response.status != 200:
                raise error_for_status(response.status, await response.text(errors="replace"))
            declared = response.content_length
            if declared is not None and declared > max_bytes:
                raise AudioTooLargeError(declared, max_bytes)
            return await _stream_to_file(response, destination, max_bytes=max_bytes)
    except TimeoutError as exc:
        raise MusicApiTimeoutError(f"download timed out after {timeout:.0f}s") from exc
    except aiohttp.ClientError as exc:
        raise MusicApiUnavailableError(f"download failed: {type(exc).__name__}") from exc


async def _stream_to_file(response: aiohttp.ClientResponse, destination: Path, *, max_bytes: int) -> int:
    handle = await asyncio.to_thread(destination.open, "wb")
    written = 0
    try:
        async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK_BYTES):
            written += len(chunk)
            if written > max_bytes:
                raise AudioTooLargeError(None, max_bytes)
            await asyncio.to_thread(handle.write, chunk)
    finally:
        await asyncio.to_thread(handle.close)
    return written
