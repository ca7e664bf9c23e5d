"""FakeSunoTaskApi's state and test-facing control surface: queued outcomes, fault injection, inspection."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

from aiohttp import web

from tests.fakes.loopback import LoopbackServer, RecordedRequest
from tests.fakes.music_api_wire import _fake_mp3
from tests.fakes.sunoapi_callbacks import CallbackPusher
from tests.fakes.sunoapi_shapes import (
    ENVELOPE_MESSAGES,
    PLAIN_TEXT_500_BODY,
    ROUTES,
    TITLE_LIMIT,
    FakeTask,
    Interception,
    Route,
    TaskOutcome,
    TaskStatus,
    TaskTimings,
)


class SunoTaskApiControls(LoopbackServer):
    """The task store and settings of FakeSunoTaskApi, and the calls a test makes to steer or inspect it."""

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
        self.callbacks = CallbackPusher(self.status_of, self._callback_songs)

    def _callback_songs(self, task: FakeTask) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def stop(self) -> None:
        await self.callbacks.stop()
        await super().stop()

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
        self.answer_next(route, status=status, body=body, content_type=content_type, times=times)

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
