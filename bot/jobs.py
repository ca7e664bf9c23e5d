"""The poller: one loop polls what every running job waits for, batched, and hands each job its updates."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from bot.backends import MusicBackend, PollUpdate
from bot.errors import MusicApiError

log = logging.getLogger(__name__)


@dataclass(eq=False)
class PollWatch:
    """A job's subscription: the poll keys it waits for, and a queue of updates (or a fatal API error)."""

    pending: set[str]
    updates: asyncio.Queue[PollUpdate | MusicApiError] = field(default_factory=asyncio.Queue)

    async def next_update(self, timeout: float) -> PollUpdate | MusicApiError:
        """The next update; raises TimeoutError when none arrives in time."""
        # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that arrives as an update does,
        # and a shutdown would then not stop the job.
        async with asyncio.timeout(timeout):
            return await self.updates.get()


class JobPoller:
    """Each tick polls the pending keys of all watches: ceil(pending / batch size) requests, whatever the jobs."""

    def __init__(self, backend: MusicBackend, *, interval: float, batch_size: int) -> None:
        self._backend = backend
        self._interval = interval
        self._batch_size = backend.capabilities.poll_batch_size or batch_size
        self._watches: set[PollWatch] = set()
        self._watch_added = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="job-poller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @contextlib.contextmanager
    def watch(self, keys: Iterable[str]) -> Iterator[PollWatch]:
        """Subscribes to the keys until the block exits; the first poll comes one interval later."""
        subscription = PollWatch(pending=set(keys))
        self._watches.add(subscription)
        self._watch_added.set()
        try:
            yield subscription
        finally:
            self._watches.discard(subscription)

    async def _run(self) -> None:
        while True:
            if not self._watches:
                self._watch_added.clear()
                await self._watch_added.wait()
            await asyncio.sleep(self._interval)
            await self.poll_once()

    async def poll_once(self) -> None:
        """One tick: every pending key of every watch, deduplicated, in batches polled concurrently."""
        pending = sorted({key for watch in self._watches for key in watch.pending})
        batches = [pending[i : i + self._batch_size] for i in range(0, len(pending), self._batch_size)]
        await asyncio.gather(*(self._poll_batch(batch) for batch in batches))

    async def _poll_batch(self, batch: list[str]) -> None:
        try:
            updates = await self._backend.poll(batch)
        except MusicApiError as exc:
            if exc.retryable:
                log.warning("polling %d keys failed, will retry next tick: %s", len(batch), exc.detail)
                return
            log.error("polling %d keys failed for good: %s", len(batch), exc.detail)
            for watch in list(self._watches):
                if watch.pending.intersection(batch):
                    watch.updates.put_nowait(exc)
            return
        for update in updates:
            for watch in list(self._watches):
                if update.key in watch.pending:
                    if update.done:
                        watch.pending.discard(update.key)
                    watch.updates.put_nowait(update)
