"""The backend interface the core uses, its capabilities and results, and the HTTP plumbing adapters share."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import aiohttp

from bot.errors import (
    MusicApiBadResponseError,
    MusicApiError,
    MusicApiTimeoutError,
    MusicApiUnavailableError,
)
from bot.models import Clip, GenerationRequest

ERROR_DETAIL_CHARS = 300
ERROR_BODY_BYTES = 4 * 1024  # enough for the API's own words; reading stops there
MAX_ANSWER_BYTES = 2 * 1024 * 1024  # no real answer comes near this; a larger one is a bad response
PARSE_ON_LOOP_BYTES = 64 * 1024  # larger answers are parsed in a thread, so the event loop does not stall


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
    # The provider pushes progress to a callback URL (each push wakes the job's polling; bot/callbacks.py).
    pushes_progress: bool = False
    # Plain words every message about this backend's jobs carries (the sandbox: "not AI music"); "" for none.
    notice: str = ""

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(model.name for model in self.models)

    def model(self, name: str | None) -> ModelSpec | None:
        wanted = name or self.default_model
        return next((model for model in self.models if model.name == wanted), None)


@dataclass(frozen=True, slots=True)
class ServerProgress:
    """What a provider says of a task it is still making: its place in the provider's own queue (1 = next)
    and how far along it is (0 to 1); either may be unknown. Shown to the requester while they wait."""

    queue_position: int | None = None
    fraction: float | None = None


@dataclass(frozen=True, slots=True)
class Submission:
    """What a paid submit returned: the keys to poll (clip ids, or the provider's task id) and any clips."""

    poll_keys: tuple[str, ...]
    clips: tuple[Clip, ...] = ()
    task_id: str | None = None
    progress: ServerProgress | None = None


@dataclass(frozen=True, slots=True)
class PollUpdate:
    """The state behind one poll key: its clips so far, whether it will change again, a task-wide error, and
    the provider's own word on its progress (where it gives one)."""

    key: str
    clips: tuple[Clip, ...]
    done: bool
    error: MusicApiError | None = None
    progress: ServerProgress | None = None


@dataclass(frozen=True, slots=True)
class DownloadedAudio:
    """A result file on disk: its size, and the format its first bytes announce as a file extension (mp3, wav,
    flac, ogg or m4a), so it can be named for what it is."""

    size: int
    format: str


class MusicBackend(Protocol):
    """A music provider. Submit is paid and never repeated blindly; poll and probe are free. Result files are
    fetched by the AudioDownloader (bot/backends/downloads.py), not by the backend."""

    name: str

    @property
    def capabilities(self) -> Capabilities:
        """What it offers; a backend that reads its models from its server may change them while it runs."""
        ...

    async def submit(
        self, request: GenerationRequest, *, wait_audio: bool, callback_url: str | None = None
    ) -> Submission:
        """`callback_url`: this job's own address on the bot's HTTP server, for providers that push their
        progress there (a push only wakes the job's polling); None when the bot has no public address."""
        ...

    async def poll(self, keys: Sequence[str]) -> list[PollUpdate]: ...

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


async def read_prefix(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most `limit` bytes of the body; reading stops there, and the rest is never received."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def read_error_text(response: aiohttp.ClientResponse) -> str:
    """The start of an error body, enough for the API's own words (a huge error body is never read whole)."""
    return (await read_prefix(response, ERROR_BODY_BYTES)).decode("utf-8", errors="replace")


@dataclass
class JsonClient:
    """One provider's HTTP calls over the process's shared session: JSON in, JSON out, typed errors."""

    session: aiohttp.ClientSession
    base_url: str
    error_for_status: Callable[[int, str], MusicApiError]
    headers: dict[str, str] = field(default_factory=dict)
    request_timeout: float = 30.0

    async def request(
        self,
        method: str,
        path: str,
        *,
        timeout: float | None = None,
        json_body: dict[str, Any] | None = None,
        params: list[tuple[str, str]] | None = None,
    ) -> object:
        """The parsed JSON answer; MusicApiBadResponseError for one that is not JSON or over MAX_ANSWER_BYTES."""
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
                if response.status not in (200, 201):
                    raise self.error_for_status(response.status, await read_error_text(response))
                if (response.content_length or 0) > MAX_ANSWER_BYTES:
                    raise _answer_too_large(method, path)
                body = await read_prefix(response, MAX_ANSWER_BYTES + 1)
        except TimeoutError as exc:
            raise MusicApiTimeoutError(f"{method} {path} got no answer within {limit:.0f}s") from exc
        except aiohttp.ClientError as exc:
            raise MusicApiUnavailableError(f"{method} {path} failed: {type(exc).__name__}: {exc}") from exc
        if len(body) > MAX_ANSWER_BYTES:
            raise _answer_too_large(method, path)
        try:
            if len(body) > PARSE_ON_LOOP_BYTES:
                return await asyncio.to_thread(json.loads, body)
            return json.loads(body)
        except ValueError as exc:
            preview = body[:80].decode("utf-8", errors="replace")
            raise MusicApiBadResponseError(f"{method} {path} answered with non-JSON: {preview!r}") from exc


def _answer_too_large(method: str, path: str) -> MusicApiBadResponseError:
    return MusicApiBadResponseError(f"{method} {path}: answer larger than {MAX_ANSWER_BYTES // 1024**2} MiB")
