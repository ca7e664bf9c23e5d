"""In-process fake of ACE-Step 1.5's HTTP API server (`acestep/api_server.py`, `docs/en/API.md`).

Routes (successes in the envelope ``{"data", "code": 200, "error": null, "timestamp", "extra": null}``; errors as
FastAPI's ``{"detail": "..."}`` with their HTTP status):

- ``POST /release_task`` (JSON; key as ``ai_token`` in the body or ``Authorization``) → ``data: {task_id,
  status: "queued", queue_position}``: the one place where ``status`` is a string. 429 "Server busy: queue is
  full" once ``queue_maxsize`` tasks wait (nothing is created); 400 for a body that is not an object; 415 for a
  body that is neither JSON nor a form.
- ``POST /query_result`` ``{"task_id_list": [...]}`` (many at once) → ``data: [{task_id, status: 0|1|2, result:
  "<JSON string>", progress_text}]``. ``result`` is JSON inside the JSON string: while queued or running one item
  ``{file: "", status: 0, progress, stage}``; on success one item per take ``{file: "/v1/audio?path=<encoded>",
  status: 1, prompt, lyrics, metas: {bpm, duration, genres, keyscale, timesignature}, dit_model, ...}``; on
  failure status 2 (``error`` only in the job store's shape). **An id it does not know answers ``{task_id,
  result: "[]", status: 0}`` for ever** (no ``progress_text``); its tasks live in memory: ``restart()``.
- ``GET /v1/audio?path=`` (key in ``Authorization``) → the file's bytes; 403 outside its output folder, 404 missing.
- ``GET /health`` (no key), ``GET /v1/models`` and ``GET /v1/stats`` (key in ``Authorization``).

One worker runs the tasks one after the other (``TaskTimings.run_seconds`` each), as the real server does on one
GPU, so a task's ``queue_position`` and its wait are real. The choices where the real server is vague or lenient
are documented where they are made: the fake refuses unknown or mistyped fields (``strict_fields``) where the
real one ignores or coerces them, and with a ``sample_query`` its "language model" plans its own length, as the
real one does (the request's ``audio_duration`` is then overwritten). The real server also keeps finished
results in a disk cache (diskcache, when installed); ``restart()`` models the plain in-memory case the issue
describes, where every task is forgotten.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.fakes.acestep_controls import AceStepControls
from tests.fakes.acestep_shapes import (
    ACCESS_DENIED_DETAIL,
    AUDIO_FORMATS,
    AUDIO_NOT_FOUND_DETAIL,
    BOOL_FIELDS,
    DEFAULT_MODELS,
    DETAILS,
    INITIAL_AVG_JOB_SECONDS,
    INT_FIELDS,
    INVALID_KEY_DETAIL,
    INVALID_TOKEN_DETAIL,
    KNOWN_FIELDS,
    LM_MODEL,
    MAX_BATCH_SIZE,
    MISSING_HEADER_DETAIL,
    MISSING_TOKEN_DETAIL,
    NOT_AN_OBJECT_DETAIL,
    NUMBER_FIELDS,
    OUTPUT_DIR,
    QUEUE_FULL_DETAIL,
    STAGES,
    STRING_FIELDS,
    TASK_TIMEOUT_SECONDS,
    FakeTask,
    Route,
    TaskOutcome,
    TaskTimings,
    audio_url,
    detail,
    envelope,
    inside_output_dir,
)
from tests.fakes.loopback import json_or_none

__all__ = [
    "DEFAULT_MODELS",
    "DETAILS",
    "OUTPUT_DIR",
    "QUEUE_FULL_DETAIL",
    "FakeAceStepApi",
    "FakeTask",
    "Route",
    "TaskOutcome",
    "TaskTimings",
]


class FakeAceStepApi(AceStepControls):
    """aiohttp server on 127.0.0.1 (random port) that behaves like ACE-Step 1.5's API server."""

    def _build_app(self) -> web.Application:
        app = web.Application()
        router = app.router
        router.add_post("/release_task", self._endpoint("release", self._handle_release))
        router.add_post("/query_result", self._endpoint("query", self._handle_query))
        router.add_get("/health", self._endpoint("health", self._handle_health))
        router.add_get("/v1/models", self._endpoint("models", self._handle_models))
        router.add_get("/v1/stats", self._endpoint("stats", self._handle_stats))
        router.add_get("/v1/audio", self._endpoint("audio", self._handle_audio))
        router.add_route("*", "/{tail:.*}", self._endpoint(None, self._handle_not_found))
        return app

    # ---------------------------------------------------------------- routes

    async def _handle_release(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        refused = self._token_refusal(request, body) or self._field_refusal(body)
        if refused is not None:
            return refused
        self._advance()
        if len(self._queue) >= self.queue_maxsize:
            return detail(429, QUEUE_FULL_DETAIL)
        task = self._create_task({key: value for key, value in body.items() if key != "ai_token"})
        return envelope({"task_id": task.id, "status": "queued", "queue_position": len(self._queue)})

    async def _handle_query(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        refused = self._token_refusal(request, body)
        if refused is not None:
            return refused
        ids = body.get("task_id_list", "[]")
        if isinstance(ids, str):
            ids = json_or_none(ids)
        self._advance()
        return envelope([self._task_view(str(task_id)) for task_id in (ids if isinstance(ids, list) else [])])

    async def _handle_health(self, request: web.Request) -> web.StreamResponse:
        return envelope({"status": "ok", "service": "ACE-Step API", "version": "1.0"})

    async def _handle_models(self, request: web.Request) -> web.StreamResponse:
        refused = self._header_refusal(request)
        if refused is not None:
            return refused
        models = [{"name": name, "is_default": index == 0} for index, name in enumerate(self.models)]
        return envelope({"models": models, "default_model": self.models[0] if self.models else None})

    async def _handle_stats(self, request: web.Request) -> web.StreamResponse:
        refused = self._header_refusal(request)
        if refused is not None:
            return refused
        self._advance()
        states = [task.state for task in self.tasks.values()]
        jobs = {name: states.count(name) for name in ("queued", "running", "succeeded", "failed")}
        return envelope(
            {
                "jobs": {"total": len(states), **jobs},
                "queue_size": len(self._queue),
                "queue_maxsize": self.queue_maxsize,
                "avg_job_seconds": self._average_job_seconds(INITIAL_AVG_JOB_SECONDS),
            }
        )

    async def _handle_audio(self, request: web.Request) -> web.StreamResponse:
        refused = self._header_refusal(request)
        if refused is not None:
            return refused
        path = request.query.get("path")
        if path is None:
            missing = [{"type": "missing", "loc": ["query", "path"], "msg": "Field required", "input": None}]
            return web.json_response({"detail": missing}, status=422)
        if not inside_output_dir(path):
            return detail(403, ACCESS_DENIED_DETAIL)
        data = self.files.get(path)
        if data is None:
            return detail(404, AUDIO_NOT_FOUND_DETAIL)
        content_type = {"wav": "audio/wav", "flac": "audio/flac"}.get(path.rpartition(".")[2], "audio/mpeg")
        return web.Response(body=data, content_type=content_type)

    async def _handle_not_found(self, request: web.Request) -> web.StreamResponse:
        return detail(404, "Not Found")

    # ---------------------------------------------------------------- behaviour

    async def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        """A JSON object from a JSON (or `+json`) body, or a form; 400 / 415 as the real server answers."""
        content_type = request.content_type
        if content_type == "application/json" or content_type.endswith("+json"):
            parsed = json_or_none(await request.text())
            return parsed if isinstance(parsed, dict) else detail(400, NOT_AN_OBJECT_DETAIL)
        if content_type == "application/x-www-form-urlencoded":
            return dict(await request.post())  # type: ignore[arg-type]
        return detail(415, DETAILS[415])

    def _token_refusal(self, request: web.Request, body: dict[str, Any]) -> web.Response | None:
        """release_task and query_result: `ai_token` in the body first, else the Authorization header."""
        if self.api_key is None:
            return None
        token = body.get("ai_token")
        if token:
            return None if token == self.api_key else detail(401, INVALID_TOKEN_DETAIL)
        if not request.headers.get("Authorization"):
            return detail(401, MISSING_TOKEN_DETAIL)
        return self._header_refusal(request)

    def _header_refusal(self, request: web.Request) -> web.Response | None:
        """The other routes: the key in `Authorization`, with or without "Bearer "."""
        if self.api_key is None:
            return None
        header = request.headers.get("Authorization")
        if not header:
            return detail(401, MISSING_HEADER_DETAIL)
        token = header.removeprefix("Bearer ")
        return None if token == self.api_key else detail(401, INVALID_KEY_DETAIL)

    def _field_refusal(self, body: dict[str, Any]) -> web.Response | None:
        """The fake's strictness (the real server ignores unknown fields and coerces types): 400 for either."""
        if not self.strict_fields:
            return None
        unknown = sorted(set(body) - KNOWN_FIELDS)
        if unknown:
            return detail(400, f"unknown field(s): {', '.join(unknown)}")
        for name, value in body.items():
            expected = _expected_type(name)
            if value is not None and not expected(value):
                return detail(400, f"{name}: wrong type {type(value).__name__}")
        duration = body.get("audio_duration")
        if duration is not None and not 10 <= duration <= 600:
            return detail(400, "audio_duration must be between 10 and 600 seconds")
        batch = body.get("batch_size")
        if batch is not None and not 1 <= batch <= MAX_BATCH_SIZE:
            return detail(400, f"batch_size must be between 1 and {MAX_BATCH_SIZE}")
        if body.get("audio_format") not in (None, *AUDIO_FORMATS):
            return detail(400, f"audio_format must be one of {', '.join(AUDIO_FORMATS)}")
        return None

    def _task_view(self, task_id: str) -> dict[str, Any]:
        task = self.tasks.get(task_id)
        if task is None:
            return {"task_id": task_id, "result": "[]", "status": 0}
        state = task.state
        status = {"queued": 0, "running": 0, "succeeded": 1, "failed": 2}[state]
        items = self._result_items(task)
        age = self._clock() - task.submitted
        if status == 0 and age > TASK_TIMEOUT_SECONDS:
            status = 2  # query_result gives up on a task that stayed at status 0 for an hour
        view = {"task_id": task_id, "result": json.dumps(items, ensure_ascii=False), "status": status}
        view["progress_text"] = f"[API Server] {state} {task_id[:8]}" if status == 0 else ""
        return view

    def _result_items(self, task: FakeTask) -> list[dict[str, Any]]:
        """The decoded `result`, in the shape the real server keeps for the task's state."""
        common = {"file": "", "wave": "", "create_time": int(task.create_time), "env": "development"}
        state = task.state
        if state == "queued":  # not in the disk cache yet: the job store's shape
            return [
                {**common, "status": 0, "prompt": "", "lyrics": "", "metas": {}, "progress": 0.0}
                | {"stage": "queued", "error": None}
            ]
        if state == "running":
            fraction = self._fraction(task)
            stage = next(name for start, name in reversed(STAGES) if fraction >= start)
            return [{**common, "status": 0, "progress": round(fraction, 3), "stage": stage}]
        if state == "failed":
            item = {**common, "status": 2, "progress": 0.0, "stage": "failed"}
            if task.outcome.failure_shape == "store":
                item |= {"prompt": "", "lyrics": "", "metas": {}, "error": task.outcome.error}
            return [item]
        metas = {"bpm": 120, "duration": task.duration, "genres": "", "keyscale": "C Major", "timesignature": "4"}
        return [
            {**common, "file": audio_url(path), "status": 1, "prompt": task.caption, "lyrics": task.lyrics}
            | {"metas": metas | {"prompt": task.body.get("prompt", ""), "lyrics": task.body.get("lyrics", "")}}
            | {"generation_info": "fake", "seed_value": "1234,5678", "lm_model": LM_MODEL, "dit_model": task.model}
            | {"progress": 1.0, "stage": "succeeded"}
            for path in task.files
        ]

    def _fraction(self, task: FakeTask) -> float:
        assert task.started is not None
        if task.outcome.kind == "stuck":
            return 0.5
        run = max(self.timings.run_seconds, 1e-9)
        return min(max((self._clock() - task.started) / run, 0.0), 0.99)


def _expected_type(name: str) -> Any:
    if name in STRING_FIELDS:
        return lambda value: isinstance(value, str)
    if name in BOOL_FIELDS:
        return lambda value: isinstance(value, bool)
    if name in INT_FIELDS:
        return lambda value: isinstance(value, int) and not isinstance(value, bool)
    if name in NUMBER_FIELDS:
        return lambda value: isinstance(value, int | float) and not isinstance(value, bool)
    return lambda value: True
