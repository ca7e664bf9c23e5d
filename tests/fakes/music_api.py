"""In-process fake of the AI/ML API "[old] Music Generation" (Suno v3.5, gcui-art AudioInfo shape).

The same server also answers the self-hosted gcui-art/suno-api routes, as gcui-art HEAD behaves
(upstream-api.md §1.2, §4.2): `POST /api/generate`, `POST /api/custom_generate`, `GET /api/get?ids=a,b`
and `GET /api/get_limit`. They share the clip store, lifecycle, wait_audio loop, outcomes and downloads
with the aimlapi routes, but need no key, answer 200, coerce flags with JS `Boolean()`, forward any
`model` verbatim and spend `credits_left` (5 per clip).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import math
import random
import re
import struct
import time
import uuid
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from tests.fakes.loopback import LoopbackServer, RecordedRequest, json_or_none

Route = Literal[
    "generate",
    "custom",
    "fetch",
    "audio",
    "stream",
    "image",
    "gcui_generate",
    "gcui_custom",
    "gcui_get",
    "gcui_limit",
]
"""Routes that accept injected failures: generate (simple mode), custom (custom mode), fetch (GET /),
audio (the final mp3), stream (the audiopipe link) and image; and the gcui-art self-hosted routes
gcui_generate (POST /api/generate), gcui_custom (POST /api/custom_generate), gcui_get (GET /api/get) and
gcui_limit (GET /api/get_limit)."""

ClipStatus = Literal["submitted", "queued", "streaming", "complete", "error"]
StatusCase = Literal["lower", "upper", "title"]
GenerationMode = Literal["simple", "custom"]

ROUTES: frozenset[str] = frozenset(
    {
        "generate",
        "custom",
        "fetch",
        "audio",
        "stream",
        "image",
        "gcui_generate",
        "gcui_custom",
        "gcui_get",
        "gcui_limit",
    }
)
GCUI_ROUTES: frozenset[str] = frozenset({"gcui_generate", "gcui_custom", "gcui_get", "gcui_limit"})
GENERATE_ROUTES: frozenset[str] = frozenset({"generate", "custom", "gcui_generate", "gcui_custom"})
SUPPORTED_MODELS: tuple[str, ...] = ("chirp-v3-5", "chirp-v3-0")
GCUI_DEFAULT_MODEL = "chirp-v3-5"
GCUI_CREDITS_PER_CLIP = 5
GCUI_MIN_CREDITS = 10
"""Generating on a gcui route with fewer credits left than this answers 402 (Suno cannot make 2 clips)."""

# aimlapi gateway messages (upstream-api.md §4.1).
UNAUTHORIZED_MESSAGE = (
    "This request requires a valid API key. You can create a new API key on the Billing page: "
    "https://aimlapi.com/app/keys"
)
OUT_OF_CREDITS_MESSAGE = (
    "You've run out of credits. Please top up your balance or update your payment method to continue: "
    "https://aimlapi.com/app/billing/"
)
FREE_TIER_LIMIT_MESSAGE = (
    "Free-tier limit: You've reached your free limit for the hour. Get AI/ML Subscription to use API, "
    "visit https://aimlapi.com/app/billing/ !"
)
SERVER_TROUBLE_MESSAGE = "Something wrong with the server. Please, try again later."
MAINTENANCE_MESSAGE = (
    "The model is under maintenance, please contact us at help@aimlapi.com. Your Request ID is {request_id}."
)
BODY_VALIDATION_MESSAGE = "Body validation error!"
QUERY_VALIDATION_MESSAGE = "Query validation error!"
GATEWAY_MESSAGES: Mapping[int, str] = {
    401: UNAUTHORIZED_MESSAGE,
    403: OUT_OF_CREDITS_MESSAGE,
    429: "Too Many Requests",
    500: "Internal server error",
    502: "Bad Gateway",
    503: "Service unavailable",
    504: "Generation timeout",
}

# gcui-art/suno-api wrapper error texts (upstream-api.md §4.2).
GCUI_ERRORS: Mapping[int, str] = {
    402: "Payment required",
    500: "Internal server error",
    503: "Network error: timeout of 10000ms exceeded",
}
GCUI_INTERNAL_ERROR = "Internal server error"
"""What gcui-art's get and get_limit answer (500) whatever went wrong upstream."""
PLAIN_TEXT_500_BODY = "Internal Server Error"
ACCESS_DENIED_BODY = "access denied"

_STATUS_ORDER: tuple[ClipStatus, ...] = ("submitted", "queued", "streaming", "complete")
_CHUNK_SIZE = 16 * 1024
_STYLE_BANK = (
    "upbeat synth pop",
    "melancholic acoustic folk",
    "energetic rock, male vocals",
    "dreamy lo-fi hip hop",
    "cinematic orchestral",
    "funky disco, female vocals",
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Interception = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


@dataclass
class ClipTimings:
    """Seconds after creation at which a clip reaches each status; read on every request, so mutable."""

    queued_after: float = 0.05
    streaming_after: float = 0.2
    complete_after: float = 0.5


@dataclass(frozen=True)
class ClipOutcome:
    """How one generated clip ends."""

    kind: Literal["complete", "error", "stuck"]
    error_message: str | None = None
    error_after: float | None = None
    stuck_at: ClipStatus = "queued"

    @classmethod
    def complete(cls) -> ClipOutcome:
        return cls(kind="complete")

    @classmethod
    def error(cls, message: str | None = None, *, after: float | None = None) -> ClipOutcome:
        """Ends at `error` (audio_url None.mp3) `after` seconds, by default at `timings.streaming_after`."""
        return cls(kind="error", error_message=message, error_after=after)

    @classmethod
    def stuck(cls, at: Literal["submitted", "queued", "streaming"] = "queued") -> ClipOutcome:
        """Never progresses past `at` (Suno "stays submitted" / "hangs on streaming")."""
        return cls(kind="stuck", stuck_at=at)


@dataclass
class FakeClip:
    """One clip the fake created, with what it will become."""

    id: str
    generation_index: int
    mode: GenerationMode
    description: str | None
    title: str
    tags: str
    lyrics: str
    make_instrumental: bool
    model: str
    outcome: ClipOutcome
    created_at: str
    created_monotonic: float
    duration: float
    audio_size: int | None = None
    negative_tags: str = ""
    via_gcui: bool = False

    def status_after(self, elapsed: float, timings: ClipTimings) -> ClipStatus:
        outcome = self.outcome
        if outcome.kind == "error":
            error_after = timings.streaming_after if outcome.error_after is None else outcome.error_after
            if elapsed >= error_after:
                return "error"
        natural: ClipStatus = "submitted"
        if elapsed >= timings.complete_after:
            natural = "complete"
        elif elapsed >= timings.streaming_after:
            natural = "streaming"
        elif elapsed >= timings.queued_after:
            natural = "queued"
        ceiling: ClipStatus = "complete"
        if outcome.kind == "stuck":
            ceiling = outcome.stuck_at
        elif outcome.kind == "error":
            ceiling = "streaming"
        return _STATUS_ORDER[min(_STATUS_ORDER.index(natural), _STATUS_ORDER.index(ceiling))]


class FakeMusicApi(LoopbackServer):
    """aiohttp server on 127.0.0.1 (random port) that behaves like aimlapi's Suno v1 routes and, on the same
    clip store, like a self-hosted gcui-art/suno-api server's /api/* routes."""

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        timings: ClipTimings | None = None,
        wait_audio_timeout: float = 1.0,
        wait_initial_delay: float = 0.05,
        wait_poll_interval: float = 0.05,
        audio_size: int = 64 * 1024,
        send_content_length: bool = True,
        complete_spelling: str = "complete",
        status_case: StatusCase = "lower",
        generate_status: int = 201,
        reject_unknown_fields: bool = True,
        model_name: str = "chirp-v3",
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        credits_left: int = 500,
        monthly_limit: int = 2500,
    ) -> None:
        self.api_key = api_key
        self.timings = timings if timings is not None else ClipTimings()
        self.wait_audio_timeout = wait_audio_timeout
        self.wait_initial_delay = wait_initial_delay
        self.wait_poll_interval = wait_poll_interval
        self.audio_size = audio_size
        self.send_content_length = send_content_length
        self.complete_spelling = complete_spelling
        self.status_case: StatusCase = status_case
        self.generate_status = generate_status
        self.reject_unknown_fields = reject_unknown_fields
        self.model_name = model_name
        self.credits_left = credits_left
        """Suno credits of the self-hosted gcui-art account; gcui generations spend 5 per clip."""
        self.monthly_limit = monthly_limit
        self.monthly_usage = 0
        self.feed_page_size = 20
        self.clips: dict[str, FakeClip] = {}
        self.requests: list[RecordedRequest] = []
        self._clock = clock
        self._ids = random.Random(seed)
        self._outcomes: deque[ClipOutcome] = deque()
        self._interceptions: dict[str, deque[Interception]] = {route: deque() for route in ROUTES}
        self._generations = 0
        self._closing = asyncio.Event()

    # ---------------------------------------------------------------- control surface

    def next_outcome(self, *outcomes: ClipOutcome) -> None:
        """Queue outcomes for the next clips created, one per clip in creation order; then `complete`."""
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
        """Answer the next `times` requests to `route` with exactly this status and body (dicts/lists as JSON)."""
        text = body if isinstance(body, str) else json.dumps(body)

        async def respond(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, text=text, content_type=content_type)

        self._intercept(route, respond, times)

    def fail_with_gateway_error(self, route: Route, status: int, *, message: str | None = None, times: int = 1) -> None:
        """aimlapi gateway error {message, path, requestId, statusCode, timestamp}; `message` defaults to the
        documented one for 401/403/429/500/502/503/504 and may hold a `{request_id}` placeholder."""
        text = message if message is not None else GATEWAY_MESSAGES[status]

        async def respond(request: web.Request) -> web.StreamResponse:
            return _gateway_error(request, status, text)

        self._intercept(route, respond, times)

    def fail_with_plain_text_500(self, route: Route, *, times: int = 1) -> None:
        """Mid-2024 gcui-art crash: 500 with the non-JSON text body "Internal Server Error"."""
        self.fail_next(route, status=500, body=PLAIN_TEXT_500_BODY, content_type="text/plain", times=times)

    def fail_with_gcui_error(
        self, route: Route, status: int = 402, *, error: str | None = None, times: int = 1
    ) -> None:
        """gcui-art wrapper error `{"error": ...}`; 402 defaults to "Payment required"."""
        detail = error if error is not None else GCUI_ERRORS.get(status, f"API Error: {status}")
        self.fail_next(route, status=status, body={"error": detail}, times=times)

    def fail_with_gcui_upstream(
        self, route: Route, status: int | None = None, *, detail: str | None = None, times: int = 1
    ) -> None:
        """Suno itself fails behind a gcui route, answered the gcui-art HEAD way: on gcui_generate/gcui_custom
        an upstream `status` passes through as `{"error": detail}` (402 defaults to "Payment required",
        others to "API Error: <status>") and no upstream answer (`status` None) is 503 "Network error: ...";
        on gcui_get/gcui_limit every failure is 500 "Internal server error"."""
        if route not in GCUI_ROUTES:
            raise ValueError(f"not a gcui route: {route!r}; expected one of {sorted(GCUI_ROUTES)}")
        if route in {"gcui_get", "gcui_limit"}:
            self.fail_with_gcui_error(route, 500, error=GCUI_INTERNAL_ERROR, times=times)
        elif status is None:
            self.fail_with_gcui_error(route, 503, error=detail, times=times)
        else:
            self.fail_with_gcui_error(route, status, error=detail, times=times)

    def fail_with_malformed_json(self, route: Route, *, status: int | None = None, times: int = 1) -> None:
        """A success status whose application/json body is cut off mid-document."""
        success = self.generate_status if route in {"generate", "custom"} else 200
        self.fail_next(route, status=status or success, body='[{"id": "', times=times)

    def hang_next(self, route: Route, *, seconds: float = 3600, times: int = 1) -> None:
        """Hold the next `times` requests to `route` for `seconds`, then answer normally (stop() ends the
        hold early with a 503: the gateway body, or gcui's `{"error": "Network error: ..."}` on gcui routes).
        No clips are created while a generate call is held."""

        async def hang(request: web.Request) -> web.StreamResponse | None:
            await self._sleep(seconds)
            if self._closing.is_set():
                if route in GCUI_ROUTES:
                    return _gcui_error(503, GCUI_ERRORS[503])
                return _gateway_error(request, 503, GATEWAY_MESSAGES[503])
            return None

        self._intercept(route, hang, times)

    def status_of(self, clip_id: str) -> ClipStatus:
        """The clip's status right now, canonical spelling."""
        clip = self.clips[clip_id]
        return clip.status_after(self._clock() - clip.created_monotonic, self.timings)

    def audio_bytes(self, clip_id: str) -> bytes:
        """The exact mp3 bytes served for this clip (deterministic per id and size)."""
        clip = self.clips.get(clip_id)
        size = clip.audio_size if clip is not None and clip.audio_size is not None else self.audio_size
        return _fake_mp3(clip_id, size)

    def generate_calls(self) -> int:
        """POSTs received on any generate route, whatever they were answered: the aimlapi generate and
        custom routes and the gcui-art gcui_generate and gcui_custom routes alike."""
        return sum(1 for request in self.requests if request.route in GENERATE_ROUTES)

    def fetch_batches(self) -> list[list[str]]:
        """The ids asked for by each well-formed GET / call, in order."""
        batches = []
        for request in self.requests:
            if request.route == "fetch":
                ids = _parse_ids(request.query)
                if isinstance(ids, list):
                    batches.append(ids)
        return batches

    def gcui_get_batches(self) -> list[list[str]]:
        """The ids asked for by each GET /api/get call, in order (split on commas as gcui-art does);
        a call without ids (the whole feed) appears as an empty list."""
        return [_gcui_ids(request.query) for request in self.requests if request.route == "gcui_get"]

    # ---------------------------------------------------------------- app wiring

    def _build_app(self) -> web.Application:
        app = web.Application()
        router = app.router
        for prefix in ("", "/v1"):
            router.add_post(f"{prefix}/generate", self._endpoint("generate", self._handle_generate))
            router.add_post(f"{prefix}/generate/custom-mode", self._endpoint("custom", self._handle_custom))
        for path in ("/", "/v1", "/v1/"):
            router.add_get(path, self._endpoint("fetch", self._handle_fetch))
        router.add_get("/audio/{clip_id}.mp3", self._endpoint("audio", self._handle_audio))
        router.add_get("/audiopipe/", self._endpoint("stream", self._handle_audiopipe))
        router.add_get("/image/{clip_id}.png", self._endpoint("image", self._handle_image))
        router.add_get("/video/{clip_id}.mp4", self._endpoint(None, self._handle_video))
        router.add_get("/None.mp3", self._endpoint(None, self._handle_access_denied))
        router.add_post("/api/generate", self._endpoint("gcui_generate", self._handle_gcui_generate))
        router.add_post("/api/custom_generate", self._endpoint("gcui_custom", self._handle_gcui_custom))
        router.add_get("/api/get", self._endpoint("gcui_get", self._handle_gcui_get))
        router.add_get("/api/get_limit", self._endpoint("gcui_limit", self._handle_gcui_limit))
        for path in ("/api/generate", "/api/custom_generate", "/api/get", "/api/get_limit"):
            router.add_route("*", path, self._endpoint(None, self._handle_method_not_allowed))
        router.add_route("*", "/{tail:.*}", self._endpoint(None, self._handle_not_found))
        return app

    # ---------------------------------------------------------------- music API routes

    async def _handle_generate(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "simple")

    async def _handle_custom(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "custom")

    async def _generate(self, request: web.Request, mode: GenerationMode) -> web.StreamResponse:
        if not self._authorized(request):
            return _gateway_error(request, 401, UNAUTHORIZED_MESSAGE)
        body = await _json_body(request)
        fields: dict[str, str] = {"prompt": "string", "make_instrumental": "boolean", "wait_audio": "boolean"}
        if mode == "custom":
            fields = {"prompt": "string", "tags": "string", "title": "string"} | fields
        issues = self._body_issues(body, fields)
        if issues:
            return _gateway_error(request, 400, "\n".join([BODY_VALIDATION_MESSAGE, "; ".join(issues)]))
        assert isinstance(body, dict)
        clips = self._create_clips(mode, body)
        if body["wait_audio"]:
            result = await self._wait_for_audio(clips)
        else:
            result = [self._audio_info(clip, "submitted", view="created") for clip in clips]
        return web.json_response(result, status=self.generate_status)

    async def _handle_fetch(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return _gateway_error(request, 401, UNAUTHORIZED_MESSAGE)
        ids = _parse_ids(request.query)
        if isinstance(ids, str):
            return _gateway_error(request, 400, f"{QUERY_VALIDATION_MESSAGE}\n{ids}")
        known = [clip_id for clip_id in dict.fromkeys(ids) if clip_id in self.clips]
        return web.json_response([self._clip_view(self.clips[clip_id]) for clip_id in known], status=200)

    async def _handle_audio(self, request: web.Request) -> web.StreamResponse:
        clip = self.clips.get(request.match_info["clip_id"])
        if clip is None or self.status_of(clip.id) != "complete":
            return _access_denied()
        data = self.audio_bytes(clip.id)
        return await _send_bytes(request, data, "audio/mpeg", with_length=self.send_content_length)

    async def _handle_audiopipe(self, request: web.Request) -> web.StreamResponse:
        clip = self.clips.get(request.query.get("item_id", ""))
        if clip is None or self.status_of(clip.id) not in {"streaming", "complete"}:
            return _access_denied()
        return await _send_bytes(request, self.audio_bytes(clip.id), "audio/mpeg", with_length=False)

    async def _handle_image(self, request: web.Request) -> web.StreamResponse:
        clip = self.clips.get(request.match_info["clip_id"])
        if clip is None or self.status_of(clip.id) in {"submitted", "queued"}:
            return _access_denied()
        return web.Response(body=TINY_PNG, content_type="image/png")

    async def _handle_video(self, request: web.Request) -> web.StreamResponse:
        clip = self.clips.get(request.match_info["clip_id"])
        if clip is None or self.status_of(clip.id) != "complete":
            return _access_denied()
        return web.Response(body=_TINY_MP4, content_type="video/mp4")

    async def _handle_access_denied(self, request: web.Request) -> web.StreamResponse:
        return _access_denied()

    async def _handle_method_not_allowed(self, request: web.Request) -> web.StreamResponse:
        allow = "POST" if request.path in {"/api/generate", "/api/custom_generate"} else "GET"
        return web.Response(status=405, text="Method Not Allowed", headers={"Allow": allow})

    # ---------------------------------------------------------------- gcui-art self-hosted routes

    async def _handle_gcui_generate(self, request: web.Request) -> web.StreamResponse:
        return await self._gcui_generate(request, "simple")

    async def _handle_gcui_custom(self, request: web.Request) -> web.StreamResponse:
        return await self._gcui_generate(request, "custom")

    async def _gcui_generate(self, request: web.Request, mode: GenerationMode) -> web.StreamResponse:
        """gcui-art HEAD generate/custom_generate: no auth, no validation, `Boolean()` flags,
        `model || DEFAULT_MODEL`, 200 with the AudioInfo list."""
        text = await request.text()
        try:
            body = json.loads(text)
        except ValueError:
            reason = "Unexpected end of JSON input" if not text.strip() else "Unexpected token in JSON"
            return _gcui_error(500, f"Internal error: {reason}")
        if body is None:
            return _gcui_error(500, "Internal error: Cannot destructure property 'prompt' of 'body' as it is null.")
        fields: Mapping[str, Any] = body if isinstance(body, dict) else {}
        if self.credits_left < GCUI_MIN_CREDITS:
            return _gcui_error(402, GCUI_ERRORS[402])
        model = fields.get("model")
        normalized: dict[str, Any] = {
            "prompt": _js_string(fields.get("prompt")),
            "make_instrumental": _js_truthy(fields.get("make_instrumental")),
            "model": _js_string(model) if _js_truthy(model) else GCUI_DEFAULT_MODEL,  # `model || DEFAULT_MODEL`
        }
        if mode == "custom":
            normalized["tags"] = _js_string(fields.get("tags"))
            normalized["title"] = _js_string(fields.get("title"))
            normalized["negative_tags"] = _js_string(fields.get("negative_tags"))
        clips = self._create_clips(mode, normalized, via_gcui=True)
        spent = GCUI_CREDITS_PER_CLIP * len(clips)
        self.credits_left -= spent
        self.monthly_usage += spent
        if _js_truthy(fields.get("wait_audio")):
            result = await self._wait_for_audio(clips)
        else:
            result = [self._audio_info(clip, "submitted", view="created", negative_tags=True) for clip in clips]
        return web.json_response(result, status=200)

    async def _handle_gcui_get(self, request: web.Request) -> web.StreamResponse:
        """gcui-art HEAD get: `ids` comma-separated (first value wins), else the whole feed, newest first;
        `page` (0-based, `feed_page_size` clips a page) pages the feed; an unusable page is a 500."""
        ids = _gcui_ids(request.query)
        if ids:
            known = [clip_id for clip_id in dict.fromkeys(ids) if clip_id in self.clips]
            return web.json_response([self._clip_view(self.clips[clip_id]) for clip_id in known], status=200)
        feed = list(reversed(self.clips.values()))
        page = request.query.get("page")
        if page:
            if not page.isdigit():
                return _gcui_error(500, GCUI_INTERNAL_ERROR)
            start = int(page) * self.feed_page_size
            feed = feed[start : start + self.feed_page_size]
        return web.json_response([self._clip_view(clip) for clip in feed], status=200)

    async def _handle_gcui_limit(self, request: web.Request) -> web.StreamResponse:
        limit = {
            "credits_left": self.credits_left,
            "period": "day",
            "monthly_limit": self.monthly_limit,
            "monthly_usage": self.monthly_usage,
        }
        return web.json_response(limit, status=200)

    async def _handle_not_found(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=404, text="404: Not Found")

    # ---------------------------------------------------------------- behaviour

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.api_key and bool(self.api_key)

    def _body_issues(self, body: object, fields: Mapping[str, str]) -> list[str]:
        """zod-style issues for the DTO `fields` plus the optional `model`."""
        if not isinstance(body, dict):
            return [f"Expected object, received {_zod_type(body)}"]
        issues = []
        for name, expected in fields.items():
            if name not in body:
                issues.append(f'Required at "{name}"')
            elif _zod_type(body[name]) != expected:
                issues.append(f'Expected {expected}, received {_zod_type(body[name])} at "{name}"')
        if "model" in body and body["model"] not in SUPPORTED_MODELS:
            allowed = " | ".join(f"'{model}'" for model in SUPPORTED_MODELS)
            model = body["model"]
            received = f"'{model}'" if isinstance(model, str) else _zod_type(model)
            issues.append(f'Invalid enum value. Expected {allowed}, received {received} at "model"')
        unknown = [name for name in body if name not in fields and name != "model"]
        if unknown and self.reject_unknown_fields:
            issues.append("Unrecognized key(s) in object: " + ", ".join(f"'{name}'" for name in unknown))
        return issues

    def _create_clips(self, mode: GenerationMode, body: Mapping[str, Any], *, via_gcui: bool = False) -> list[FakeClip]:
        self._generations += 1
        instrumental: bool = body["make_instrumental"]
        if mode == "custom":
            description = None
            title, tags, lyrics = body["title"], body["tags"], body["prompt"]
        else:
            description = body["prompt"]
            title, tags, lyrics = _compose_song(description, instrumental)
        created_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        clips = []
        for _ in range(2):
            clip_id = str(uuid.UUID(int=self._ids.getrandbits(128), version=4))
            clip = FakeClip(
                id=clip_id,
                generation_index=self._generations,
                mode=mode,
                description=description,
                title=title,
                tags=tags,
                lyrics=lyrics,
                make_instrumental=instrumental,
                model=body.get("model", SUPPORTED_MODELS[0]),
                outcome=self._outcomes.popleft() if self._outcomes else ClipOutcome.complete(),
                created_at=created_at,
                created_monotonic=self._clock(),
                duration=_duration_for(clip_id),
                negative_tags=body.get("negative_tags", "") if via_gcui else "",
                via_gcui=via_gcui,
            )
            self.clips[clip_id] = clip
            clips.append(clip)
        return clips

    async def _wait_for_audio(self, clips: list[FakeClip]) -> list[dict[str, Any]]:
        """gcui-art generateSongs: sleep, then poll until all streaming/complete or all error, or time out
        and return the last polled list (an empty one if the loop never ran)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        last: list[dict[str, Any]] = []
        await self._sleep(self.wait_initial_delay)
        while loop.time() - started < self.wait_audio_timeout and not self._closing.is_set():
            statuses = [self.status_of(clip.id) for clip in clips]
            snapshot = [
                self._audio_info(clip, status, view="get") for clip, status in zip(clips, statuses, strict=True)
            ]
            if all(status in {"streaming", "complete"} for status in statuses):
                return snapshot
            if all(status == "error" for status in statuses):
                return snapshot
            last = snapshot
            await self._sleep(self.wait_poll_interval)
        return last

    def _clip_view(self, clip: FakeClip) -> dict[str, Any]:
        return self._audio_info(clip, self.status_of(clip.id), view="get")

    def _audio_info(
        self, clip: FakeClip, status: ClipStatus, *, view: Literal["created", "get"], negative_tags: bool = False
    ) -> dict[str, Any]:
        """AudioInfo as gcui-art maps it; `created` is the immediate generate result, `get` the feed one;
        `negative_tags` adds the field gcui-art HEAD puts in its immediate generate result."""
        written = clip.mode == "custom" or status in {"streaming", "complete", "error"}
        rendered = status in {"streaming", "complete", "error"}
        lyrics = clip.lyrics if written else ""
        audio_url = {
            "submitted": "",
            "queued": "",
            "streaming": f"{self.base_url}/audiopipe/?item_id={clip.id}",
            "complete": f"{self.base_url}/audio/{clip.id}.mp3",
            "error": f"{self.base_url}/None.mp3",
        }[status]
        info: dict[str, Any] = {
            "id": clip.id,
            "title": clip.title if written else "",
            "image_url": f"{self.base_url}/image/{clip.id}.png" if rendered else None,
            "lyric": _drop_blank_lines(lyrics) if view == "get" else lyrics,
            "audio_url": audio_url,
            "video_url": f"{self.base_url}/video/{clip.id}.mp4" if status == "complete" else "",
            "created_at": clip.created_at,
            "model_name": self.model_name,
            "status": self._spell_status(status),
            "gpt_description_prompt": clip.description,
            "prompt": lyrics,
            "type": "gen",
            "tags": clip.tags if written else None,
        }
        if negative_tags:
            info["negative_tags"] = clip.negative_tags
        info["duration"] = clip.duration if status == "complete" else None
        if view == "get":
            info["error_message"] = clip.outcome.error_message if status == "error" else None
        return info

    def _spell_status(self, status: ClipStatus) -> str:
        spelled = self.complete_spelling if status == "complete" else status
        if self.status_case == "upper":
            return spelled.upper()
        if self.status_case == "title":
            return spelled.title()
        return spelled


# -------------------------------------------------------------------- helpers


def _gateway_error(request: web.Request, status: int, message: str) -> web.Response:
    request_id = str(uuid.uuid4())
    body = {
        "message": message.replace("{request_id}", request_id),
        "path": request.path,
        "requestId": request_id,
        "statusCode": status,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    return web.json_response(body, status=status)


def _gcui_error(status: int, error: str) -> web.Response:
    return web.json_response({"error": error}, status=status)


def _gcui_ids(query: Mapping[str, str]) -> list[str]:
    """gcui-art `ids=a,b` → ["a", "b"]; absent or empty → [] (the whole feed)."""
    raw = query.get("ids", "")
    return raw.split(",") if raw else []


def _js_truthy(value: object) -> bool:
    """JavaScript `Boolean(value)` for a JSON value."""
    if value is None or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0 and not math.isnan(value)
    if isinstance(value, str):
        return value != ""
    return True


def _js_string(value: object) -> str:
    """A JSON value as the string Suno would see; absent/null become ""."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _access_denied() -> web.Response:
    return web.Response(status=403, text=ACCESS_DENIED_BODY)


async def _send_bytes(request: web.Request, data: bytes, content_type: str, *, with_length: bool) -> web.StreamResponse:
    response = web.StreamResponse(status=200)
    response.content_type = content_type
    if with_length:
        response.content_length = len(data)
    else:
        response.enable_chunked_encoding()
    await response.prepare(request)
    for offset in range(0, len(data), _CHUNK_SIZE):
        await response.write(data[offset : offset + _CHUNK_SIZE])
    await response.write_eof()
    return response


async def _json_body(request: web.Request) -> object:
    """The parsed JSON body, or None (zod's `undefined`) when it is absent, not JSON or not sent as JSON."""
    if request.content_type != "application/json":
        return None
    return json_or_none(await request.text())


def _parse_ids(query: Mapping[str, str]) -> list[str] | str:
    """qs-style `ids[0]=a&ids[1]=b` → ["a", "b"]; otherwise the zod-style issue text."""
    indexed: list[tuple[int, str]] = []
    for key, value in query.items():
        match = re.fullmatch(r"ids\[(\d+)\]", key)
        if match:
            indexed.append((int(match.group(1)), value))
    if indexed:
        return [value for _, value in sorted(indexed, key=lambda pair: pair[0])]
    if "ids" in query:
        return 'Expected array, received string at "ids"'
    return 'Required at "ids"'


def _zod_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _drop_blank_lines(lyrics: str) -> str:
    return "\n".join(line for line in lyrics.split("\n") if line.strip())


def _compose_song(description: str, instrumental: bool) -> tuple[str, str, str]:
    """The title, tags and lyrics "Suno" writes for a description, deterministically."""
    digest = hashlib.sha256(description.encode()).digest()
    words = re.findall(r"[\w']+", description)
    title = " ".join(words[:4]).title() or "Untitled"
    tags = _STYLE_BANK[digest[0] % len(_STYLE_BANK)]
    if instrumental:
        return title, tags, ""
    subject = " ".join(words[:6]).lower() or "nothing at all"
    lyrics = (
        f"[Verse]\nI keep thinking of {subject}\nEvery day it's on my mind\n\n"
        f"[Chorus]\nOh, {subject}\nWe will be fine\n\n"
        f"[Outro]\n{title}"
    )
    return title, tags, lyrics


def _duration_for(clip_id: str) -> float:
    """A v3.5-plausible length (60 s to 4 min) derived from the id."""
    spread = int(hashlib.sha256(clip_id.encode()).hexdigest()[:8], 16) % 18_000
    return round(60 + spread / 100, 2)


@functools.lru_cache(maxsize=32)
def _fake_mp3(clip_id: str, size: int) -> bytes:
    id3_header = b"ID3\x04\x00\x00\x00\x00\x00\x00"  # ID3v2.4, no flags, empty tag
    frame_header = b"\xff\xfb\x90\x64"  # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz
    payload = random.Random(f"fake-mp3:{clip_id}").randbytes(max(size, 0))
    return (id3_header + frame_header + payload)[: max(size, 0)]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


TINY_PNG: bytes = (
    b"\x89PNG\r\n\x1a\n"
    + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    + _png_chunk(b"IDAT", zlib.compress(b"\x00\x80\x40\xff"))
    + _png_chunk(b"IEND", b"")
)
_TINY_MP4 = struct.pack(">I", 20) + b"ftypisom\x00\x00\x02\x00isom"
