"""`aimlapi-suno`: the AI/ML API's "[old] Music Generation" (Suno v3.5) routes, the seed's backend.

POST /generate and /generate/custom-mode (wait_audio), then GET /?ids[0]=..&ids[1]=.. in batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from bot.backends import AdapterSpec
from bot.backends.aimlapi_gateway import gateway_error
from bot.backends.base import Capabilities, DownloadedAudio, JsonClient, ModelSpec, PollUpdate, Submission
from bot.backends.suno_clips import clip_updates, parse_clips
from bot.errors import MusicApiBadResponseError
from bot.models import GenerationMode, GenerationRequest

if TYPE_CHECKING:
    from bot.settings import Settings

# Caps from upstream-api.md §1.3 (documented by Suno resellers for v3.5; aimlapi documents none).
CAPABILITIES = Capabilities(
    models=(ModelSpec("chirp-v3-5"), ModelSpec("chirp-v3-0")),
    default_model="chirp-v3-5",
    outputs_per_request=2,
    cover_art=True,
    writes_titles=True,
)
PROBE_CLIP_ID = "00000000-0000-0000-0000-000000000000"


class AimlSunoBackend:
    name = "aimlapi-suno"
    capabilities = CAPABILITIES

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str,
        wait_audio_timeout: float,
        request_timeout: float,
        min_download_bytes_per_second: int = 0,
    ) -> None:
        self._http = JsonClient(
            session,
            base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            request_timeout=request_timeout,
            error_for_status=gateway_error,
            min_download_bytes_per_second=min_download_bytes_per_second,
        )
        self._wait_audio_timeout = wait_audio_timeout
        self._request_timeout = request_timeout

    async def submit(self, request: GenerationRequest, *, wait_audio: bool) -> Submission:
        # make_instrumental and wait_audio are required by the DTO; model only when the member chose one,
        # since aimlapi never documented the field (upstream-api.md §1.1).
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
        clips = parse_clips(await self._http.request("POST", path, json_body=body, timeout=timeout))
        if not clips:
            raise MusicApiBadResponseError("generate answered with no clips")
        return Submission(poll_keys=tuple(clip.id for clip in clips), clips=tuple(clips))

    async def poll(self, keys: Sequence[str]) -> list[PollUpdate]:
        params = [(f"ids[{index}]", clip_id) for index, clip_id in enumerate(keys)]
        return clip_updates(parse_clips(await self._http.request("GET", "/", params=params)))

    async def download(self, url: str, destination: Path, *, max_bytes: int, time_limit: float) -> DownloadedAudio:
        return await self._http.download(url, destination, max_bytes=max_bytes, time_limit=time_limit)

    async def probe(self) -> str:
        """Fetches a clip id that cannot exist: free, and it proves the URL and the key."""
        await self.poll([PROBE_CLIP_ID])
        return "answers and accepts the key"


def _create(settings: Settings, session: aiohttp.ClientSession) -> AimlSunoBackend:
    return AimlSunoBackend(
        session,
        base_url=settings.aiml_api_base_url,
        api_key=settings.secret("aiml_api_key"),
        wait_audio_timeout=settings.wait_audio_timeout_seconds,
        request_timeout=settings.http_timeout_seconds,
        min_download_bytes_per_second=settings.download_min_bytes_per_second,
    )


ADAPTER = AdapterSpec(
    name="aimlapi-suno",
    summary="AI/ML API Suno v3.5 routes (POST /generate, GET /?ids[0]=); listed as no longer available upstream",
    cost_unit="AI/ML API tokens",
    default_cost=157_500,
    required_settings=("aiml_api_key",),
    capabilities=CAPABILITIES,
    create=_create,
    base_url_setting="aiml_api_base_url",
)
