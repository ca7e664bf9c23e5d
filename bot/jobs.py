"""The poller: one loop fetches the pending clips of every running job, batched, and hands each job its updates."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from bot.errors import MusicApiError
from bot.models import Clip
from bot.music_api import MusicBackend

log = logging.getLogger(__name__)


@dataclass(eq=False)
class ClipWatch:
    """A job's subscription: the clip ids it waits for, and a queue of fresh states (or a fatal API error)."""

    pending: set[str]
    updates: asyncio.Queue[Clip | MusicApiError] = field(default_factory=asyncio.Queue)

    async def next_update(self, timeout: float) -> Clip | MusicApiError:
        """The next fresh clip state; raises TimeoutError when none arrives in time."""
        return await asyncio.wait_for(self.updates.get(), timeout)


class JobPoller:
    """Polls fetch-by-ids for all watched clips each tick: ceil(pending / batch_size) requests, whatever the jobs."""

    def __init__(self, backend: MusicBackend, *, interval: float, batch_size: int) -> None:
        self._backend = backend
        self._interval = interval
        self._batch_size = batch_size
        self._watches: set[ClipWatch] = set()
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
    def watch(self, clip_ids: Iterable[str]) -> Iterator[ClipWatch]:
        """Subscribes to the clips until the block exits; the first poll comes one interval later."""
        subscription = ClipWatch(pending=set(clip_ids))
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
        """One tick: every pending id of every watch, deduplicated, in batches fetched concurrently."""
        pending = sorted({clip_id for watch in self._watches for clip_id in watch.pending})
        batches = [pending[i : i + self._batch_size] for i in range(0, len(pending), self._batch_size)]
        await asyncio.gather(*(self._poll_batch(batch) for batch in batches))

    async def _poll_batch(self, batch: list[str]) -> None:
        try:
            clips = await self._backend.fetch_clips(batch)
        except MusicApiError as exc:
            if exc.retryable:
                log.warning("polling %d clips failed, will retry next tick: %s", len(batch), exc.detail)
                return
            log.error("polling %d clips failed for good: %s", len(batch), exc.detail)
            for watch in list(self._watches):
                if watch.pending.intersection(batch):
                    watch.updates.put_nowait(exc)
            return
        for clip in clips:
            for watch in list(self._watches):
                if clip.id in watch.pending:
                    if clip.status.is_terminal:
                        watch.pending.discard(clip.id)
                    watch.updates.put_nowait(clip)
