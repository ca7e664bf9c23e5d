"""Quota on a real SQLite file: every limit refuses exactly at its boundary, atomically, with the right reason."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from bot.errors import QuotaExceededError, UserFacingError
from bot.models import Clip, ClipStatus, FailureReason, GenerationMode, GenerationRequest, QuotaLimits, Requester
from bot.quota import QuotaService, UsagePeriod
from bot.storage import Database, JobStore, QuotaStore
from tests.clock import FakeClock

REQUEST = GenerationRequest(GenerationMode.DESCRIPTION, "lofi beats")
OPEN = QuotaLimits(daily=-1, monthly=-1, per_member_daily=-1, cooldown_seconds=0, max_concurrent=-1)
MODERATOR = 999


def requester(user_id: int, guild_id: int = 1) -> Requester:
    return Requester(guild_id=guild_id, channel_id=10, user_id=user_id)


def service(database: Database, clock: FakeClock, **limits: int) -> QuotaService:
    store = QuotaStore(database, defaults=replace(OPEN, **limits))
    return QuotaService(store, clock=clock)


async def finish(database: Database, clock: FakeClock, job_id: int, *, delivered: bool) -> None:
    jobs = JobStore(database)
    if delivered:
        await jobs.save_clips(job_id, [(0, Clip(f"clip-{job_id}", ClipStatus.COMPLETE))], polling=True)
        await jobs.record_delivery(f"clip-{job_id}", job_id * 10, clock())
    await jobs.finish(job_id, now=clock(), reason=None if delivered else FailureReason.API_UNAVAILABLE)


async def refused(quota: QuotaService, who: Requester) -> QuotaExceededError:
    with pytest.raises(QuotaExceededError) as caught:
        await quota.reserve_generation(who, REQUEST, backend="t")
    return caught.value


async def test_concurrent_reservations_never_pass_the_daily_limit(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock, daily=5)
    results = await asyncio.gather(
        *(quota.reserve_generation(requester(user), REQUEST, backend="t") for user in range(50)),
        return_exceptions=True,
    )
    granted = [result for result in results if isinstance(result, int)]
    refusals = [result for result in results if isinstance(result, QuotaExceededError)]
    assert len(granted) == 5
    assert len(set(granted)) == 5
    assert len(refusals) == 45
    assert all(refusal.limit == "daily" for refusal in refusals)
    assert "used all 5 of today's generations" in refusals[0].message
    assert "<t:" in refusals[0].message  # when it resets, as a Discord timestamp


async def test_daily_limit_boundary_is_per_server(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock, daily=2)
    await quota.reserve_generation(requester(1), REQUEST, backend="t")
    await quota.reserve_generation(requester(2), REQUEST, backend="t")
    await quota.reserve_generation(requester(1, guild_id=2), REQUEST, backend="t")
    assert (await refused(quota, requester(3))).limit == "daily"


async def test_per_member_daily_boundary(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock, per_member_daily=2)
    for _ in range(2):
        await quota.reserve_generation(requester(1), REQUEST, backend="t")
    refusal = await refused(quota, requester(1))
    assert refusal.limit == "per_member_daily"
    assert "all 2 of your generations for today" in refusal.message
    await quota.reserve_generation(requester(2), REQUEST, backend="t")  # others are unaffected


async def test_monthly_boundary_and_calendar_month_rollover(database: Database, clock: FakeClock) -> None:
    clock.now = clock.now.replace(day=29)
    quota = service(database, clock, monthly=3)
    for _ in range(3):
        await quota.reserve_generation(requester(1), REQUEST, backend="t")
        clock.advance(hours=6)
    refusal = await refused(quota, requester(2))
    assert refusal.limit == "monthly"
    assert "the 1st, UTC" in refusal.message
    clock.now = clock.now.replace(month=12, day=1, hour=0, minute=0, second=0, microsecond=0)
    await quota.reserve_generation(requester(2), REQUEST, backend="t")


async def test_cooldown_boundary(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock, cooldown_seconds=60)
    await quota.reserve_generation(requester(1), REQUEST, backend="t")
    clock.advance(seconds=59)
    refusal = await refused(quota, requester(1))
    assert refusal.limit == "cooldown_seconds"
    assert "one request every 60 seconds" in refusal.message
    await quota.reserve_generation(requester(2), REQUEST, backend="t")
    clock.advance(seconds=1)
    await quota.reserve_generation(requester(1), REQUEST, backend="t")


async def test_max_concurrent_boundary_frees_when_a_job_ends(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock, max_concurrent=2)
    first = await quota.reserve_generation(requester(1), REQUEST, backend="t")
    await quota.reserve_generation(requester(2), REQUEST, backend="t")
    refusal = await refused(quota, requester(3))
    assert refusal.limit == "max_concurrent"
    assert "already has 2 generations running" in refusal.message
    await finish(database, clock, first, delivered=True)
    await quota.reserve_generation(requester(3), REQUEST, backend="t")


async def test_refund_restores_every_count(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock, daily=1, monthly=1, per_member_daily=1, cooldown_seconds=3600)
    job_id = await quota.reserve_generation(requester(1), REQUEST, backend="t")
    assert (await refused(quota, requester(1))).limit == "cooldown_seconds"
    await finish(database, clock, job_id, delivered=False)
    await quota.reserve_generation(requester(1), REQUEST, backend="t")
    rows = await database.fetch_all("SELECT change FROM quota_ledger ORDER BY id")
    assert [row["change"] for row in rows] == ["reserve", "refund", "reserve"]


async def test_day_rolls_over_at_utc_midnight(database: Database, clock: FakeClock) -> None:
    clock.now = clock.now.replace(hour=23, minute=59, second=59)
    quota = service(database, clock, daily=1, per_member_daily=1)
    await quota.reserve_generation(requester(1), REQUEST, backend="t")
    assert (await refused(quota, requester(1))).limit == "per_member_daily"
    clock.advance(seconds=1)
    await quota.reserve_generation(requester(1), REQUEST, backend="t")


@pytest.mark.parametrize("name", ["daily", "monthly", "max_concurrent"])
async def test_zero_switches_generation_off(database: Database, clock: FakeClock, name: str) -> None:
    refusal = await refused(service(database, clock, **{name: 0}), requester(1))
    assert "switched off" in refusal.message
    assert refusal.limit == name


async def test_minus_one_is_unlimited(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock)
    for user in range(30):
        await quota.reserve_generation(requester(user % 3), REQUEST, backend="t")


async def test_blocked_member_is_refused_until_unblocked(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock)
    await quota.block(1, 5, reason="spam", actor_id=MODERATOR)
    refusal = await refused(quota, requester(5))
    assert refusal.limit == "blocked"
    assert "Reason: spam" in refusal.message
    await quota.reserve_generation(requester(5, guild_id=2), REQUEST, backend="t")  # only in that server
    await quota.unblock(1, 5, actor_id=MODERATOR)
    await quota.reserve_generation(requester(5), REQUEST, backend="t")
    with pytest.raises(UserFacingError, match="not blocked"):
        await quota.unblock(1, 5, actor_id=MODERATOR)


async def test_moderator_limits_override_defaults_and_are_audited(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock, daily=20)
    changes = await quota.set_limits(1, {"daily": 1, "cooldown_seconds": 0}, actor_id=MODERATOR)
    assert [(change.name, change.old, change.new) for change in changes] == [("daily", 20, 1)]
    record = await quota.limits(1)
    assert record.limits.daily == 1
    assert record.overridden == {"daily", "cooldown_seconds"}
    assert record.updated_by == MODERATOR
    assert (await quota.limits(2)).limits.daily == 20  # other servers keep the defaults
    await quota.reserve_generation(requester(1), REQUEST, backend="t")
    assert (await refused(quota, requester(2))).limit == "daily"
    log = await database.fetch_all("SELECT actor_id, action, subject, old_value, new_value FROM moderation_log")
    assert [tuple(row) for row in log] == [(MODERATOR, "set_limit", "daily", "20", "1")]
    with pytest.raises(UserFacingError):
        await quota.set_limits(1, {"daily": -2}, actor_id=MODERATOR)


async def test_usage_adds_up_against_the_ledger(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock)
    jobs = [await quota.reserve_generation(requester(user % 2), REQUEST, backend="t") for user in range(5)]
    await finish(database, clock, jobs[0], delivered=True)
    await finish(database, clock, jobs[1], delivered=True)
    await finish(database, clock, jobs[2], delivered=False)
    report = await quota.usage(1, UsagePeriod.DAY)
    ledger = await database.fetch_all("SELECT change, count(*) AS n FROM quota_ledger GROUP BY change")
    counts = {row["change"]: row["n"] for row in ledger}
    assert report.requested == counts["reserve"] == 5
    assert report.refunded == counts["refund"] == 1
    assert (report.delivered, report.failed, report.running) == (2, 1, 2)
    assert report.delivered + report.failed + report.running == report.requested
    assert report.charged_by_backend == (("t", counts["reserve"] - counts["refund"]),)
    assert report.top_members == ((0, 2), (1, 2))
    clock.advance(days=1)
    assert (await quota.usage(1, UsagePeriod.DAY)).requested == 0
    assert (await quota.usage(1, UsagePeriod.WEEK)).requested == 5


async def test_status_shows_what_is_left(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock, daily=10, monthly=100, per_member_daily=3, cooldown_seconds=30, max_concurrent=4)
    await quota.reserve_generation(requester(1), REQUEST, backend="t")
    status = await quota.status(requester(1))
    assert (status.server_today_left, status.server_month_left, status.member_today_left) == (9, 99, 2)
    assert status.snapshot.running == 1
    assert status.cooldown_ends is not None


async def test_usage_counters_match_the_job_rows(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock, daily=50)
    jobs = [await quota.reserve_generation(requester(user % 3), REQUEST, backend="t") for user in range(9)]
    for job_id in jobs[:4]:
        await finish(database, clock, job_id, delivered=False)
    await finish(database, clock, jobs[4], delivered=True)
    counters = {
        (row["scope"], row["period"]): row["used"]
        for row in await database.fetch_all("SELECT scope, period, used FROM quota_counters")
    }
    charged = await database.fetch_all(
        "SELECT requester_id, count(*) AS n FROM jobs WHERE charged = 1 GROUP BY requester_id"
    )
    assert counters[("day", "2026-11-27")] == counters[("month", "2026-11")] == 5
    for row in charged:
        assert counters[(f"member:{row['requester_id']}", "2026-11-27")] == row["n"]
