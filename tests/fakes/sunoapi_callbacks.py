"""The task fake's callbacks: a POST to each task's `callBackUrl` at the stages sunoapi.org documents.

Stages `text`, `first`, `complete` (or the failure), each once, in a JSON body that uses snake_case where the
record-info poll uses camelCase (providers.md §3): ``{"code": 200, "msg", "data": {"callbackType", "task_id",
"data": [{"id", "audio_url", "stream_audio_url", "image_url", "prompt", "model_name", "title", "tags",
"createTime", "duration"}]}}``. The provider gives a receiver 15 s and does not retry. Only loopback addresses
are called (the tests talk to nothing else); every attempt is recorded in `callbacks` with its HTTP status.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from tests.fakes.sunoapi_shapes import FakeTask, TaskStatus

CALLBACK_TIMEOUT_SECONDS = 15.0
WATCH_INTERVAL_SECONDS = 0.05
STAGES: dict[TaskStatus, str] = {"TEXT_SUCCESS": "text", "FIRST_SUCCESS": "first", "SUCCESS": "complete"}


@dataclass
class CallbackAttempt:
    task_id: str
    url: str
    stage: str
    status: int | None  # None: no answer (refused, timed out) or not a loopback address (not called)


class CallbackPusher:
    """Watches every task and POSTs each stage it reaches to its callBackUrl."""

    def __init__(
        self, status_of: Callable[[str], TaskStatus], songs_of: Callable[[FakeTask], list[dict[str, Any]]]
    ) -> None:
        self._status_of = status_of
        self._songs_of = songs_of
        self.attempts: list[CallbackAttempt] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def follow(self, task: FakeTask) -> None:
        url = str(task.body.get("callBackUrl") or "")
        watcher = asyncio.create_task(self._watch(task, url), name=f"fake-callbacks-{task.id}")
        self._tasks.add(watcher)
        watcher.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for watcher in list(self._tasks):
            watcher.cancel()
        for watcher in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _watch(self, task: FakeTask, url: str) -> None:
        sent: set[str] = set()
        while True:
            status = self._status_of(task.id)
            stage = STAGES.get(status, "" if status in ("PENDING", *STAGES) else "error")
            if stage and stage not in sent:
                sent.add(stage)
                await self._push(task, url, stage)
            if stage in ("complete", "error"):
                return
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)

    async def _push(self, task: FakeTask, url: str, stage: str) -> None:
        attempt = CallbackAttempt(task.id, url, stage, None)
        self.attempts.append(attempt)
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
            return
        failed = stage == "error"
        body = {
            "code": 501 if failed else 200,
            "msg": "Generation failed." if failed else "All generated successfully.",
            "data": {"callbackType": stage, "task_id": task.id, "data": [] if failed else self._songs_of(task)},
        }
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT_SECONDS))
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with self._session.post(url, json=body) as response:
                attempt.status = response.status
