"""In-process fake of the Suno "task" resellers (sunoapi.org, kie.ai): providers.md §3 "Family A".

Routes (all JSON answers use the envelope ``{"code", "msg", "data"}``; by default HTTP 200 whatever the code):

- ``POST /api/v1/generate`` (Bearer) → ``data: {"taskId": "<32 hex>"}``
- ``GET /api/v1/generate/record-info?taskId=`` (Bearer) → task-level status and two songs (camelCase)
- ``GET /api/v1/generate/credit`` (Bearer) → ``data: <credits left>``
- ``GET /files/<song id>.mp3``, ``GET /stream/<song id>``, ``GET /images/<song id>.png`` (no auth, like a CDN)

Choices where the provider docs are vague (documented here and in the report):

- unknown ``taskId`` → envelope code 400 "task not found" (``unknown_task_code`` changes the code);
- before ``TEXT_SUCCESS`` (and for tasks failing before it) ``response`` is ``null``; ``pending_response="empty"``
  gives ``{"taskId", "sunoData": []}`` instead;
- from ``TEXT_SUCCESS`` both songs are listed with title/tags/lyrics, ``streamAudioUrl`` and ``imageUrl``; a song whose
  audio is not ready has ``audioUrl: ""`` and ``duration: null``; ``createTime`` is ``"YYYY-MM-DD HH:MM:SS"`` (UTC);
- each generate costs ``credits_per_task`` credits at submit (never refunded); too few credits → code 429;
- ``callBackUrl`` is required (kie.ai answers 422 "Please enter callBackUrl" without it, live since June 2026)
  unless ``require_callback_url=False`` (sunoapi.org's older behaviour); unknown body fields are ignored;
- over-long fields → code 413 with msg ``"<field> too long (max N characters)"``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from tests.fakes.loopback import LoopbackServer, RecordedRequest, json_or_none
from tests.fakes.music_api_wire import TINY_PNG, _compose_song, _duration_for, _fake_mp3, _send_bytes

Route = Literal["generate", "record", "credit", "file"]
"""Routes that accept injected failures: generate (POST /api/v1/generate), record (record-info), credit, and file
(the three download routes /files, /stream, /images)."""

TaskStatus = Literal[
    "PENDING",
    "TEXT_SUCCESS",
    "FIRST_SUCCESS",
    "SUCCESS",
    "CREATE_TASK_FAILED",
    "GENERATE_AUDIO_FAILED",
    "CALLBACK_EXCEPTION",
    "SENSITIVE_WORD_ERROR",
]
ProgressStatus = Literal["PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS", "SUCCESS"]
FailureStatus = Literal["CREATE_TASK_FAILED", "GENERATE_AUDIO_FAILED", "CALLBACK_EXCEPTION", "SENSITIVE_WORD_ERROR"]

ROUTES: frozenset[str] = frozenset({"generate", "record", "credit", "file"})
MODELS: tuple[str, ...] = ("V4", "V4_5", "V4_5PLUS", "V4_5ALL", "V5", "V5_5")
# modelName reported per song; the chirp code names beyond V4/V4_5/V4_5PLUS/V5 are guesses (UNCONFIRMED).
MODEL_NAMES: Mapping[str, str] = {
    "V4": "chirp-v4",
    "V4_5": "chirp-auk",
    "V4_5PLUS": "chirp-bluejay",
    "V4_5ALL": "chirp-auk",
    "V5": "chirp-crow",
    "V5_5": "chirp-v5-5",
}
NON_CUSTOM_PROMPT_LIMIT = 500
PROMPT_LIMITS: Mapping[str, int] = {model: 3000 if model == "V4" else 5000 for model in MODELS}
STYLE_LIMITS: Mapping[str, int] = {model: 200 if model == "V4" else 1000 for model in MODELS}
TITLE_LIMIT = 80
SONGS_PER_TASK = 2

SUCCESS_MESSAGE = "success"
UNAUTHORIZED_MESSAGE = "Unauthorized"
TASK_NOT_FOUND_MESSAGE = "task not found"
INSUFFICIENT_CREDITS_MESSAGE = "The current credits are insufficient. Please top up."
SENSITIVE_WORDS_MESSAGE = "The description contains sensitive words"
ENVELOPE_MESSAGES: Mapping[int, str] = {
    400: "Invalid parameters",
    401: UNAUTHORIZED_MESSAGE,
    404: "Not found",
    405: "Rate limit exceeded, please try again later",
    413: "prompt too long",
    429: INSUFFICIENT_CREDITS_MESSAGE,
    430: "Your call frequency is too high. Please try again later.",
    455: "The system is under maintenance, please try again later.",
    500: "Server error, please try again later.",
}
FAILURE_DEFAULTS: Mapping[str, tuple[int, str]] = {
    "CREATE_TASK_FAILED": (500, "Failed to create the generation task"),
    "GENERATE_AUDIO_FAILED": (501, "Audio generation failed"),
    "CALLBACK_EXCEPTION": (500, "Callback to callBackUrl failed"),
    "SENSITIVE_WORD_ERROR": (400, SENSITIVE_WORDS_MESSAGE),
}
PLAIN_TEXT_500_BODY = "Internal Server Error"
BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)

_PROGRESS: tuple[ProgressStatus, ...] = ("PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS", "SUCCESS")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Interception = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


@dataclass
class TaskTimings:
    """Seconds after submit at which a task reaches each status; read on every request, so mutable."""

    text_after: float = 0.1
    first_after: float = 0.25
    success_after: float = 0.4

    def at(self, stage: ProgressStatus) -> float:
        return {
            "PENDING": 0.0,
            "TEXT_SUCCESS": self.text_after,
            "FIRST_SUCCESS": self.first_after,
            "SUCCESS": self.success_after,
        }[stage]


@dataclass(frozen=True)
class TaskOutcome:
    """How one task ends. `reached` is the last stage shown before a failure (its songs stay in `response`)."""

    kind: Literal["success", "failed", "stuck"]
    status: TaskStatus = "SUCCESS"
    error_code: int | None = None
    error_message: str | None = None
    after: float | None = None
    reached: ProgressStatus = "PENDING"

    @classmethod
    def success(cls) -> TaskOutcome:
        return cls(kind="success")

    @classmethod
    def failed(
        cls,
        status: FailureStatus,
        *,
        reached: ProgressStatus = "PENDING",
        error_code: int | None = None,
        error_message: str | None = None,
        after: float | None = None,
    ) -> TaskOutcome:
        """Any failure status. `after` defaults to 0 when `reached` is PENDING, else to the time the stage after
        `reached` would come (SUCCESS: `success_after`). errorCode/errorMessage default per status."""
        default_code, default_message = FAILURE_DEFAULTS[status]
        return cls(
            kind="failed",
            status=status,
            error_code=default_code if error_code is None else error_code,
            error_message=default_message if error_message is None else error_message,
            after=after,
            reached=reached,
        )

    @classmethod
    def create_task_failed(
        cls, message: str | None = None, *, error_code: int | None = None, after: float | None = None
    ) -> TaskOutcome:
        """CREATE_TASK_FAILED with no songs, by default on the first poll."""
        return cls.failed("CREATE_TASK_FAILED", error_code=error_code, error_message=message, after=after)

    @classmethod
    def generate_audio_failed(
        cls, message: str | None = None, *, error_code: int | None = None, after: float | None = None
    ) -> TaskOutcome:
        """Goes through TEXT_SUCCESS, then GENERATE_AUDIO_FAILED (by default when FIRST_SUCCESS would come);
        the text-stage songs stay in `response` with empty audio and stream URLs."""
        return cls.failed(
            "GENERATE_AUDIO_FAILED", reached="TEXT_SUCCESS", error_code=error_code, error_message=message, after=after
        )

    @classmethod
    def sensitive_word(
        cls, message: str | None = None, *, error_code: int | None = None, after: float | None = None
    ) -> TaskOutcome:
        """SENSITIVE_WORD_ERROR ("The description contains sensitive words"), by default on the first poll."""
        return cls.failed("SENSITIVE_WORD_ERROR", error_code=error_code, error_message=message, after=after)

    @classmethod
    def callback_exception(cls, message: str | None = None, *, after: float | None = None) -> TaskOutcome:
        """CALLBACK_EXCEPTION after the songs are complete (their audio stays downloadable)."""
        return cls.failed("CALLBACK_EXCEPTION", reached="SUCCESS", error_message=message, after=after)

    @classmethod
    def stuck(cls, at: Literal["PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS"] = "PENDING") -> TaskOutcome:
        """Never progresses past `at`."""
        return cls(kind="stuck", reached=at)

    def failure_time(self, timings: TaskTimings) -> float:
        if self.after is not None:
            return self.after
        if self.reached == "PENDING":
            return 0.0
        following = _PROGRESS[min(_PROGRESS.index(self.reached) + 1, len(_PROGRESS) - 1)]
        return timings.at(following)


@dataclass
class FakeSong:
    """One of the two songs of a task."""

    id: str
    title: str
    tags: str
    lyrics: str
    model_name: str
    create_time: str
    duration: float


@dataclass
class FakeTask:
    """One task the fake accepted, with what it will become."""

    id: str
    body: dict[str, Any]
    outcome: TaskOutcome
    songs: list[FakeSong]
    created_at: str
    created_monotonic: float

    @property
    def song_ids(self) -> list[str]:
        return [song.id for song in self.songs]

    def status_after(self, elapsed: float, timings: TaskTimings) -> TaskStatus:
        outcome = self.outcome
        if outcome.kind == "failed" and elapsed >= outcome.failure_time(timings):
            return outcome.status
        natural: ProgressStatus = "PENDING"
        for stage in _PROGRESS:
            if elapsed >= timings.at(stage):
                natural = stage
        ceiling: ProgressStatus = "SUCCESS" if outcome.kind == "success" else outcome.reached
        return _PROGRESS[min(_PROGRESS.index(natural), _PROGRESS.index(ceiling))]


@dataclass(frozen=True)
class _SongView:
    song: FakeSong
    audio_url: str
    stream_url: str
    image_url: str
    duration: float | None


class FakeSunoTaskApi(LoopbackServer):
    """aiohttp server on 127.0.0.1 (random port) that behaves like sunoapi.org / kie.ai's Suno task API."""

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        timings: TaskTimings | None = None,
        http_status_mirrors_code: bool = False,
        audio_size: int = 64 * 1024,
        credits: int = 1000,
        credits_per_task: int = 10,
        unknown_task_code: int = 400,
        pending_response: Literal["null", "empty"] = "null",
        require_callback_url: bool = True,
        title_limit: int = TITLE_LIMIT,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key
        self.timings = timings if timings is not None else TaskTimings()
        self.http_status_mirrors_code = http_status_mirrors_code
        self.audio_size = audio_size
        self.credits = credits
        self.credits_per_task = credits_per_task
        self.unknown_task_code = unknown_task_code
        self.pending_response: Literal["null", "empty"] = pending_response
        self.require_callback_url = require_callback_url
        self.title_limit = title_limit
        self.tasks: dict[str, FakeTask] = {}
        self.requests: list[RecordedRequest] = []
        self._clock = clock
        self._ids = random.Random(seed)
        self._outcomes: deque[TaskOutcome] = deque()
        self._interceptions: dict[str, deque[Interception]] = {route: deque() for route in ROUTES}
        self._songs: dict[str, tuple[FakeTask, int]] = {}
        self._closing = asyncio.Event()

    # ---------------------------------------------------------------- control surface

    def next_outcome(self, *outcomes: TaskOutcome) -> None:
        """Queue outcomes for the next tasks created, one per task in creation order; then `success`."""
        self._outcomes.extend(outcomes)

    def fail_next(
        self,
        route: Route,
        *,
        code: int,
        msg: str | None = None,
        times: int = 1,
        http_status: int | None = None,
    ) -> None:
        """Answer the next `times` requests to `route` with the envelope `{code, msg, data: null}`. `msg` defaults to
        ENVELOPE_MESSAGES[code]; the HTTP status follows `http_status_mirrors_code` unless `http_status` is given."""
        text = msg if msg is not None else ENVELOPE_MESSAGES.get(code, f"error {code}")

        async def respond(request: web.Request) -> web.StreamResponse:
            return self._envelope(code, text, None, http_status=http_status)

        self._intercept(route, respond, times)

    def fail_with_http(
        self,
        route: Route,
        status: int,
        body: str | dict[str, Any] | list[Any] = PLAIN_TEXT_500_BODY,
        content_type: str = "text/plain",
        *,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests to `route` with exactly this HTTP status and body (dicts/lists as JSON),
        e.g. `fail_with_http("record", 502, BAD_GATEWAY_HTML, "text/html")`."""
        text = body if isinstance(body, str) else json.dumps(body)

        async def respond(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, text=text, content_type=content_type)

        self._intercept(route, respond, times)

    def hang_next(self, route: Route, *, seconds: float = 3600, times: int = 1) -> None:
        """Hold the next `times` requests to `route` for `seconds`, then answer normally (stop() ends the hold early
        with a plain-text HTTP 503). No task is created while a generate call is held."""

        async def hang(request: web.Request) -> web.StreamResponse | None:
            await self._sleep(seconds)
            if self._closing.is_set():
                return web.Response(status=503, text="Service Unavailable")
            return None

        self._intercept(route, hang, times)

    def status_of(self, task_id: str) -> TaskStatus:
        """The task's status right now."""
        task = self.tasks[task_id]
        return task.status_after(self._clock() - task.created_monotonic, self.timings)

    def audio_bytes(self, song_id: str) -> bytes:
        """The exact mp3 bytes served for this song (deterministic per id and `audio_size`)."""
        return _fake_mp3(song_id, self.audio_size)

    def generate_calls(self) -> int:
        """POSTs received on /api/v1/generate, whatever they were answered."""
        return sum(1 for request in self.requests if request.route == "generate")

    def record_calls(self) -> int:
        """GETs received on record-info, whatever they were answered."""
        return sum(1 for request in self.requests if request.route == "record")

    # ---------------------------------------------------------------- app wiring

    def _build_app(self) -> web.Application:
        app = web.Application()
        router = app.router
        router.add_post("/api/v1/generate", self._endpoint("generate", self._handle_generate))
        router.add_get("/api/v1/generate/record-info", self._endpoint("record", self._handle_record))
        router.add_get("/api/v1/generate/credit", self._endpoint("credit", self._handle_credit))
        router.add_get("/files/{song_id}.mp3", self._endpoint("file", self._handle_audio))
        router.add_get("/stream/{song_id}", self._endpoint("file", self._handle_stream))
        router.add_get("/images/{song_id}.png", self._endpoint("file", self._handle_image))
        router.add_route("*", "/{tail:.*}", self._endpoint(None, self._handle_not_found))
        return app

    def _answered(self, record: RecordedRequest, response: web.StreamResponse) -> None:
        record.code = _envelope_code(response)

    def _envelope(self, code: int, msg: str, data: Any, *, http_status: int | None = None) -> web.Response:
        if http_status is None:
            http_status = code if self.http_status_mirrors_code and 100 <= code <= 599 else 200
        return web.json_response({"code": code, "msg": msg, "data": data}, status=http_status)

    # ---------------------------------------------------------------- API routes

    async def _handle_generate(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._envelope(401, UNAUTHORIZED_MESSAGE, None)
        body = json_or_none(await request.text()) if request.content_type == "application/json" else None
        problem = self._validate(body)
        if problem is not None:
            return self._envelope(*problem, None)
        assert isinstance(body, dict)
        if self.credits < self.credits_per_task:
            return self._envelope(429, INSUFFICIENT_CREDITS_MESSAGE, None)
        self.credits -= self.credits_per_task
        task = self._create_task(body)
        return self._envelope(200, SUCCESS_MESSAGE, {"taskId": task.id})

    async def _handle_record(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._envelope(401, UNAUTHORIZED_MESSAGE, None)
        task_id = request.query.get("taskId", "")
        if not task_id:
            return self._envelope(400, "taskId is required", None)
        task = self.tasks.get(task_id)
        if task is None:
            return self._envelope(self.unknown_task_code, TASK_NOT_FOUND_MESSAGE, None)
        return self._envelope(200, SUCCESS_MESSAGE, self._record_view(task))

    async def _handle_credit(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._envelope(401, UNAUTHORIZED_MESSAGE, None)
        return self._envelope(200, SUCCESS_MESSAGE, self.credits)

    async def _handle_audio(self, request: web.Request) -> web.StreamResponse:
        song_id = request.match_info["song_id"]
        view = self._song_view_by_id(song_id)
        if view is None or not view.audio_url:
            return _not_found()
        return await _send_bytes(request, self.audio_bytes(song_id), "audio/mpeg", with_length=True)

    async def _handle_stream(self, request: web.Request) -> web.StreamResponse:
        song_id = request.match_info["song_id"]
        view = self._song_view_by_id(song_id)
        if view is None or not view.stream_url:
            return _not_found()
        return await _send_bytes(request, self.audio_bytes(song_id), "audio/mpeg", with_length=False)

    async def _handle_image(self, request: web.Request) -> web.StreamResponse:
        view = self._song_view_by_id(request.match_info["song_id"])
        if view is None or not view.image_url:
            return _not_found()
        return web.Response(body=TINY_PNG, content_type="image/png")

    async def _handle_not_found(self, request: web.Request) -> web.StreamResponse:
        return _not_found()

    # ---------------------------------------------------------------- behaviour

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.api_key and bool(self.api_key)

    def _validate(self, body: object) -> tuple[int, str] | None:
        """(code, msg) of the first problem with a generate body, or None."""
        if not isinstance(body, dict):
            return 400, "Invalid request body: expected a JSON object"
        for name in ("customMode", "instrumental"):
            if name not in body:
                return 400, f"{name} is required"
            if not isinstance(body[name], bool):
                return 400, f"{name} must be a boolean"
        model = body.get("model")
        if model is None or model == "":
            return 400, "model is required"
        if model not in MODELS:
            return 400, f"model must be one of {', '.join(MODELS)}"
        for name in ("prompt", "style", "title", "negativeTags", "callBackUrl"):
            if body.get(name) is not None and not isinstance(body[name], str):
                return 400, f"{name} must be a string"
        if body.get("vocalGender") not in {None, "m", "f"}:
            return 400, "vocalGender must be m or f"
        if self.require_callback_url and not body.get("callBackUrl"):
            return 422, "Please enter callBackUrl"  # kie.ai, live since June 2026
        if not body["customMode"]:
            if not body.get("prompt"):
                return 400, "prompt is required"
            return _too_long("prompt", body["prompt"], NON_CUSTOM_PROMPT_LIMIT)
        required = ["style", "title"] if body["instrumental"] else ["style", "title", "prompt"]
        for name in required:
            if not body.get(name):
                return 400, f"{name} is required"
        limits = {"prompt": PROMPT_LIMITS[model], "style": STYLE_LIMITS[model], "title": self.title_limit}
        for name, limit in limits.items():
            problem = _too_long(name, body.get(name) or "", limit)
            if problem is not None:
                return problem
        return None

    def _create_task(self, body: dict[str, Any]) -> FakeTask:
        task_id = f"{self._ids.getrandbits(128):032x}"
        instrumental: bool = body["instrumental"]
        if body["customMode"]:
            title, tags = body["title"], body["style"]
            lyrics = "" if instrumental else body["prompt"]
        else:
            title, tags, lyrics = _compose_song(body["prompt"], instrumental)
        now = datetime.now(UTC)
        create_time = now.strftime("%Y-%m-%d %H:%M:%S")
        songs = []
        for _ in range(SONGS_PER_TASK):
            song_id = str(uuid.UUID(int=self._ids.getrandbits(128), version=4))
            songs.append(
                FakeSong(
                    id=song_id,
                    title=title,
                    tags=tags,
                    lyrics=lyrics,
                    model_name=MODEL_NAMES[body["model"]],
                    create_time=create_time,
                    duration=_duration_for(song_id),
                )
            )
        task = FakeTask(
            id=task_id,
            body=dict(body),
            outcome=self._outcomes.popleft() if self._outcomes else TaskOutcome.success(),
            songs=songs,
            created_at=now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            created_monotonic=self._clock(),
        )
        self.tasks[task_id] = task
        for index, song in enumerate(songs):
            self._songs[song.id] = (task, index)
        return task

    def _stage(self, task: FakeTask) -> tuple[TaskStatus, ProgressStatus, bool]:
        """(status, stage whose songs are shown, whether the task failed)."""
        status = self.status_of(task.id)
        if status in _PROGRESS:
            return status, _as_progress(status), False
        return status, task.outcome.reached, True

    def _song_view(self, task: FakeTask, index: int) -> _SongView | None:
        """What record-info shows for a song right now, or None while the task has no songs yet."""
        _, stage, failed = self._stage(task)
        reached = _PROGRESS.index(stage)
        if reached < _PROGRESS.index("TEXT_SUCCESS"):
            return None
        song = task.songs[index]
        ready = reached >= _PROGRESS.index("SUCCESS") or (index == 0 and reached >= _PROGRESS.index("FIRST_SUCCESS"))
        streaming = not (failed and stage == "TEXT_SUCCESS")
        return _SongView(
            song=song,
            audio_url=f"{self.base_url}/files/{song.id}.mp3" if ready else "",
            stream_url=f"{self.base_url}/stream/{song.id}" if streaming else "",
            image_url=f"{self.base_url}/images/{song.id}.png",
            duration=song.duration if ready else None,
        )

    def _song_view_by_id(self, song_id: str) -> _SongView | None:
        located = self._songs.get(song_id)
        if located is None:
            return None
        return self._song_view(*located)

    def _record_view(self, task: FakeTask) -> dict[str, Any]:
        status, _, failed = self._stage(task)
        songs = []
        for index in range(len(task.songs)):
            view = self._song_view(task, index)
            if view is None:
                continue
            songs.append(
                {
                    "id": view.song.id,
                    "audioUrl": view.audio_url,
                    "streamAudioUrl": view.stream_url,
                    "imageUrl": view.image_url,
                    "prompt": view.song.lyrics,
                    "modelName": view.song.model_name,
                    "title": view.song.title,
                    "tags": view.song.tags,
                    "createTime": view.song.create_time,
                    "duration": view.duration,
                }
            )
        response: dict[str, Any] | None = {"taskId": task.id, "sunoData": songs}
        if not songs and self.pending_response == "null":
            response = None
        return {
            "taskId": task.id,
            "parentMusicId": "",
            "param": json.dumps(task.body),
            "response": response,
            "status": status,
            "type": "GENERATE",
            "errorCode": task.outcome.error_code if failed else None,
            "errorMessage": task.outcome.error_message if failed else None,
        }


# -------------------------------------------------------------------- helpers


def _as_progress(status: TaskStatus) -> ProgressStatus:
    for stage in _PROGRESS:
        if stage == status:
            return stage
    raise ValueError(status)


def _too_long(name: str, value: str, limit: int) -> tuple[int, str] | None:
    if len(value) > limit:
        return 413, f"{name} too long (max {limit} characters)"
    return None


def _not_found() -> web.Response:
    return web.Response(status=404, text="404: Not Found")


def _envelope_code(response: web.StreamResponse) -> int | None:
    if not isinstance(response, web.Response) or response.content_type != "application/json":
        return None
    body = response.body
    if not isinstance(body, bytes | bytearray):
        return None
    parsed = json_or_none(bytes(body).decode("utf-8", "replace"))
    code = parsed.get("code") if isinstance(parsed, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None
