"""FakeAceStepApi's state and test-facing control surface: the worker and its queue, outcomes, faults, restart."""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakes.acestep_shapes import (
    DEFAULT_MODELS,
    DETAILS,
    OUTPUT_DIR,
    QUEUE_MAXSIZE,
    ROUTES,
    FakeTask,
    Route,
    TaskOutcome,
    TaskTimings,
    detail,
    is_instrumental_description,
    is_instrumental_lyrics,
)
from tests.fakes.loopback import Interception, LoopbackServer, RecordedRequest
from tests.fakes.music_api_wire import _compose_song, _fake_mp3


class AceStepControls(LoopbackServer):
    """The tasks, the one worker and the files of FakeAceStepApi, and the calls a test makes to steer it."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        timings: TaskTimings | None = None,
        models: tuple[str, ...] = DEFAULT_MODELS,
        queue_maxsize: int = QUEUE_MAXSIZE,
        audio_size: int = 48 * 1024,
        strict_fields: bool = True,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key  # None: the server was started without ACESTEP_API_KEY (no auth at all)
        self.timings = timings if timings is not None else TaskTimings()
        self.models = models  # () while the server has loaded no model
        self.queue_maxsize = queue_maxsize
        self.audio_size = audio_size
        self.strict_fields = strict_fields
        self.paused = False  # the worker takes no new task (a GPU busy elsewhere): tasks wait in the queue
        self.tasks: dict[str, FakeTask] = {}
        self.files: dict[str, bytes] = {}  # path in OUTPUT_DIR -> mp3 bytes (kept across restarts, as on disk)
        self.requests: list[RecordedRequest] = []
        self.restarts = 0
        self._clock = clock
        self._ids = random.Random(seed)
        self._queue: deque[str] = deque()
        self._running: str | None = None
        self._free_at = clock()
        self._finished_runs: list[float] = []
        self._outcomes: deque[TaskOutcome] = deque()
        self._interceptions: dict[str, deque[Interception]] = {route: deque() for route in ROUTES}
        self._closing = asyncio.Event()

    # ---------------------------------------------------------------- control surface

    def next_outcome(self, *outcomes: TaskOutcome) -> None:
        """Outcomes for the next tasks created, one per task in creation order; then `success`."""
        self._outcomes.extend(outcomes)

    def fail_next(self, route: Route, status: int, text: str | None = None, *, times: int = 1) -> None:
        """Answer the next `times` requests to `route` with FastAPI's `{"detail": ...}` and this HTTP status (500
        without `text` is Starlette's plain-text "Internal Server Error", as for an unhandled exception)."""

        async def respond(request: web.Request) -> web.StreamResponse:
            if status == 500 and text is None:
                return web.Response(status=500, text="Internal Server Error")
            return detail(status, text if text is not None else DETAILS.get(status, f"error {status}"))

        self._intercept(route, respond, times)

    def hang_next(self, route: Route, *, seconds: float = 3600, times: int = 1) -> None:
        """Hold the next `times` requests to `route` for `seconds`, then answer normally."""

        async def hang(request: web.Request) -> web.StreamResponse | None:
            await self._sleep(seconds)
            return web.Response(status=503, text="Service Unavailable") if self._closing.is_set() else None

        self._intercept(route, hang, times)

    def restart(self) -> None:
        """The server process restarted: every task (queued, running, finished) is forgotten, as its job store
        and queue live in memory; the files already written stay in its output folder."""
        self.tasks.clear()
        self._queue.clear()
        self._running = None
        self._free_at = self._clock()
        self.restarts += 1

    def submit_directly(self, body: dict[str, Any] | None = None) -> str:
        """Queue a task as if some other client had called release_task (to fill the queue, say)."""
        return self._create_task(body or {"prompt": "someone else's song", "lyrics": "[Instrumental]"}).id

    def audio_bytes(self, task_id: str, take: int) -> bytes:
        """The exact mp3 bytes served for take `take` (1-based) of the task."""
        return _fake_mp3(f"{task_id}:{take}", self.audio_size)

    def release_bodies(self) -> list[Any]:
        """The JSON bodies of every POST /release_task received, however they were answered."""
        return [request.json for request in self.requests if request.route == "release"]

    def query_batches(self) -> list[list[str]]:
        """The task id lists of every POST /query_result received."""
        return [
            list(request.json.get("task_id_list") or [])
            for request in self.requests
            if request.route == "query" and isinstance(request.json, dict)
        ]

    def queue_position(self, task_id: str) -> int:
        """1-based place of a waiting task in the worker's queue; 0 once it started (or is unknown)."""
        self._advance()
        return self._queue.index(task_id) + 1 if task_id in self._queue else 0

    # ---------------------------------------------------------------- the worker

    def _advance(self) -> None:
        """Runs the single worker up to now: a running task ends `run_seconds` after it started, and the next
        queued one starts at that moment (unless paused); a stuck task holds the worker for ever."""
        now = self._clock()
        while True:
            if self._running is not None:
                task = self.tasks[self._running]
                assert task.started is not None
                end = task.started + self.timings.run_seconds
                if task.outcome.kind == "stuck" or now < end:
                    return
                self._finish(task, end)
            if not self._queue or self.paused:
                return
            task = self.tasks[self._queue.popleft()]
            task.started = max(self._free_at, task.submitted)
            self._running = task.id

    def _finish(self, task: FakeTask, at: float) -> None:
        task.finished = at
        self._running = None
        self._free_at = at
        assert task.started is not None
        self._finished_runs.append(at - task.started)
        if task.outcome.kind != "success":
            return
        if task.outcome.file_urls is not None:
            task.files = list(task.outcome.file_urls)
            return
        takes = task.outcome.takes if task.outcome.takes is not None else task.batch_size
        extension = task.body.get("audio_format") or "mp3"
        for take in range(1, takes + 1):
            path = f"{OUTPUT_DIR}/{uuid.UUID(int=self._ids.getrandbits(128), version=4)}.{extension}"
            self.files[path] = self.audio_bytes(task.id, take)
            task.files.append(path)

    def _create_task(self, body: dict[str, Any]) -> FakeTask:
        """What the language model writes for the request, and the task queued for the worker. With a
        `sample_query` the model writes caption, lyrics and length itself (the request's `audio_duration` is
        overwritten, as api_server.py does); else the caption and lyrics are the request's."""
        task_id = str(uuid.UUID(int=self._ids.getrandbits(128), version=4))
        query = body.get("sample_query") or ""
        if query:
            _, caption, lyrics = _compose_song(query, is_instrumental_description(query))
            lyrics = lyrics or "[Instrumental]"
            duration = _planned_duration(task_id)
        else:
            caption, lyrics = body.get("prompt") or body.get("caption") or "", body.get("lyrics") or ""
            lyrics = "[Instrumental]" if is_instrumental_lyrics(lyrics) else lyrics
            duration = float(body.get("audio_duration") or _planned_duration(task_id))
        chosen = body.get("model")
        model = chosen if chosen in self.models else self.models[0] if self.models else ""
        task = FakeTask(
            id=task_id,
            body=dict(body),
            outcome=self._outcomes.popleft() if self._outcomes else TaskOutcome.success(),
            caption=caption,
            lyrics=lyrics,
            duration=duration,
            model=model,
            submitted=self._clock(),
        )
        self.tasks[task_id] = task
        self._queue.append(task_id)
        return task

    def _average_job_seconds(self, initial: float) -> float:
        recent = self._finished_runs[-50:]
        return round(sum(recent) / len(recent), 3) if recent else initial


def _planned_duration(task_id: str) -> float:
    """A length the language model might plan: 30 s to 4 min, from the id."""
    return float(30 + int(hashlib.sha256(task_id.encode()).hexdigest()[:6], 16) % 211)
