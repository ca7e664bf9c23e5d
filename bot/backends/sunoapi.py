"""`sunoapi`: the Suno "task" resellers (sunoapi.org, kie.ai). Errors arrive as a `code` inside a JSON
envelope, often with HTTP 200; clips appear only in the task record.

POST /api/v1/generate -> {data: {taskId}}; GET /api/v1/generate/record-info?taskId= until SUCCESS.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import aiohttp

from bot.backends.base import (
    Capabilities,
    JsonClient,
    ModelSpec,
    PollUpdate,
    Submission,
    seconds_field,
    text_field,
)
from bot.backends.spec import AdapterSpec, BackendConfig
from bot.errors import (
    MusicApiAuthError,
    MusicApiBadResponseError,
    MusicApiContentPolicyError,
    MusicApiCreditsError,
    MusicApiError,
    MusicApiGenerationFailedError,
    MusicApiInvalidRequestError,
    MusicApiRateLimitedError,
    MusicApiUnavailableError,
)
from bot.models import Clip, ClipStatus, GenerationMode, GenerationRequest


def _suno_model(name: str, *, newer: bool) -> ModelSpec:
    # Limits from docs.sunoapi.org: description 500; V4 lyrics 3000 / style 200; V4_5 and later 5000 / 1000.
    return ModelSpec(
        name,
        max_prompt_chars=500,
        max_lyrics_chars=5000 if newer else 3000,
        max_tags_chars=1000 if newer else 200,
        max_title_chars=80,
    )


CAPABILITIES = Capabilities(
    models=(
        _suno_model("V4", newer=False),
        *(_suno_model(name, newer=True) for name in ("V4_5", "V4_5PLUS", "V4_5ALL", "V5", "V5_5")),
    ),
    default_model="V4_5",
    outputs_per_request=2,
    cover_art=True,
    writes_titles=True,
    poll_batch_size=1,
    pushes_progress=True,
)
# kie.ai refuses a generate without `callBackUrl` (422 "Please enter callBackUrl", since June 2026). The bot polls
# either way, so when the operator configured no receiver it names one that can never resolve (RFC 2606 `.invalid`).
INERT_CALLBACK_URL = "https://musicbot-callback.invalid/suno"
_RUNNING = {"PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS"}
_FAILED = {"CREATE_TASK_FAILED", "GENERATE_AUDIO_FAILED"}


def envelope_error(code: int, message: str) -> MusicApiError:
    """The envelope's `code`: 429 here means out of credits, 430 and 405 mean too many requests."""
    detail = f"code {code}: {message or 'no message'}"
    if code == 401:
        return MusicApiAuthError(detail, status=code)
    if code == 429:
        return MusicApiCreditsError(detail, status=code)
    if code in (405, 430):
        return MusicApiRateLimitedError(detail, status=code)
    if code in (400, 404, 413, 422):
        return MusicApiInvalidRequestError(detail, status=code)
    return MusicApiUnavailableError(detail, status=code)


def http_error(status: int, body: str) -> MusicApiError:
    """A non-2xx answer: read the envelope's code if there is one, else go by the HTTP status."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("code"), int):
        return envelope_error(payload["code"], text_field(payload.get("msg")))
    return envelope_error(status, body.strip()[:200])


def unwrap(payload: object) -> Any:
    """The envelope's `data` when `code` is 200; the typed error otherwise."""
    if not isinstance(payload, dict) or "code" not in payload:
        raise MusicApiBadResponseError("expected a {code, msg, data} envelope")
    code = payload.get("code")
    if code != 200:
        raise envelope_error(code if isinstance(code, int) else 0, text_field(payload.get("msg")))
    return payload.get("data")


def request_body(request: GenerationRequest, callback_url: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customMode": request.mode is GenerationMode.CUSTOM,
        "instrumental": request.instrumental,
        "model": request.model or CAPABILITIES.default_model,
    }
    if request.mode is GenerationMode.CUSTOM:
        body["style"] = request.tags or ""
        body["title"] = request.title or ""
        if request.prompt:
            body["prompt"] = request.prompt
    else:
        body["prompt"] = request.prompt
    body["callBackUrl"] = callback_url or INERT_CALLBACK_URL
    return body


def _song(raw: object, task_done: bool) -> Clip:
    if not isinstance(raw, dict) or not text_field(raw.get("id")):
        raise MusicApiBadResponseError("a song in the task record has no id")
    audio_url = text_field(raw.get("audioUrl"))
    if audio_url:
        status = ClipStatus.COMPLETE
    elif task_done:
        status = ClipStatus.ERROR
    elif text_field(raw.get("streamAudioUrl")):
        status = ClipStatus.STREAMING
    else:
        status = ClipStatus.QUEUED
    return Clip(
        id=text_field(raw.get("id")),
        status=status,
        title=text_field(raw.get("title")),
        audio_url=audio_url,
        image_url=text_field(raw.get("imageUrl")),
        lyrics=text_field(raw.get("prompt")),
        tags=text_field(raw.get("tags")),
        duration=seconds_field(raw.get("duration")),
        model_name=text_field(raw.get("modelName")),
        error_message="" if audio_url or not task_done else "the task ended without this song's audio",
    )


def parse_record(task_id: str, data: object) -> PollUpdate:
    if not isinstance(data, dict):
        raise MusicApiBadResponseError("record-info answered without data")
    status = text_field(data.get("status")).upper()
    message = text_field(data.get("errorMessage")) or status
    response = data.get("response")
    songs = response.get("sunoData") if isinstance(response, dict) else None
    done = status not in _RUNNING and status != ""
    if status not in _RUNNING | _FAILED | {"SUCCESS", "CALLBACK_EXCEPTION", "SENSITIVE_WORD_ERROR"}:
        done = False  # unknown statuses count as still running; the job's deadline bounds them
    clips = tuple(_song(song, done) for song in songs or [])
    error: MusicApiError | None = None
    if status == "SENSITIVE_WORD_ERROR":
        error = MusicApiContentPolicyError(message)
    elif status in _FAILED:
        error = MusicApiGenerationFailedError(message)
    return PollUpdate(key=task_id, clips=clips, done=done, error=error)


class SunoTaskBackend:
    name = "sunoapi"
    capabilities = CAPABILITIES

    def __init__(self, session: aiohttp.ClientSession, config: BackendConfig) -> None:
        self._http = JsonClient(
            session,
            config.base_url,
            http_error,
            headers={"Authorization": f"Bearer {config.api_key}"},
            request_timeout=config.request_timeout,
        )
        self._callback_url = config.callback_url

    async def submit(
        self, request: GenerationRequest, *, wait_audio: bool, callback_url: str | None = None
    ) -> Submission:
        """Always asynchronous: the task id comes back at once and the record is polled."""
        data = unwrap(
            await self._http.request(
                "POST", "/api/v1/generate", json_body=request_body(request, callback_url or self._callback_url)
            )
        )
        task_id = text_field(data.get("taskId")) if isinstance(data, dict) else ""
        if not task_id:
            raise MusicApiBadResponseError("generate answered without a taskId")
        return Submission(poll_keys=(task_id,), task_id=task_id)

    async def poll(self, keys: Sequence[str]) -> list[PollUpdate]:
        return list(await asyncio.gather(*(self._poll_one(key) for key in keys)))

    async def _poll_one(self, task_id: str) -> PollUpdate:
        payload = await self._http.request("GET", "/api/v1/generate/record-info", params=[("taskId", task_id)])
        return parse_record(task_id, unwrap(payload))

    async def probe(self) -> str:
        credits_left = unwrap(await self._http.request("GET", "/api/v1/generate/credit"))
        return f"answers and accepts the key; {credits_left} credits left"


ADAPTER = AdapterSpec(
    name="sunoapi",
    summary="Suno task resellers (sunoapi.org, kie.ai): POST /api/v1/generate, poll record-info by taskId",
    cost_unit="sunoapi credits",
    default_cost=12,
    capabilities=CAPABILITIES,
    create=SunoTaskBackend,
    error_for_status=http_error,
    base_url_setting="sunoapi_base_url",
    key_setting="sunoapi_key",
    callback_url_setting="sunoapi_callback_url",
)
