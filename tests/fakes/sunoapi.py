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
- over-long fields → code 413 with msg ``"<field> too long (max N characters)"``;
- each stage is also POSTed to ``callBackUrl`` when it is a loopback address (tests/fakes/sunoapi_callbacks.py).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.loopback import RecordedRequest, json_or_none
from tests.fakes.music_api_wire import TINY_PNG, _compose_song, _duration_for, _send_bytes
from tests.fakes.sunoapi_controls import SunoTaskApiControls
from tests.fakes.sunoapi_shapes import (
    _PROGRESS,
    BAD_GATEWAY_HTML,
    ENVELOPE_MESSAGES,
    FAILURE_DEFAULTS,
    INSUFFICIENT_CREDITS_MESSAGE,
    MODEL_NAMES,
    MODELS,
    NON_CUSTOM_PROMPT_LIMIT,
    PLAIN_TEXT_500_BODY,
    PROMPT_LIMITS,
    ROUTES,
    SENSITIVE_WORDS_MESSAGE,
    SONGS_PER_TASK,
    STYLE_LIMITS,
    SUCCESS_MESSAGE,
    TASK_NOT_FOUND_MESSAGE,
    TITLE_LIMIT,
    UNAUTHORIZED_MESSAGE,
    FailureStatus,
    FakeSong,
    FakeTask,
    Handler,
    Interception,
    ProgressStatus,
    Route,
    TaskOutcome,
    TaskStatus,
    TaskTimings,
    _as_progress,
    _envelope_code,
    _not_found,
    _SongView,
    _too_long,
)

__all__ = [
    "BAD_GATEWAY_HTML",
    "ENVELOPE_MESSAGES",
    "FAILURE_DEFAULTS",
    "INSUFFICIENT_CREDITS_MESSAGE",
    "MODELS",
    "MODEL_NAMES",
    "NON_CUSTOM_PROMPT_LIMIT",
    "PLAIN_TEXT_500_BODY",
    "PROMPT_LIMITS",
    "ROUTES",
    "SENSITIVE_WORDS_MESSAGE",
    "SONGS_PER_TASK",
    "STYLE_LIMITS",
    "SUCCESS_MESSAGE",
    "TASK_NOT_FOUND_MESSAGE",
    "TITLE_LIMIT",
    "UNAUTHORIZED_MESSAGE",
    "FailureStatus",
    "FakeSong",
    "FakeSunoTaskApi",
    "FakeTask",
    "Handler",
    "Interception",
    "ProgressStatus",
    "Route",
    "TaskOutcome",
    "TaskStatus",
    "TaskTimings",
]


class FakeSunoTaskApi(SunoTaskApiControls):
    """aiohttp server on 127.0.0.1 (random port) that behaves like sunoapi.org / kie.ai's Suno task API."""

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
        self.callbacks.follow(task)
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

    def _callback_songs(self, task: FakeTask) -> list[dict[str, Any]]:
        """The songs as a callback carries them: record-info's, in snake_case."""
        response = self._record_view(task)["response"] or {}
        renamed = {"audioUrl": "audio_url", "streamAudioUrl": "stream_audio_url", "imageUrl": "image_url"}
        renamed |= {"modelName": "model_name"}
        return [{renamed.get(key, key): value for key, value in song.items()} for song in response.get("sunoData", [])]

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
