"""The gcui-art "AudioInfo" clip APIs (the aimlapi Suno routes, self-hosted suno-api): one backend class,
configured by each API's ClipRoutes, and the clip shape they share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.backends.base import (
    Capabilities,
    JsonClient,
    PollUpdate,
    Submission,
    seconds_field,
    text_field,
)
from bot.backends.spec import BackendConfig
from bot.errors import MusicApiBadResponseError, MusicApiError
from bot.models import Clip, ClipStatus, GenerationMode, GenerationRequest

PROBE_CLIP_ID = "00000000-0000-0000-0000-000000000000"


def indexed_ids(keys: Sequence[str]) -> list[tuple[str, str]]:
    """`?ids[0]=a&ids[1]=b`, as the aimlapi routes take them."""
    return [(f"ids[{index}]", clip_id) for index, clip_id in enumerate(keys)]


def comma_separated_ids(keys: Sequence[str]) -> list[tuple[str, str]]:
    """`?ids=a,b`, as gcui-art's /api/get takes them."""
    return [("ids", ",".join(keys))]


@dataclass(frozen=True, slots=True)
class ClipRoutes:
    """Where one clip API keeps its routes and how it wants to be asked."""

    generate: str
    custom_generate: str
    fetch: str
    ids_params: Callable[[Sequence[str]], list[tuple[str, str]]]
    error_for_status: Callable[[int, str], MusicApiError]
    bearer_auth: bool  # the key goes in `Authorization: Bearer`; a self-hosted server holds its own cookie
    always_send_model: bool  # else `model` only when the member chose one (an undocumented field upstream)
    wait_audio: bool = True  # the generate routes take `wait_audio` and may hold the answer until audio exists
    credits_path: str | None = None  # a free route answering {credits_left}; else probe with an impossible id


class SunoClipsBackend:
    """Submit returns clips, each clip is its own poll key, clip ids are fetched in batches."""

    name: str
    capabilities: Capabilities

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        name: str,
        capabilities: Capabilities,
        routes: ClipRoutes,
        config: BackendConfig,
    ) -> None:
        self.name = name
        self.capabilities = capabilities
        self._routes = routes
        self._http = JsonClient(
            session,
            config.base_url,
            routes.error_for_status,
            headers={"Authorization": f"Bearer {config.api_key}"} if routes.bearer_auth else {},
            request_timeout=config.request_timeout,
        )
        self._wait_audio_timeout = config.wait_audio_timeout
        self._request_timeout = config.request_timeout

    async def submit(
        self, request: GenerationRequest, *, wait_audio: bool, callback_url: str | None = None
    ) -> Submission:
        body: dict[str, Any] = {"prompt": request.prompt, "make_instrumental": request.instrumental}
        waiting = wait_audio and self._routes.wait_audio
        if self._routes.wait_audio:
            body["wait_audio"] = waiting  # required by the DTO where the route has it
        if request.model or self._routes.always_send_model:
            body["model"] = request.model or self.capabilities.default_model
        if request.mode is GenerationMode.CUSTOM:
            path = self._routes.custom_generate
            body["tags"] = request.tags or ""
            body["title"] = request.title or ""
        else:
            path = self._routes.generate
        timeout = self._wait_audio_timeout if waiting else self._request_timeout
        clips = parse_clips(await self._http.request("POST", path, json_body=body, timeout=timeout))
        if not clips:
            raise MusicApiBadResponseError("generate answered with no clips")
        return Submission(poll_keys=tuple(clip.id for clip in clips), clips=tuple(clips))

    async def poll(self, keys: Sequence[str]) -> list[PollUpdate]:
        payload = await self._http.request("GET", self._routes.fetch, params=self._routes.ids_params(keys))
        return clip_updates(parse_clips(payload))

    async def probe(self) -> str:
        """Free: the account's credits where the API shows them, else a clip id that cannot exist (which
        proves the URL and the key)."""
        if self._routes.credits_path is None:
            await self.poll([PROBE_CLIP_ID])
            return "answers and accepts the key"
        limit = await self._http.request("GET", self._routes.credits_path)
        if not isinstance(limit, dict) or "credits_left" not in limit:
            raise MusicApiBadResponseError("get_limit did not answer with credits_left")
        return f"answers; the Suno account has {limit['credits_left']} credits left"


def parse_clip(raw: object) -> Clip:
    """One AudioInfo object -> Clip. Fields may be null, "" or missing; only a non-empty id is required."""
    if not isinstance(raw, dict):
        raise MusicApiBadResponseError(f"expected a clip object, got {type(raw).__name__}")
    clip_id = text_field(raw.get("id"))
    if not clip_id:
        raise MusicApiBadResponseError("clip without an id")
    return Clip(
        id=clip_id,
        status=ClipStatus.parse(raw.get("status")),
        title=text_field(raw.get("title")),
        audio_url=text_field(raw.get("audio_url")),
        image_url=text_field(raw.get("image_url")),
        lyrics=text_field(raw.get("lyric")) or text_field(raw.get("prompt")),
        tags=text_field(raw.get("tags")),
        duration=seconds_field(raw.get("duration")),
        model_name=text_field(raw.get("model_name")),
        error_message=text_field(raw.get("error_message")),
    )


def parse_clips(payload: object) -> list[Clip]:
    """The API answers with a bare JSON array of clips."""
    if not isinstance(payload, list):
        raise MusicApiBadResponseError(f"expected a list of clips, got {type(payload).__name__}")
    return [parse_clip(item) for item in payload]


def clip_updates(clips: list[Clip]) -> list[PollUpdate]:
    """Polling by clip id: each clip is its own key, done once it is complete or failed."""
    return [PollUpdate(key=clip.id, clips=(clip,), done=clip.status.is_terminal) for clip in clips]
