"""In-process fake of aimlapi's current music route, `/v2/generate/audio` (providers.md §1).

One async route serves every music model: `POST /v2/generate/audio` queues one generation (one audio file) and
`GET /v2/generate/audio?generation_id=<id>` polls it through `queued → generating → completed | error`. A task that
fails is HTTP 200 with `status: "error"`; HTTP errors are gateway errors `{message, path, requestId, statusCode,
timestamp}` (upstream-api.md §4.1). The finished file is served at `/files/<id>.mp3` on the same host, without auth,
like the signed CDN links the real API hands out.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.aimlapi_audio_shapes import (
    _SHORT_ID_ALPHABET,
    AUDIO_PATH,
    CONTENT_POLICY_ERROR_NAME,
    CONTENT_POLICY_MESSAGE,
    GENERATION_ERROR_MESSAGE,
    GENERATION_ERROR_NAME,
    GENERATION_NOT_FOUND_MESSAGE,
    MODEL_FIELDS,
    ROUTES,
    SUPPORTED_MODELS,
    AudioOutcome,
    AudioTimings,
    FakeGeneration,
    GenerationStatus,
    IdStyle,
    Route,
    _Field,
)
from tests.fakes.loopback import RecordedRequest
from tests.fakes.music_api_shapes import (
    BODY_VALIDATION_MESSAGE,
    GATEWAY_MESSAGES,
    OUT_OF_CREDITS_MESSAGE,
    QUERY_VALIDATION_MESSAGE,
    UNAUTHORIZED_MESSAGE,
    Interception,
)
from tests.fakes.music_api_wire import (
    AimlGatewayFaults,
    _access_denied,
    _fake_mp3,
    _gateway_error,
    _json_body,
    _send_bytes,
    _zod_type,
)

__all__ = [
    "AUDIO_PATH",
    "BODY_VALIDATION_MESSAGE",
    "CONTENT_POLICY_ERROR_NAME",
    "CONTENT_POLICY_MESSAGE",
    "GATEWAY_MESSAGES",
    "GENERATION_ERROR_MESSAGE",
    "GENERATION_ERROR_NAME",
    "GENERATION_NOT_FOUND_MESSAGE",
    "MODEL_FIELDS",
    "OUT_OF_CREDITS_MESSAGE",
    "QUERY_VALIDATION_MESSAGE",
    "ROUTES",
    "SUPPORTED_MODELS",
    "UNAUTHORIZED_MESSAGE",
    "AudioOutcome",
    "AudioTimings",
    "FakeAimlAudioApi",
    "FakeGeneration",
    "GenerationStatus",
    "IdStyle",
    "RecordedRequest",
    "Route",
]


class FakeAimlAudioApi(AimlGatewayFaults):
    """aiohttp server on 127.0.0.1 (random port) that behaves like aimlapi's `/v2/generate/audio`."""

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        timings: AudioTimings | None = None,
        audio_size: int = 64 * 1024,
        send_content_length: bool = True,
        complete_spelling: str = "completed",
        waiting_instead_of_queued: bool = False,
        submit_status: int = 201,
        reject_unknown_fields: bool = True,
        credits_used: int = 390_000,
        usd_spent: float = 0.195,
        id_style: IdStyle = "short",
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key
        self.timings = timings if timings is not None else AudioTimings()
        self.audio_size = audio_size
        self.send_content_length = send_content_length
        self.complete_spelling = complete_spelling
        self.waiting_instead_of_queued = waiting_instead_of_queued
        self.submit_status = submit_status
        self.reject_unknown_fields = reject_unknown_fields
        self.credits_used = credits_used
        self.usd_spent = usd_spent
        self.id_style: IdStyle = id_style
        self.generations: dict[str, FakeGeneration] = {}
        self.requests: list[RecordedRequest] = []
        self._clock = clock
        self._ids = random.Random(seed)
        self._outcomes: deque[AudioOutcome] = deque()
        self._interceptions: dict[str, deque[Interception]] = {route: deque() for route in ROUTES}
        self._closing = asyncio.Event()

    # ---------------------------------------------------------------- control surface

    def next_outcome(self, *outcomes: AudioOutcome) -> None:
        """Queue outcomes for the next generations submitted, one each in order; then `complete`."""
        self._outcomes.extend(outcomes)

    def fail_next(
        self,
        route: Route,
        *,
        status: int,
        body: str | dict[str, Any] | list[Any],
        content_type: str = "application/json",
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests to `route` with exactly this status and body (dicts/lists as JSON).
        No generation is created by an answered-this-way submit."""
        self.answer_next(route, status=status, body=body, content_type=content_type, times=times)

    def hang_next(self, route: Route, *, seconds: float = 3600, times: int = 1) -> None:
        """Hold the next `times` requests to `route` for `seconds`, then answer normally (stop() ends the hold
        early with a 503). A held submit creates its generation only when it is answered."""

        async def hang(request: web.Request) -> web.StreamResponse | None:
            await self._sleep(seconds)
            if self._closing.is_set():
                return _gateway_error(request, 503, GATEWAY_MESSAGES[503])
            return None

        self._intercept(route, hang, times)

    def status_of(self, generation_id: str) -> GenerationStatus:
        """The generation's status right now, canonical spelling."""
        generation = self.generations[generation_id]
        return generation.status_after(self._clock() - generation.created_monotonic, self.timings)

    def audio_bytes(self, generation_id: str) -> bytes:
        """The exact mp3 bytes served for this generation (deterministic per id and size)."""
        return _fake_mp3(generation_id, self._audio_size(generation_id))

    def file_url(self, generation_id: str) -> str:
        """Where `audio_file.url` points for this generation."""
        return f"{self.base_url}/files/{generation_id}.mp3"

    def submit_calls(self) -> int:
        """POSTs received on /v2/generate/audio, whatever they were answered."""
        return sum(1 for request in self.requests if request.route == "submit")

    def poll_calls(self) -> int:
        """GETs received on /v2/generate/audio, whatever they were answered."""
        return sum(1 for request in self.requests if request.route == "poll")

    # ---------------------------------------------------------------- app wiring

    def _build_app(self) -> web.Application:
        app = web.Application()
        router = app.router
        router.add_post(AUDIO_PATH, self._endpoint("submit", self._handle_submit))
        router.add_get(AUDIO_PATH, self._endpoint("poll", self._handle_poll))
        router.add_get("/files/{generation_id:.+}.mp3", self._endpoint("file", self._handle_file))
        router.add_route("*", "/{tail:.*}", self._endpoint(None, self._handle_not_found))
        return app

    # ---------------------------------------------------------------- routes

    async def _handle_submit(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return _gateway_error(request, 401, UNAUTHORIZED_MESSAGE)
        body = await _json_body(request)
        issues = self._body_issues(body)
        if issues:
            return _gateway_error(request, 400, "\n".join([BODY_VALIDATION_MESSAGE, "; ".join(issues)]))
        assert isinstance(body, dict)
        generation = self._create_generation(body)
        answer = {"id": generation.id, "status": "queued", "meta": {"usage": dict(generation.usage)}}
        return web.json_response(answer, status=self.submit_status)

    async def _handle_poll(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return _gateway_error(request, 401, UNAUTHORIZED_MESSAGE)
        if "generation_id" not in request.query:
            return _gateway_error(request, 400, f'{QUERY_VALIDATION_MESSAGE}\nRequired at "generation_id"')
        generation = self.generations.get(request.query["generation_id"])
        if generation is None:
            return _gateway_error(request, 404, GENERATION_NOT_FOUND_MESSAGE)
        return web.json_response(self._poll_view(generation), status=200)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        generation_id = request.match_info["generation_id"]
        if generation_id not in self.generations or self.status_of(generation_id) != "completed":
            return _access_denied()
        data = self.audio_bytes(generation_id)
        return await _send_bytes(request, data, "audio/mpeg", with_length=self.send_content_length)

    async def _handle_not_found(self, request: web.Request) -> web.StreamResponse:
        return _gateway_error(request, 404, f"Cannot {request.method} {request.path}")

    # ---------------------------------------------------------------- behaviour

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.api_key and bool(self.api_key)

    def _body_issues(self, body: object) -> list[str]:
        """zod-style issues: `model` picks the schema (a discriminated union), then the model's own fields."""
        if not isinstance(body, dict):
            return [f"Expected object, received {_zod_type(body)}"]
        if "model" not in body:
            return ['Required at "model"']
        model = body["model"]
        if model not in MODEL_FIELDS:
            allowed = " | ".join(f"'{name}'" for name in SUPPORTED_MODELS)
            received = f"'{model}'" if isinstance(model, str) else _zod_type(model)
            return [f'Invalid discriminator value. Expected {allowed}, received {received} at "model"']
        fields = {name: value for name, value in body.items() if name != "model"}
        return self._object_issues(fields, MODEL_FIELDS[model], "")

    def _object_issues(self, value: Mapping[str, Any], schema: Mapping[str, _Field], prefix: str) -> list[str]:
        issues: list[str] = []
        for name, spec in schema.items():
            path = f"{prefix}{name}"
            if name not in value:
                if spec.required:
                    issues.append(f'Required at "{path}"')
                continue
            issues.extend(self._field_issues(value[name], spec, path))
        unknown = [name for name in value if name not in schema]
        if unknown and self.reject_unknown_fields:
            where = f' at "{prefix.rstrip(".")}"' if prefix else ""
            issues.append("Unrecognized key(s) in object: " + ", ".join(f"'{name}'" for name in unknown) + where)
        return issues

    def _field_issues(self, value: object, spec: _Field, path: str) -> list[str]:
        received = _zod_type(value)
        if spec.kind == "integer":
            if received != "number":
                return [f'Expected number, received {received} at "{path}"']
            assert isinstance(value, int | float)
            if isinstance(value, float) and not value.is_integer():
                return [f'Expected integer, received float at "{path}"']
        elif received != spec.kind:
            return [f'Expected {spec.kind}, received {received} at "{path}"']
        if spec.choices is not None and value not in spec.choices:
            allowed = " | ".join(repr(choice) for choice in spec.choices)
            return [f'Invalid enum value. Expected {allowed}, received {value!r} at "{path}"']
        if isinstance(value, str) and spec.max_length is not None and len(value) > spec.max_length:
            return [f'String must contain at most {spec.max_length} character(s) at "{path}"']
        if isinstance(value, int | float) and not isinstance(value, bool):
            if spec.minimum is not None and value < spec.minimum:
                return [f'Number must be greater than or equal to {spec.minimum} at "{path}"']
            if spec.maximum is not None and value > spec.maximum:
                return [f'Number must be less than or equal to {spec.maximum} at "{path}"']
        if spec.kind == "object" and spec.fields is not None:
            assert isinstance(value, dict)
            return self._object_issues(value, spec.fields, f"{path}.")
        return []

    def _create_generation(self, body: dict[str, Any]) -> FakeGeneration:
        model: str = body["model"]
        if self.id_style == "uuid_model":
            generation_id = f"{uuid.UUID(int=self._ids.getrandbits(128), version=4)}:{model}"
        else:
            generation_id = "".join(self._ids.choice(_SHORT_ID_ALPHABET) for _ in range(21))
        generation = FakeGeneration(
            id=generation_id,
            index=len(self.generations) + 1,
            model=model,
            body=body,
            outcome=self._outcomes.popleft() if self._outcomes else AudioOutcome.complete(),
            created_at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            created_monotonic=self._clock(),
            usage={"credits_used": self.credits_used, "usd_spent": self.usd_spent},
        )
        self.generations[generation_id] = generation
        return generation

    def _poll_view(self, generation: FakeGeneration) -> dict[str, Any]:
        status = self.status_of(generation.id)
        view: dict[str, Any] = {"id": generation.id, "status": self._spell_status(status)}
        if status == "completed":
            view["audio_file"] = {
                "url": self.file_url(generation.id),
                "content_type": "audio/mpeg",
                "file_name": generation.id.replace(":", "_").replace("/", "_") + ".mp3",
                "file_size": self._audio_size(generation.id),
            }
            view["meta"] = {"usage": dict(generation.usage)}
        elif status == "error":
            view["error"] = {"name": generation.outcome.error_name, "message": generation.outcome.error_message}
        return view

    def _spell_status(self, status: GenerationStatus) -> str:
        if status == "completed":
            return self.complete_spelling
        if status == "queued" and self.waiting_instead_of_queued:
            return "waiting"
        return status

    def _audio_size(self, generation_id: str) -> int:
        generation = self.generations.get(generation_id)
        if generation is not None and generation.audio_size is not None:
            return generation.audio_size
        return self.audio_size
