"""`aimlapi-audio`: the AI/ML API's current music route, one file per request, several model families.

POST /v2/generate/audio {model, ...} -> {id, status}; GET /v2/generate/audio?generation_id=<id> until completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence
from typing import Any

import aiohttp

from bot.backends.aimlapi_gateway import gateway_error
from bot.backends.base import (
    Capabilities,
    Instrumental,
    JsonClient,
    ModelSpec,
    PollUpdate,
    Submission,
    text_field,
)
from bot.backends.spec import AdapterSpec, BackendConfig
from bot.errors import MusicApiBadResponseError, MusicApiContentPolicyError, MusicApiInvalidRequestError
from bot.models import Clip, ClipStatus, GenerationMode, GenerationRequest

MINIMAX = "minimax/music-2.6"
ELEVEN = "elevenlabs/eleven_music"
LYRIA = "google/lyria2"
STABLE_AUDIO = "stable-audio"

# Limits from each model's schema on docs.aimlapi.com (providers.md §1).
CAPABILITIES = Capabilities(
    models=(
        ModelSpec(MINIMAX, max_prompt_chars=2000, max_tags_chars=2000, max_lyrics_chars=3000, max_title_chars=80),
        ModelSpec(
            ELEVEN,
            custom_lyrics=False,
            instrumental=Instrumental.NEVER,
            duration_range=(10, 300),
            max_prompt_chars=2000,
        ),
        ModelSpec(LYRIA, custom_lyrics=False, instrumental=Instrumental.ALWAYS, max_prompt_chars=2000),
        ModelSpec(
            STABLE_AUDIO,
            custom_lyrics=False,
            instrumental=Instrumental.ALWAYS,
            duration_range=(1, 47),
            max_prompt_chars=2000,
        ),
    ),
    default_model=MINIMAX,
    outputs_per_request=1,
    cover_art=False,
    writes_titles=False,
    poll_batch_size=1,
)
# The schema's enum is queued|generating|completed|error; prose says "complete"; old samples loop on "waiting".
_STATUSES = {
    "queued": ClipStatus.QUEUED,
    "waiting": ClipStatus.QUEUED,
    "generating": ClipStatus.STREAMING,
    "completed": ClipStatus.COMPLETE,
    "complete": ClipStatus.COMPLETE,
    "error": ClipStatus.ERROR,
}
_CONTENT_POLICY = re.compile(r"policy|moderat|sensitive|safety|prohibited", re.I)
PROBE_GENERATION_ID = "musicbot-probe"


def request_body(request: GenerationRequest) -> dict[str, Any]:
    """The bot's request in the chosen model's own fields (validation already refused what it can't take)."""
    model = request.model or CAPABILITIES.default_model
    body: dict[str, Any] = {"model": model}
    if model == MINIMAX:
        if request.mode is GenerationMode.CUSTOM:
            body["prompt"] = request.tags or ""
            if request.prompt:
                body["lyrics"] = request.prompt
        else:
            body["prompt"] = request.prompt
            body["lyrics_optimizer"] = not request.instrumental
        body["is_instrumental"] = request.instrumental
    else:
        body["prompt"] = request.prompt
    if request.duration_seconds is not None and model == ELEVEN:
        body["music_length_ms"] = request.duration_seconds * 1000
    if request.duration_seconds is not None and model == STABLE_AUDIO:
        body["seconds_total"] = request.duration_seconds
    return body


def parse_generation(key: str, payload: object) -> PollUpdate:
    if not isinstance(payload, dict):
        raise MusicApiBadResponseError(f"expected a generation object, got {type(payload).__name__}")
    raw_status = text_field(payload.get("status")).lower()
    status = _STATUSES.get(raw_status, ClipStatus.QUEUED)
    audio = payload.get("audio_file")
    audio_url = text_field(audio.get("url")) if isinstance(audio, dict) else ""
    error = payload.get("error")
    error_name = text_field(error.get("name")) if isinstance(error, dict) else ""
    error_message = text_field(error.get("message")) if isinstance(error, dict) else ""
    if status is ClipStatus.COMPLETE and not audio_url:
        status, error_message = ClipStatus.ERROR, error_message or "completed without an audio file"
    clip = Clip(id=key, status=status, audio_url=audio_url, error_message=error_message or error_name)
    task_error = None
    if status is ClipStatus.ERROR and _CONTENT_POLICY.search(f"{error_name} {error_message}"):
        task_error = MusicApiContentPolicyError(error_message or error_name)
    return PollUpdate(key=key, clips=(clip,), done=status.is_terminal, error=task_error)


class AimlAudioBackend:
    name = "aimlapi-audio"
    capabilities = CAPABILITIES

    def __init__(self, session: aiohttp.ClientSession, config: BackendConfig) -> None:
        self._http = JsonClient(
            session,
            config.base_url,
            gateway_error,
            headers={"Authorization": f"Bearer {config.api_key}"},
            request_timeout=config.request_timeout,
        )

    async def submit(
        self, request: GenerationRequest, *, wait_audio: bool, callback_url: str | None = None
    ) -> Submission:
        """Always asynchronous: there is no wait_audio here, the generation id is polled."""
        payload = await self._http.request("POST", "/v2/generate/audio", json_body=request_body(request))
        generation_id = text_field(payload.get("id")) if isinstance(payload, dict) else ""
        if not generation_id:
            raise MusicApiBadResponseError("submit answered without a generation id")
        queued = Clip(id=generation_id, status=ClipStatus.QUEUED)
        return Submission(poll_keys=(generation_id,), clips=(queued,), task_id=generation_id)

    async def poll(self, keys: Sequence[str]) -> list[PollUpdate]:
        return list(await asyncio.gather(*(self._poll_one(key) for key in keys)))

    async def _poll_one(self, key: str) -> PollUpdate:
        payload = await self._http.request("GET", "/v2/generate/audio", params=[("generation_id", key)])
        return parse_generation(key, payload)

    async def probe(self) -> str:
        """Asks for a generation that cannot exist: a bad key is refused (401) before the lookup fails."""
        with contextlib.suppress(MusicApiInvalidRequestError):  # 404 for the unknown id: the key was accepted
            await self._poll_one(PROBE_GENERATION_ID)
        return "answers and accepts the key"


ADAPTER = AdapterSpec(
    name="aimlapi-audio",
    summary="AI/ML API /v2/generate/audio: MiniMax music-2.6 (default), ElevenLabs Music, Lyria 2, Stable Audio",
    cost_unit="AI/ML API credits",
    default_cost=390_000,
    capabilities=CAPABILITIES,
    create=AimlAudioBackend,
    error_for_status=gateway_error,
    base_url_setting="aiml_api_base_url",
    key_setting="aiml_api_key",
)
