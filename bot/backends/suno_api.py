"""`suno-api`: a self-hosted gcui-art/suno-api server, the same clip shape as the seed under /api/...

POST /api/generate and /api/custom_generate, GET /api/get?ids=a,b; no key (the server holds the Suno cookie).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from bot.backends import AdapterSpec
from bot.backends.base import (
    Capabilities,
    DownloadedAudio,
    JsonClient,
    ModelSpec,
    PollUpdate,
    Submission,
    error_detail,
)
from bot.backends.suno_clips import clip_updates, parse_clips
from bot.errors import (
    MusicApiAuthError,
    MusicApiBadResponseError,
    MusicApiCreditsError,
    MusicApiError,
    MusicApiInvalidRequestError,
    MusicApiRateLimitedError,
    MusicApiUnavailableError,
)
from bot.models import GenerationMode, GenerationRequest

if TYPE_CHECKING:
    from bot.settings import Settings

# gcui-art forwards `model` verbatim as Suno's `mv`; these are the names known to work (providers.md §2).
CAPABILITIES = Capabilities(
    models=(ModelSpec("chirp-v3-5"), ModelSpec("chirp-v3-0"), ModelSpec("chirp-v4")),
    default_model="chirp-v3-5",
    outputs_per_request=2,
    cover_art=True,
    writes_titles=True,
)


def suno_api_error(status: int, body: str) -> MusicApiError:
    """gcui-art passes Suno's status through with `{"error": ...}`; 402 is Suno out of credits."""
    detail = f"HTTP {status}: {error_detail(body)}"
    if status == 402:
        return MusicApiCreditsError(detail, status=status)
    if status in (401, 403):
        return MusicApiAuthError(detail + " (the server's SUNO_COOKIE may have expired)", status=status)
    if status == 429:
        return MusicApiRateLimitedError(detail, status=status)
    if status in (400, 404, 413):
        return MusicApiInvalidRequestError(detail, status=status)
    return MusicApiUnavailableError(detail, status=status)


class SunoApiBackend:
    name = "suno-api"
    capabilities = CAPABILITIES

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        wait_audio_timeout: float,
        request_timeout: float,
        min_download_bytes_per_second: int = 0,
    ) -> None:
        self._http = JsonClient(
            session,
            base_url,
            request_timeout=request_timeout,
            error_for_status=suno_api_error,
            min_download_bytes_per_second=min_download_bytes_per_second,
        )
        self._wait_audio_timeout = wait_audio_timeout
        self._request_timeout = request_timeout

    async def submit(self, request: GenerationRequest, *, wait_audio: bool) -> Submission:
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "make_instrumental": request.instrumental,
            "model": request.model or CAPABILITIES.default_model,
            "wait_audio": wait_audio,
        }
        path = "/api/generate"
        if request.mode is GenerationMode.CUSTOM:
            path = "/api/custom_generate"
            body["tags"] = request.tags or ""
            body["title"] = request.title or ""
        timeout = self._wait_audio_timeout if wait_audio else self._request_timeout
        clips = parse_clips(await self._http.request("POST", path, json_body=body, timeout=timeout))
        if not clips:
            raise MusicApiBadResponseError("generate answered with no clips")
        return Submission(poll_keys=tuple(clip.id for clip in clips), clips=tuple(clips))

    async def poll(self, keys: Sequence[str]) -> list[PollUpdate]:
        payload = await self._http.request("GET", "/api/get", params=[("ids", ",".join(keys))])
        return clip_updates(parse_clips(payload))

    async def download(self, url: str, destination: Path, *, max_bytes: int, time_limit: float) -> DownloadedAudio:
        return await self._http.download(url, destination, max_bytes=max_bytes, time_limit=time_limit)

    async def probe(self) -> str:
        """GET /api/get_limit: free, and it shows the Suno account behind the server is usable."""
        limit = await self._http.request("GET", "/api/get_limit")
        if not isinstance(limit, dict) or "credits_left" not in limit:
            raise MusicApiBadResponseError("get_limit did not answer with credits_left")
        return f"answers; the Suno account has {limit['credits_left']} credits left"


def _create(settings: Settings, session: aiohttp.ClientSession) -> SunoApiBackend:
    return SunoApiBackend(
        session,
        base_url=settings.suno_api_base_url,
        wait_audio_timeout=settings.wait_audio_timeout_seconds,
        request_timeout=settings.http_timeout_seconds,
        min_download_bytes_per_second=settings.download_min_bytes_per_second,
    )


ADAPTER = AdapterSpec(
    name="suno-api",
    summary="self-hosted gcui-art/suno-api (POST /api/generate, GET /api/get?ids=); best effort, captcha-prone",
    cost_unit="Suno credits",
    default_cost=10,
    required_settings=(),
    capabilities=CAPABILITIES,
    create=_create,
    base_url_setting="suno_api_base_url",
)
