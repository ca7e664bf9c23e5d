"""The job runtime on its own: a recording fake backend and a recording delivery target around the real runtime
and a real SQLite file, one branch of a job's life per test (milliseconds each). The fakes are in
tests/runtime_support.py."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import utc_now
from bot.errors import DeliveryError, MusicApiInvalidRequestError, MusicApiRateLimitedError
from bot.models import (
    Clip,
    ClipStatus,
    FailureReason,
    JobStatus,
    QuotaLimits,
    Requester,
)
from bot.quota import QuotaService
from bot.runtime import Pause, Phase
from bot.storage import Database, JobStore, QuotaStore
from bot.storage.database import to_db_time
from tests.runtime_support import (
    REQUEST,
    REQUESTER,
    RecordingBackend,
    RecordingTarget,
    World,
    clip,
    connected,
    make_runtime,
    running_world,
    submitted,
    until,
)

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
async def world(database: Database, tmp_path: Path) -> AsyncIterator[World]:
    async with running_world(database, tmp_path) as running:
        yield running


async def test_a_refused_submit_ends_the_job_refunded(world: World) -> None:
    world.backend.submits.append(MusicApiInvalidRequestError("prompt too long", status=400))
    outcome = await world.run_one()
    assert outcome is not None
    assert (outcome.reason, outcome.detail, outcome.refunded) == (
        FailureReason.API_INVALID_REQUEST,
        "prompt too long",
        True,
    )
    assert world.backend.calls == ["submit"]
    assert world.target.posted == []
    assert await world.job() == {
        "status": "failed",
        "charged": 0,
        "failure_reason": "api_invalid_request",
        "owner": "test-process",
    }


async def test_a_rate_limited_submit_is_sent_again_and_goes_through(world: World) -> None:
    world.backend.submits.extend(
        [MusicApiRateLimitedError("slow down", status=429), submitted(clip("a", ClipStatus.COMPLETE))]
    )
    outcome = await world.run_one()
    assert outcome is not None
    assert outcome.reason is None
    assert world.backend.calls.count("submit") == 2
    assert world.target.posted == [(0, "a", True)]


async def test_streaming_then_complete_posts_each_song_as_it_completes(world: World) -> None:
    world.backend.submits.append(submitted(clip("a", ClipStatus.STREAMING), clip("b", ClipStatus.QUEUED)))
    world.backend.states = {
        "a": deque([clip("a", ClipStatus.COMPLETE)]),
        "b": deque([clip("b", ClipStatus.STREAMING), clip("b", ClipStatus.STREAMING), clip("b", ClipStatus.COMPLETE)]),
    }
    outcome = await world.run_one()
    assert outcome is not None
    assert (outcome.reason, outcome.delivered, outcome.expected) == (None, 2, 2)
    assert world.target.posted == [(0, "a", True), (1, "b", True)]
    assert world.target.progress == [Phase.QUEUED, Phase.GENERATING, Phase.FINISHING]
    assert (await world.job())["status"] == "delivered"


def streaming(clip_id: str, url: str) -> Clip:
    return Clip(id=clip_id, status=ClipStatus.STREAMING, audio_url=url)


async def test_takes_that_stream_are_offered_to_listen_until_their_song_is_posted(world: World) -> None:
    a_stream, b_stream = "https://cdn.example/stream/a", "https://cdn.example/stream/b"
    world.backend.submits.append(submitted(clip("a", ClipStatus.QUEUED), clip("b", ClipStatus.QUEUED)))
    world.backend.states = {
        "a": deque([streaming("a", a_stream), streaming("a", a_stream), clip("a", ClipStatus.COMPLETE)]),
        "b": deque([streaming("b", "http://10.0.0.8/stream/b"), streaming("b", b_stream), streaming("b", b_stream),
                    clip("b", ClipStatus.COMPLETE)]),
    }  # fmt: skip
    outcome = await world.run_one()
    assert outcome is not None
    assert outcome.delivered == 2
    offered = [[(link.position, link.url) for link in links] for links in world.target.listened]
    assert [(0, a_stream)] in offered  # b's first stream is on a private address: not offered
    assert [(0, a_stream), (1, b_stream)] in offered
    assert [(1, b_stream)] in offered  # a's song is posted: its stream is gone from the message
    assert all("10.0.0.8" not in url for links in offered for _, url in links)
    assert world.target.posted == [(0, "a", True), (1, "b", True)]  # the songs, never the streams


async def test_one_clip_failing_still_delivers_the_other_and_counts(world: World) -> None:
    world.backend.submits.append(submitted(clip("a", ClipStatus.QUEUED), clip("b", ClipStatus.QUEUED)))
    world.backend.states = {
        "a": deque([clip("a", ClipStatus.COMPLETE)]),
        "b": deque([clip("b", ClipStatus.ERROR, error_message="artist name in the prompt")]),
    }
    outcome = await world.run_one()
    assert outcome is not None
    assert (outcome.reason, outcome.delivered, outcome.detail) == (
        FailureReason.CLIPS_FAILED,
        1,
        "artist name in the prompt",
    )
    assert await world.job() == {
        "status": "delivered",
        "charged": 1,
        "failure_reason": "clips_failed",
        "owner": "test-process",
    }


async def test_songs_still_unfinished_at_the_deadline_are_reported_and_refunded(
    database: Database, tmp_path: Path
) -> None:
    backend = RecordingBackend()
    backend.submits.append(submitted(clip("a", ClipStatus.QUEUED), clip("b", ClipStatus.QUEUED)))
    backend.states = {"a": deque([clip("a", ClipStatus.QUEUED)]), "b": deque([clip("b", ClipStatus.QUEUED)])}
    runtime = make_runtime(database, backend, tmp_path, deadline_seconds=0.2)
    target = RecordingTarget()
    async with runtime.running(lambda job: target, connected):
        async with runtime.admit(REQUESTER, REQUEST) as reservation:
            task = reservation.start(target)
        outcome = await task
    assert outcome is not None
    assert outcome.reason is FailureReason.DEADLINE
    assert outcome.refunded
    assert target.posted == []


async def test_discord_failing_for_a_while_pauses_the_job_charged(world: World) -> None:
    world.target.refuse.extend(DeliveryError("HTTP 503", transient=True) for _ in range(3))
    world.backend.submits.append(submitted(clip("a", ClipStatus.COMPLETE)))
    outcome = await world.run_one()
    assert outcome is not None
    assert outcome.pause is Pause.POSTING
    assert await world.job() == {"status": "polling", "charged": 1, "failure_reason": None, "owner": "test-process"}


async def test_discord_refusing_for_good_fails_the_job_refunded(world: World) -> None:
    world.target.refuse.append(DeliveryError("HTTP 403 code 50013", transient=False))
    world.backend.submits.append(submitted(clip("a", ClipStatus.COMPLETE)))
    outcome = await world.run_one()
    assert outcome is not None
    assert outcome.reason is FailureReason.DELIVERY_FAILED
    assert outcome.refunded


async def test_a_job_taken_over_mid_run_stops_quietly(world: World) -> None:
    world.backend.submits.append(submitted(clip("a", ClipStatus.QUEUED), clip("b", ClipStatus.QUEUED)))
    world.backend.states = {"a": deque([clip("a", ClipStatus.QUEUED)]), "b": deque([clip("b", ClipStatus.QUEUED)])}
    async with world.runtime.admit(REQUESTER, REQUEST) as reservation:
        task = reservation.start(world.target)
    await until(lambda: world.backend.calls.count("poll") >= 2)
    await world.database.execute("UPDATE jobs SET owner = 'another-process'")
    world.backend.states = {"a": deque([clip("a", ClipStatus.COMPLETE)]), "b": deque([clip("b", ClipStatus.COMPLETE)])}

    assert await task is None
    assert world.target.posted == []
    assert world.target.outcomes == []
    assert await world.job() == {"status": "polling", "charged": 1, "failure_reason": None, "owner": "another-process"}


async def test_a_shutdown_stops_a_running_job_and_expires_its_lease(world: World) -> None:
    world.backend.submits.append(submitted(clip("a", ClipStatus.QUEUED), clip("b", ClipStatus.QUEUED)))
    world.backend.states = {"a": deque([clip("a", ClipStatus.QUEUED)]), "b": deque([clip("b", ClipStatus.QUEUED)])}
    async with world.runtime.admit(REQUESTER, REQUEST) as reservation:
        task = reservation.start(world.target)
    await until(lambda: "poll" in world.backend.calls)

    world.runtime.stop_accepting()
    await world.runtime.drain(0)

    assert task.cancelled()
    now = to_db_time(utc_now())
    row = await world.database.fetch_one("SELECT status, charged, lease_until <= ? AS expired FROM jobs", (now,))
    assert row is not None
    assert (row["status"], row["charged"], row["expired"]) == ("polling", 1, 1)
    assert world.target.outcomes == []


async def test_an_admission_that_is_not_started_gives_the_quota_back(world: World) -> None:
    with pytest.raises(RuntimeError):
        async with world.runtime.admit(REQUESTER, REQUEST):
            raise RuntimeError("Discord refused the acknowledgement")
    assert await world.job() == {
        "status": "failed",
        "charged": 0,
        "failure_reason": "internal",
        "owner": "test-process",
    }
    assert world.backend.calls == []


async def test_a_job_cancelled_before_the_paid_call_is_given_back_and_never_sent(world: World) -> None:
    async with world.runtime.admit(REQUESTER, REQUEST) as reservation:
        asked = await world.runtime.cancel(reservation.job.id, 77)
        assert asked is not None
        assert asked.status is JobStatus.RESERVED
        task = reservation.start(world.target)
    outcome = await task
    assert outcome is not None
    assert (outcome.reason, outcome.refunded, outcome.delivered) == (FailureReason.CANCELLED, True, 0)
    assert world.backend.calls == []
    assert await world.job() == {
        "status": "failed",
        "charged": 0,
        "failure_reason": "cancelled",
        "owner": "test-process",
    }


async def test_a_job_cancelled_after_its_first_song_keeps_it_posts_no_more_and_counts(world: World) -> None:
    world.backend.submits.append(submitted(clip("a", ClipStatus.COMPLETE), clip("b", ClipStatus.QUEUED)))
    world.backend.states = {"b": deque([clip("b", ClipStatus.STREAMING)])}  # b would finish later
    async with world.runtime.admit(REQUESTER, REQUEST) as reservation:
        task = reservation.start(world.target)
    await until(lambda: world.target.posted == [(0, "a", True)])
    assert await world.runtime.cancel(reservation.job.id, 77) is not None
    world.backend.states = {"b": deque([clip("b", ClipStatus.COMPLETE)])}  # done now: must not be posted
    outcome = await task
    assert outcome is not None
    assert (outcome.reason, outcome.delivered, outcome.refunded) == (FailureReason.CANCELLED, 1, False)
    assert world.target.posted == [(0, "a", True)]
    assert (await world.job())["status"] == "delivered"  # what was posted stays, and it counts


async def test_a_cancel_asked_through_another_process_reaches_the_run_at_its_heartbeat(
    database: Database, tmp_path: Path
) -> None:
    backend = RecordingBackend()
    backend.submits.append(submitted(clip("a", ClipStatus.QUEUED), clip("b", ClipStatus.QUEUED)))
    backend.states = {key: deque([clip(key, ClipStatus.STREAMING)]) for key in "ab"}  # still being made
    runtime = make_runtime(database, backend, tmp_path, lease_seconds=0.3)  # a heartbeat every 0.1 s
    target = RecordingTarget()
    async with runtime.running(lambda job: target, connected):
        async with runtime.admit(REQUESTER, REQUEST) as reservation:
            task = reservation.start(target)
        await until(lambda: "submit" in backend.calls)
        elsewhere = JobStore(database)  # the click reached another process: only the database knows
        assert await elsewhere.request_cancel(reservation.job.id, 77) is not None
        outcome = await asyncio.wait_for(task, 10)
    assert outcome is not None
    assert (outcome.reason, outcome.refunded, target.posted) == (FailureReason.CANCELLED, False, [])
    assert await elsewhere.request_cancel(reservation.job.id, 78) is None  # it has ended


async def test_the_poll_pace_starts_from_how_long_the_recent_songs_took(database: Database, tmp_path: Path) -> None:
    jobs, start = JobStore(database), utc_now() - timedelta(hours=1)
    quota = QuotaService(QuotaStore(database, defaults=QuotaLimits(-1, -1, -1, 0, -1)), clock=utc_now)
    for n, seconds in enumerate((40, 45, 50, 55, 60)):
        job_id = await quota.reserve_generation(
            Requester(1, 2, n), REQUEST, backend="test-backend", owner="earlier", lease=timedelta(hours=2)
        )
        await jobs.mark_submitted(job_id, "earlier", start)
        await jobs.save_clips(job_id, "earlier", [(0, clip(f"c{n}", ClipStatus.COMPLETE))], polling=True)
        await jobs.record_delivery(job_id, "earlier", f"c{n}", 1000 + n, start + timedelta(seconds=seconds))
        await jobs.finish(job_id, "earlier", now=start + timedelta(seconds=seconds))
    runtime = make_runtime(database, RecordingBackend(), tmp_path)
    async with runtime.running(lambda job: RecordingTarget(), connected):
        assert runtime.poller.history.close_after("test-backend:") == pytest.approx(0.8 * 40)


async def test_jobs_in_line_start_in_turn_and_a_cancel_there_gives_one_back(database: Database, tmp_path: Path) -> None:
    backend = RecordingBackend()
    backend.submits.extend([submitted(clip("a", ClipStatus.STREAMING)), submitted(clip("c", ClipStatus.COMPLETE))])
    backend.states = {"a": deque([clip("a", ClipStatus.STREAMING)])}  # the first song takes its time
    limits = QuotaLimits(-1, -1, -1, 0, max_concurrent=1, max_queued=5)
    quota = QuotaService(QuotaStore(database, defaults=limits), clock=utc_now)
    runtime = make_runtime(database, backend, tmp_path, quota=quota, deadline_seconds=60)  # the first runs long
    targets = [RecordingTarget() for _ in range(3)]
    async with runtime.running(lambda job: targets[0], connected):
        tasks, jobs = [], []
        for target in targets:
            async with runtime.admit(REQUESTER, REQUEST) as reservation:
                tasks.append(reservation.start(target))
                jobs.append(reservation.job.id)
        await until(lambda: targets[1].lines[-1:] == [1] and targets[2].lines[-1:] == [2])
        assert backend.calls.count("submit") == 1  # one slot: only the first went out
        assert await runtime.cancel(jobs[1], 5) is not None
        cancelled = await asyncio.wait_for(tasks[1], 10)
        assert cancelled is not None
        assert (cancelled.reason, cancelled.refunded) == (FailureReason.CANCELLED, True)
        await until(lambda: targets[2].lines[-1:] == [1])  # the line moved up
        backend.states = {"a": deque([clip("a", ClipStatus.COMPLETE)])}  # the slot frees ...
        last = await asyncio.wait_for(tasks[2], 10)  # ... and the next in line takes it
    assert last is not None
    assert (last.reason, last.delivered) == (None, 1)
    assert backend.calls.count("submit") == 2  # the cancelled one never reached the music service


async def test_a_reservation_taken_over_before_it_started_is_neither_run_nor_given_back(world: World) -> None:
    """This process stalled past its lease between reserving and starting: the job is another's now."""
    async with world.runtime.admit(REQUESTER, REQUEST) as reservation:
        await world.database.execute("UPDATE jobs SET owner = 'another-process'")
        assert await reservation.remember_response_message(4242) is False
    assert await world.job() == {
        "status": "reserved",  # for the process holding it to run, or to give back
        "charged": 1,
        "failure_reason": None,
        "owner": "another-process",
    }
    assert world.backend.calls == []


async def test_a_resumed_job_whose_lease_ran_out_is_finished_by_the_next_process(
    database: Database, tmp_path: Path
) -> None:
    backend = RecordingBackend()
    backend.states = {"a": deque([clip("a", ClipStatus.COMPLETE)])}
    jobs = JobStore(database)
    # What a first process left when it died after the paid call: the clip ids, and a lease that ran out.
    quota = QuotaService(QuotaStore(database, defaults=QuotaLimits(-1, -1, -1, 0, -1)), clock=utc_now)
    job_id = await quota.reserve_generation(
        REQUESTER, REQUEST, backend=backend.name, owner="first", lease=timedelta(seconds=30)
    )
    await jobs.mark_submitted(job_id, "first", utc_now())
    await jobs.save_clips(job_id, "first", [(0, clip("a", ClipStatus.QUEUED))], polling=True)
    await database.execute("UPDATE jobs SET lease_until = ? WHERE id = ?", (to_db_time(utc_now()), job_id))

    second = make_runtime(database, backend, tmp_path, owner="second")
    target = RecordingTarget()
    async with second.running(lambda job: target, connected):
        (task,) = await second.resume_expired(lambda job: target)
        outcome = await task
    assert outcome is not None
    assert outcome.reason is None
    assert target.posted == [(0, "a", True)]
    assert backend.calls.count("submit") == 0
    assert (await jobs.get(job_id)).status is JobStatus.DELIVERED
