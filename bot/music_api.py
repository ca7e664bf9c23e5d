"""The music API client: the backend interface the core uses, and the AI/ML API Suno adapter behind it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from bot.errors import (
    AudioTooLargeError,
    MusicApiAuthError,
    MusicApiBadResponseError,
    MusicApiCreditsError,
    MusicApiError,
    MusicApiInvalidRequestError,
    MusicApiRateLimitedError,
    MusicApiTimeoutError,
    MusicApiUnavailableError,
)
from bot.models import Clip, ClipStatus, GenerationMode, GenerationRequest

log = logging.getLogger(__name__)

DOWNLOAD_CHUNK_BYTES = 64 * 1024
_ERROR_DETAIL_CHARS = 300


class MusicBackend(Protocol):
    """What the core needs from a music provider. Generate is paid; fetch and download are free and idempotent."""

    name: str

    async def generate(self, request: GenerationRequest, *, wait_audio: bool) -> list[Clip]: ...

    async def fetch_clips(self, clip_ids: Sequence[str]) -> list[Clip]: ...

    async def download(self, url: str, destination: Path, *, max_bytes: int) -> int: ...


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _duration(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value > 0 else None
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return None
        return parsed if parsed > 0 else None
    return None


def parse_clip(raw: object) -> Clip:
    """One AudioInfo object -> Clip. Fields may be null, "" or missing; only a non-empty id is required."""
    if not isinstance(raw, dict):
        raise MusicApiBadResponseError(f"expected a clip object, got {type(raw).__name__}")
    clip_id = _text(raw.get("id"))
    if not clip_id:
        raise MusicApiBadResponseError("clip without an id")
    return Clip(
        id=clip_id,
        status=ClipStatus.parse(raw.get("status")),
        title=_text(raw.get("title")),
        audio_url=_text(raw.get("audio_url")),
        image_url=_text(raw.get("image_url")),
        lyrics=_text(raw.get("lyric")) or _text(raw.get("prompt")),
        tags=_text(raw.get("tags")),
        duration=_duration(raw.get("duration")),
        model_name=_text(raw.get("model_name")),
        error_message=_text(raw.get("error_message")),
    )


def parse_clips(payload: object) -> list[Clip]:
    """The API answers with a bare JSON array of clips."""
    if not isinstance(payload, list):
        raise MusicApiBadResponseError(f"expected a list of clips, got {type(payload).__name__}")
    return [parse_clip(item) for item in payload]


def _error_detail(body: str) -> str:
    """The API's own words from an error body, JSON (`message`, `error`, `detail`) or plain text."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:_ERROR_DETAIL_CHARS] or "(empty body)"
    if isinstance(data, dict):
        for key in ("message", "error", "detail"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value[:_ERROR_DETAIL_CHARS]
    return body.strip()[:_ERROR_DETAIL_CHARS]


def error_for_status(status: int, body: str) -> MusicApiError:
    """Maps an HTTP failure to the typed error the core understands."""
    detail = f"HTTP {status}: {_error_detail(body)}"
    if status == 401:
        return MusicApiAuthError(detail, status=status)
    if status in (402, 403):
        return MusicApiCreditsError(detail, status=status)
    if status == 429:
        return MusicApiRateLimitedError(detail, status=status)
    if status in (400, 404, 413, 422):
        return MusicApiInvalidRequestError(detail, status=status)
    return MusicApiUnavailableError(detail, status=status)


class AimlSunoBackend:
    """AI/ML API `[old] Music Generation` (Suno v3.5): POST /generate, /generate/custom-mode, GET /?ids[n]=."""

    name = "aimlapi-suno"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str,
        wait_audio_timeout: float,
        request_timeout: float,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._wait_audio_timeout = wait_audio_timeout
        self._request_timeout = request_timeout

    async def generate(self, request: GenerationRequest, *, wait_audio: bool) -> list[Clip]:
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "make_instrumental": request.instrumental,
            "wait_audio": wait_audio,
        }
        if request.mode is GenerationMode.CUSTOM:
            path = "/generate/custom-mode"
            body["tags"] = request.tags or ""
            body["title"] = request.title or ""
        else:
            path = "/generate"
        if request.model:
            body["model"] = request.model
        timeout = self._wait_audio_timeout if wait_audio else self._request_timeout
        payload = await self._request_json("POST", path, json_body=body, timeout=timeout)
        clips = parse_clips(payload)
        if not clips:
            raise MusicApiBadResponseError("generate answered with no clips")
        return clips

    async def fetch_clips(self, clip_ids: Sequence[str]) -> list[Clip]:
        params = [(f"ids[{index}]", clip_id) for index, clip_id in enumerate(clip_ids)]
        payload = await self._request_json("GET", "/", params=params, timeout=self._request_timeout)
        return parse_clips(payload)

    async def download(self, url: str, destination: Path, *, max_bytes: int) -> int:
        """Streams the mp3 to `destination`, refusing past `max_bytes`; returns the size written."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._request_timeout, sock_read=self._request_timeout)
        try:
            async with self._session.get(url, timeout=timeout) as response:
                if response.status != 200:
                    raise error_for_status(response.status, await response.text(errors="replace"))
                declared = response.content_length
                if declared is not None and declared > max_bytes:
                    raise AudioTooLargeError(declared, max_bytes)
                return await _stream_to_file(response, destination, max_bytes=max_bytes)
        except TimeoutError as exc:
            raise MusicApiTimeoutError(f"download timed out after {self._request_timeout:.0f}s") from exc
        except aiohttp.ClientError as exc:
            raise MusicApiUnavailableError(f"download failed: {type(exc).__name__}") from exc

    async def _request_json(
        self,
        method: str,
        path: str,
        *,
        timeout: float,
        json_body: dict[str, Any] | None = None,
        params: list[tuple[str, str]] | None = None,
    ) -> object:
        url = self._base_url + path
        try:
            async with self._session.request(
                method,
                url,
                json=json_body,
                params=params,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                body = await response.text(errors="replace")
                if response.status not in (200, 201):
                    raise error_for_status(response.status, body)
        except TimeoutError as exc:
            raise MusicApiTimeoutError(f"{method} {path} got no answer within {timeout:.0f}s") from exc
        except aiohttp.ClientError as exc:
            raise MusicApiUnavailableError(f"{method} {path} failed: {type(exc).__name__}: {exc}") from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise MusicApiBadResponseError(f"{method} {path} answered with non-JSON: {body[:80]!r}") from exc


async def _stream_to_file(response: aiohttp.ClientResponse, destination: Path, *, max_bytes: int) -> int:
    """Writes the body chunk by chunk off the event loop, stopping as soon as it passes the cap."""
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
