"""The poller: one loop polls what every running job waits for, batched, and hands each job its updates.

Each poll key has its own pace. A key is polled every `interval` (POLL_INTERVAL_SECONDS) while its song is far
from done, and every `fast_interval` (FAST_POLL_INTERVAL_SECONDS) once it is close: once it is older than the
time the songs of its backend and model usually take at the least (learned from this process's recent jobs),
or once a sibling of the same job is done (takes of one request finish close together). A request that goes
out anyway carries other pending keys in its free places, so a key is often fresher than its pace. Requests
per minute: at most 60/interval x ceil(N/B) + 60/fast_interval x ceil(N_close/B) for N pending keys, N_close
of them close to done, and batch size B.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from bot.backends import MusicBackend, PollUpdate
from bot.errors import MusicApiError

log = logging.getLogger(__name__)

HISTORY_SIZE = 50
HISTORY_MINIMUM = 5
CLOSE_SHARE = 0.8  # close from 80% of the shortest tenth of recent durations


class CompletionHistory:
    """How long the recent songs of each profile (backend and model) took from submission to done. Before a
    profile has HISTORY_MINIMUM finished songs here, a song counts as close to done from `close_after` on."""

    def __init__(self, close_after: float) -> None:
        self._durations: dict[str, deque[float]] = {}
        self._close_after = close_after

    def record(self, profile: str, seconds: float) -> None:
        self._durations.setdefault(profile, deque(maxlen=HISTORY_SIZE)).append(max(0.0, seconds))

    def close_after(self, profile: str) -> float:
        """From what age a song of this profile counts as close to done."""
        durations = sorted(self._durations.get(profile, ()))
        if len(durations) < HISTORY_MINIMUM:
            return self._close_after
        tenth = durations[max(0, math.ceil(len(durations) / 10) - 1)]
        return CLOSE_SHARE * tenth


@dataclass(eq=False)
class PollWatch:
    """A job's subscription: the poll keys it waits for, and a queue of updates (or a fatal API error).
    `profile` names the backend and model (for the learned pace), `started` when the job was submitted
    (time.monotonic)."""

    pending: set[str]
    profile: str = ""
    job_id: int | None = None
    started: float = field(default_factory=time.monotonic)
    sibling_done: bool = False
    updates: asyncio.Queue[PollUpdate | MusicApiError] = field(default_factory=asyncio.Queue)

    async def next_update(self, timeout: float) -> PollUpdate | MusicApiError:
        """The next update; raises TimeoutError when none arrives in time."""
        # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that arrives as an update does,
        # and a shutdown would then not stop the job.
        async with asyncio.timeout(timeout):
            return await self.updates.get()


EARLY_WAKES = 1024


class JobPoller:
    """Polls the pending keys of all watches, each at its pace, in requests of up to the batch size."""

    def __init__(
        self, backend: MusicBackend, *, interval: float, batch_size: int, fast_interval: float | None = None
    ) -> None:
        self._backend = backend
        self._interval = interval
        self._fast_interval = min(interval, fast_interval if fast_interval is not None else interval)
        self._batch_size = backend.capabilities.poll_batch_size or batch_size
        self._watches: set[PollWatch] = set()
        self._last_polled: dict[str, float] = {}
        self._woken: dict[str, float] = {}  # keys a callback made due sooner, and when
        # Jobs woken before they were watched (a push racing the submit's answer): their first poll comes at once.
        self._early: dict[int, float] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Nothing learned yet: a song is far for two slow paces (20 s by default; Suno-shaped APIs rarely
        # finish one sooner).
        self.history = CompletionHistory(close_after=2 * interval)

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
    def watch(
        self, keys: Iterable[str], *, profile: str = "", age: float = 0.0, job_id: int | None = None
    ) -> Iterator[PollWatch]:
        """Subscribes to the keys until the block exits (`age`: seconds since the job was submitted); the
        first poll of a key comes one pace after it is watched."""
        now = time.monotonic()
        subscription = PollWatch(pending=set(keys), profile=profile, started=now - max(0.0, age), job_id=job_id)
        for key in subscription.pending:
            self._last_polled.setdefault(key, now)
        if job_id is not None and now - self._early.pop(job_id, -math.inf) < self._interval:
            for key in subscription.pending:
                self._woken[key] = now
        self._watches.add(subscription)
        self._changed.set()
        try:
            yield subscription
        finally:
            self._watches.discard(subscription)
            for key in subscription.pending:
                self._last_polled.pop(key, None)
                self._woken.pop(key, None)

    def wake(self, job_id: int) -> bool:
        """The job's pending keys are due now (a provider said something changed), or one fast pace after their
        last poll if that is later: however many callbacks arrive, a key is polled at most once per fast pace.
        False when this process is not following the job."""
        now = time.monotonic()
        watches = [watch for watch in self._watches if watch.job_id == job_id]
        for watch in watches:
            for key in watch.pending:
                self._woken[key] = max(now, self._last_polled.get(key, now) + self._fast_interval)
        if watches:
            self._changed.set()
        else:
            self._remember_early(job_id, now)
        return bool(watches)

    def _remember_early(self, job_id: int, now: float) -> None:
        """Keeps a wake for a job not watched yet for one slow pace (bounded: older ones go first)."""
        for old, at in list(self._early.items()):
            if now - at >= self._interval or len(self._early) >= EARLY_WAKES:
                del self._early[old]
        self._early[job_id] = now

    def next_due(self, watch: PollWatch, last: float) -> float:
        """When a key of this watch polled at `last` is next due: one fast pace later once it is close, else
        one slow pace later, or the moment it becomes close if that comes first."""
        close_at = last if watch.sibling_done else watch.started + self.history.close_after(watch.profile)
        return min(last + self._interval, max(last + self._fast_interval, close_at))

    def _due_times(self, now: float) -> dict[str, float]:
        """Each pending key and when it is due (the soonest of the watches waiting for it)."""
        due: dict[str, float] = {}
        for watch in self._watches:
            for key in watch.pending:
                at = min(self.next_due(watch, self._last_polled.get(key, now)), self._woken.get(key, math.inf))
                due[key] = min(due.get(key, at), at)
        return due

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            due = self._due_times(now)
            if not due:
                self._changed.clear()
                await self._changed.wait()
                continue
            wait = min(due.values()) - now
            if wait > 0:
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._changed.wait()  # a new watch, or a sibling done: due times changed
                continue
            try:
                await self._poll_due(due, now)
            except Exception:  # one bad round must not stop every job's polling
                log.exception("a poll round failed; the next one comes one fast pace later")
                await asyncio.sleep(self._fast_interval)

    async def _poll_due(self, due: dict[str, float], now: float) -> None:
        """The keys that are due, and in the free places of their requests the keys due soonest after them."""
        ordered = sorted(due, key=lambda key: (due[key], key))
        count = sum(1 for key in ordered if due[key] <= now)
        requests = math.ceil(count / self._batch_size)
        chosen = sorted(ordered[: requests * self._batch_size])
        await self._poll(chosen, now)

    async def poll_once(self) -> None:
        """Every pending key of every watch now, deduplicated, in batches polled concurrently."""
        await self._poll(sorted({key for watch in self._watches for key in watch.pending}), time.monotonic())

    async def _poll(self, keys: list[str], now: float) -> None:
        for key in keys:
            self._last_polled[key] = now
            self._woken.pop(key, None)
        batches = [keys[i : i + self._batch_size] for i in range(0, len(keys), self._batch_size)]
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
        now = time.monotonic()
        for update in updates:
            for watch in list(self._watches):
                if update.key in watch.pending:
                    if update.done:
                        watch.pending.discard(update.key)
                        if any(clip.has_audio for clip in update.clips):  # a song made, not one that failed
                            self.history.record(watch.profile, now - watch.started)
                        if watch.pending and not watch.sibling_done:
                            watch.sibling_done = True  # its sibling is probably close behind
                            self._changed.set()
                    watch.updates.put_nowait(update)
