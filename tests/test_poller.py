"""The poller's pace: slow while a song is far from done, fast once it is close (older than its backend's songs
usually take, or its sibling done), never more keys in a request than the batch size."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

from bot.backends import PollUpdate
from bot.jobs import HISTORY_MINIMUM, CompletionHistory, JobPoller, PollWatch
from bot.models import Clip, ClipStatus


@dataclass
class CountingBackend:
    """Answers every key as still generating, except those in `done`; records each request's keys and time."""

    done: set[str] = field(default_factory=set)
    requests: list[tuple[float, list[str]]] = field(default_factory=list)
    capabilities: object = field(default_factory=lambda: SimpleNamespace(poll_batch_size=None))

    async def poll(self, keys: list[str]) -> list[PollUpdate]:
        self.requests.append((time.monotonic(), list(keys)))
        return [
            PollUpdate(
                key=key,
                clips=(
                    Clip(key, ClipStatus.COMPLETE, audio_url=f"https://x/{key}.mp3")
                    if key in self.done
                    else Clip(key, ClipStatus.STREAMING),
                ),
                done=key in self.done,
            )
            for key in keys
        ]

    def polls_of(self, key: str) -> list[float]:
        return [at for at, keys in self.requests if key in keys]


def test_a_profile_counts_as_close_from_the_shortest_tenth_of_its_recent_songs() -> None:
    history = CompletionHistory(close_after=20.0)
    assert history.close_after("suno:") == 20.0  # nothing learned yet
    for seconds in (40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 110.0, 120.0, 130.0):
        history.record("suno:", seconds)
    assert history.close_after("suno:") == 0.8 * 40.0
    assert history.close_after("other:") == 20.0
    assert HISTORY_MINIMUM <= 10


async def test_keys_are_polled_slowly_while_far_and_fast_once_close() -> None:
    backend = CountingBackend()
    poller = JobPoller(backend, interval=1.0, batch_size=10, fast_interval=0.1)  # type: ignore[arg-type]
    for _ in range(HISTORY_MINIMUM):
        poller.history.record("p", 2.1875)  # songs of this profile take 2.19 s: close from 1.75 s
    poller.start()
    try:
        with poller.watch(["a"], profile="p"):
            watched = time.monotonic()
            await asyncio.sleep(3.5)
    finally:
        await poller.stop()
    polls = backend.polls_of("a")
    gaps = [(earlier - watched, later - earlier) for earlier, later in itertools.pairwise(polls)]
    assert polls[0] - watched >= 0.9  # the first poll one slow pace after watching
    # Slow while young (a loaded machine only slows it more), then fast.
    assert all(gap >= 0.7 for start, gap in gaps if start < 1.5)
    assert sum(1 for start, gap in gaps if start >= 1.7 and gap < 0.5) >= 3


def test_a_key_is_due_the_moment_it_becomes_close_not_at_its_next_slow_pace() -> None:
    poller = JobPoller(CountingBackend(), interval=10.0, batch_size=10, fast_interval=1.0)  # type: ignore[arg-type]
    for _ in range(HISTORY_MINIMUM):
        poller.history.record("p", 31.25)  # close from 25 s
    watch = PollWatch(pending={"a"}, profile="p", started=100.0)
    assert poller.next_due(watch, 100.0) == 110.0  # young: one slow pace
    assert poller.next_due(watch, 120.0) == 125.0  # becomes close at 125 s, before 130 s
    assert poller.next_due(watch, 124.5) == 125.5  # never sooner than one fast pace
    assert poller.next_due(watch, 140.0) == 141.0  # close: one fast pace
    other = PollWatch(pending={"b"}, profile="p", started=100.0, sibling_done=True)
    assert poller.next_due(other, 101.0) == 102.0  # its sibling is done: fast at once


async def test_a_sibling_done_makes_the_other_take_fast_and_requests_never_pass_the_batch() -> None:
    backend = CountingBackend(done={"a"})
    poller = JobPoller(backend, interval=0.5, batch_size=2, fast_interval=0.05)  # type: ignore[arg-type]
    poller.start()
    try:
        with poller.watch(["a", "b"], profile="new") as watch, poller.watch(["c", "d", "e"], profile="new"):
            first = await watch.next_update(2)
            assert isinstance(first, PollUpdate)
            await asyncio.sleep(0.6)
    finally:
        await poller.stop()
    assert all(len(keys) <= 2 for _, keys in backend.requests)
    after_a = [at for at in backend.polls_of("b") if at > backend.polls_of("a")[-1]]
    assert len(after_a) >= 6  # b every 0.05 s (its sibling a is done) ...
    assert len(backend.polls_of("e")) < len(backend.polls_of("b"))  # ... while the other job stays slow


async def test_a_round_that_fails_unexpectedly_does_not_stop_the_polling() -> None:
    backend = CountingBackend()
    failures = [RuntimeError("a bug in an adapter")]
    answer = backend.poll

    async def flaky(keys: list[str]) -> list[PollUpdate]:
        if failures:
            raise failures.pop()
        return await answer(keys)

    backend.poll = flaky  # type: ignore[method-assign]
    poller = JobPoller(backend, interval=0.05, batch_size=10)  # type: ignore[arg-type]
    poller.start()
    try:
        with poller.watch(["a"]):
            await asyncio.sleep(0.5)
    finally:
        await poller.stop()
    assert not failures
    assert len(backend.polls_of("a")) >= 2  # it went on after the failed round


async def test_a_wake_makes_the_jobs_keys_due_at_once_but_at_most_once_per_fast_pace() -> None:
    backend = CountingBackend()
    # One key per request: no free places for other jobs' keys to ride along in.
    poller = JobPoller(backend, interval=60.0, batch_size=1, fast_interval=0.5)  # type: ignore[arg-type]
    assert not poller.wake(7)  # not watched yet: remembered for its first poll
    poller.start()
    try:
        with poller.watch(["early"], job_id=7), poller.watch(["a"], job_id=1), poller.watch(["b"], job_id=2):
            for _ in range(100):
                if backend.polls_of("early"):
                    break
                await asyncio.sleep(0.01)
            assert len(backend.polls_of("early")) == 1  # at once, not one slow pace (60 s) after it was watched
            assert poller.wake(1)
            for _ in range(100):
                if backend.polls_of("a"):
                    break
                await asyncio.sleep(0.01)
            for _ in range(20):  # a flood of wakes within one fast pace
                poller.wake(1)
            await asyncio.sleep(0.2)
            assert len(backend.polls_of("a")) == 1
            await asyncio.sleep(0.5)
            assert len(backend.polls_of("a")) == 2  # the flood's one poll, one fast pace after the last
            assert backend.polls_of("b") == []  # another job is not woken
    finally:
        await poller.stop()
