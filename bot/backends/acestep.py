"""`acestep`: the HTTP API server of ACE-Step 1.5, an open (MIT) song model the operator runs on their own GPU.

POST /release_task {sample_query | prompt + lyrics, batch_size: 2, ...} -> {data: {task_id, queue_position}};
POST /query_result {task_id_list: [...]} for many tasks at once; each take's file at GET /v1/audio?path=...
The key is optional (the server's ACESTEP_API_KEY); it names no song and draws no cover, so the bot titles the
songs from the prompt (as for `aimlapi-audio`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from bot.backends.acestep_answers import (
    CAPABILITIES,
    TAKES,
    acestep_error,
    describe_stats,
    parse_models,
    parse_results,
    parse_submission,
    unwrap,
)
from bot.backends.base import Capabilities, JsonClient, PollUpdate, Submission, text_field
from bot.backends.spec import AdapterSpec, BackendConfig
from bot.errors import MusicApiError, MusicApiUnavailableError
from bot.models import GenerationMode, GenerationRequest

log = logging.getLogger(__name__)

NAME = "acestep"
# The server's marker for a song without vocals (acestep/api_server.py `_is_instrumental`); in a description,
# the word "instrumental" is what its description parser looks for.
INSTRUMENTAL_LYRICS = "[Instrumental]"
MODELS_FRESH_SECONDS = 300.0  # the model list is read again when asked for after this long
MODELS_RETRY_SECONDS = 30.0  # and not sooner than this after a failed read
MODELS_READ_TIMEOUT = 10.0


def request_body(request: GenerationRequest) -> dict[str, Any]:
    """The bot's request in ACE-Step's fields. A description goes as `sample_query`: the server's language model
    writes the caption and lyrics (it needs `thinking` anyway); custom mode sends the style tags as the caption
    (`prompt`) and the lyrics. A model is named only when the member chose one (else the server's default)."""
    body: dict[str, Any] = {"batch_size": TAKES, "audio_format": "mp3"}
    if request.mode is GenerationMode.CUSTOM:
        body["prompt"] = request.tags or ""
        body["lyrics"] = INSTRUMENTAL_LYRICS if request.instrumental else request.prompt
    else:
        description = request.prompt
        if request.instrumental and "instrumental" not in description.lower():
            description = f"{description} (instrumental)"
        body["sample_query"] = description
        body["thinking"] = True
    if request.duration_seconds is not None:
        body["audio_duration"] = request.duration_seconds
    if request.model:
        body["model"] = request.model
    return body


class AceStepBackend:
    """One ACE-Step server. Its models are read from GET /v1/models: at the doctor's probe, and in the
    background when the capabilities are asked for (the /music model autocomplete) and the list is stale."""

    name = NAME

    def __init__(self, session: aiohttp.ClientSession, config: BackendConfig) -> None:
        self._http = JsonClient(
            session,
            config.base_url,
            acestep_error,
            headers={"Authorization": f"Bearer {config.api_key}"} if config.api_key else {},
            request_timeout=config.request_timeout,
        )
        self._base_url = config.base_url
        self._has_key = bool(config.api_key)
        self._capabilities = CAPABILITIES
        self._models_due = 0.0  # time.monotonic() from which the model list is read again
        self._models_reading: asyncio.Task[None] | None = None

    @property
    def capabilities(self) -> Capabilities:
        """The server's models as last read (the stock default before the first answer)."""
        self._read_models_soon()
        return self._capabilities

    async def submit(
        self, request: GenerationRequest, *, wait_audio: bool, callback_url: str | None = None
    ) -> Submission:
        """Always asynchronous: the task id and its place in the server's queue come back at once."""
        payload = await self._http.request("POST", "/release_task", json_body=request_body(request))
        return parse_submission(unwrap(payload))

    async def poll(self, keys: Sequence[str]) -> list[PollUpdate]:
        """One request for all the keys (the server takes a list of task ids)."""
        payload = await self._http.request("POST", "/query_result", json_body={"task_id_list": list(keys)})
        return parse_results(keys, unwrap(payload), self._base_url)

    async def probe(self) -> str:
        """Free: /health, then the models and the queue (both behind the key when the server has one)."""
        health = unwrap(await self._http.request("GET", "/health"))
        if not isinstance(health, dict) or text_field(health.get("status")) != "ok":
            raise MusicApiUnavailableError("GET /health did not answer status ok")
        capabilities = await self.read_models()
        if capabilities is None:
            raise MusicApiUnavailableError("the server has loaded no model yet (still starting, or it failed to)")
        stats = describe_stats(unwrap(await self._http.request("GET", "/v1/stats")))
        models = ", ".join(
            f"{name} (default)" if name == capabilities.default_model else name for name in capabilities.model_names
        )
        key = "accepts the key" if self._has_key else "needs no key"
        return f"answers and {key}; models: {models}; {stats}"

    async def read_models(self) -> Capabilities | None:
        """Reads GET /v1/models; the capabilities now offered, or None while the server has loaded no model."""
        self._models_due = time.monotonic() + MODELS_RETRY_SECONDS
        payload = await self._http.request("GET", "/v1/models", timeout=MODELS_READ_TIMEOUT)
        read = parse_models(unwrap(payload))
        if read is None:
            return None
        self._capabilities = read
        self._models_due = time.monotonic() + MODELS_FRESH_SECONDS
        return read

    def _read_models_soon(self) -> None:
        """Starts a background read of the model list when it is due and none is running (in a running loop)."""
        if self._models_reading is not None and not self._models_reading.done():
            return
        if time.monotonic() < self._models_due:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._models_due = time.monotonic() + MODELS_RETRY_SECONDS
        self._models_reading = loop.create_task(self._read_models_quietly(), name="acestep-models")

    async def _read_models_quietly(self) -> None:
        try:
            await self.read_models()
        except MusicApiError as error:
            log.warning("acestep: could not read the model list: %s", error.detail)
        except RuntimeError as error:  # the shared session closed under it, at shutdown
            log.debug("acestep: model list not read: %s", error)


ADAPTER = AdapterSpec(
    name=NAME,
    summary="ACE-Step 1.5's own API server on your GPU (POST /release_task, POST /query_result); free, open model",
    cost_unit="generations on the operator's own GPU",
    default_cost=1,
    capabilities=CAPABILITIES,
    create=AceStepBackend,
    error_for_status=acestep_error,
    base_url_setting="acestep_base_url",
    key_setting="acestep_api_key",
    key_required=False,
    files_need_key=True,
    keyless_credential="the ACE-Step server's API key",
)
