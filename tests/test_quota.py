"""Quota on a real SQLite file: every limit refuses exactly at its boundary, atomically, with the right reason."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from bot.errors import QuotaExceededError, UserFacingError
from bot.models import (
    Clip,
    ClipStatus,
    FailureReason,
    GenerationMode,
    GenerationRequest,
    OperatorLimits,
    QuotaLimits,
    Requester,
)
from bot.quota import QuotaService, UsagePeriod
from bot.storage import Database, JobStore, QuotaStore
from cogs.quota_render import render_quota_refusal
from tests.clock import FakeClock

REQUEST = GenerationRequest(GenerationMode.DESCRIPTION, "lofi beats")
OPEN = QuotaLimits(daily=-1, monthly=-1, per_member_daily=-1, cooldown_seconds=0, max_concurrent=-1)
MODERATOR = 999
OWNER = "test-process"


def requester(user_id: int, guild_id: int = 1) -> Requester:
    return Requester(guild_id=guild_id, channel_id=10, user_id=user_id)


def service(database: Database, clock: FakeClock, **limits: int) -> QuotaService:
    store = QuotaStore(database, defaults=replace(OPEN, **limits))
    return QuotaService(store, clock=clock)


async def finish(database: Database, clock: FakeClock, job_id: int, *, delivered: bool) -> None:
    """Runs the job's end as its process would: delivered keeps the quota, failed gives it back."""
    jobs = JobStore(database)
    await database.execute("UPDATE jobs SET owner = ? WHERE id = ?", (OWNER, job_id))  # as its process holds it
    if delivered:
        await jobs.save_clips(job_id, OWNER, [(0, Clip(f"clip-{job_id}", ClipStatus.COMPLETE))], polling=True)
        await jobs.record_delivery(job_id, OWNER, f"clip-{job_id}", job_id * 10, clock())
    await jobs.finish(job_id, OWNER, now=clock(), reason=None if delivered else FailureReason.API_UNAVAILABLE)


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
    midnight = clock.now.replace(day=28, hour=0, minute=0, second=0, microsecond=0)
    # Every refusal carries the figures of the evaluation that refused it, so they agree with the limit.
    assert {(refusal.value, refusal.used, refusal.frees_at) for refusal in refusals} == {(5, 5, midnight)}
    words = render_quota_refusal(refusals[0])
    assert "used all 5 of today's generations" in words
    assert f"<t:{int(midnight.timestamp())}:R>" in words  # when it resets, as a Discord timestamp
    assert "<t:" not in refusals[0].message  # the core's own text holds no Discord markup


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
    assert (refusal.limit, refusal.value, refusal.used) == ("per_member_daily", 2, 2)
    assert "all 2 of your generations for today" in render_quota_refusal(refusal)
    await quota.reserve_generation(requester(2), REQUEST, backend="t")  # others are unaffected


async def test_monthly_boundary_and_calendar_month_rollover(database: Database, clock: FakeClock) -> None:
    clock.now = clock.now.replace(day=29)
    quota = service(database, clock, monthly=3)
    for _ in range(3):
        await quota.reserve_generation(requester(1), REQUEST, backend="t")
        clock.advance(hours=6)
    refusal = await refused(quota, requester(2))
    assert (refusal.limit, refusal.value, refusal.used) == ("monthly", 3, 3)
    assert refusal.frees_at == clock.now.replace(month=12, day=1, hour=0, minute=0, second=0, microsecond=0)
    assert "the 1st, UTC" in render_quota_refusal(refusal)
    clock.now = clock.now.replace(month=12, day=1, hour=0, minute=0, second=0, microsecond=0)
    await quota.reserve_generation(requester(2), REQUEST, backend="t")


async def test_cooldown_boundary(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock, cooldown_seconds=60)
    await quota.reserve_generation(requester(1), REQUEST, backend="t")
    asked_at = clock()
    clock.advance(seconds=59)
    refusal = await refused(quota, requester(1))
    assert (refusal.limit, refusal.value) == ("cooldown_seconds", 60)
    assert refusal.frees_at == asked_at + timedelta(seconds=60)  # the cooldown's end, to the microsecond
    words = render_quota_refusal(refusal)
    assert "one request every 60 seconds" in words
    assert f"ask again <t:{int(refusal.frees_at.timestamp())}:R>" in words
    await quota.reserve_generation(requester(2), REQUEST, backend="t")
    clock.advance(seconds=1)
    await quota.reserve_generation(requester(1), REQUEST, backend="t")


async def test_max_concurrent_boundary_frees_when_a_job_ends(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock, max_concurrent=2)
    first = await quota.reserve_generation(requester(1), REQUEST, backend="t")
    await quota.reserve_generation(requester(2), REQUEST, backend="t")
    refusal = await refused(quota, requester(3))
    assert (refusal.limit, refusal.value, refusal.used, refusal.frees_at) == ("max_concurrent", 2, 2, None)
    assert "already has 2 generations running" in render_quota_refusal(refusal)
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
    assert "switched off" in render_quota_refusal(refusal)
    assert (refusal.limit, refusal.value, refusal.frees_at) == (name, 0, None)


# Each step: the limit that refuses, its value, what counted against it (the one running job, everywhere), words
# the member reads, and what the operator or a moderator changes so that the next limit in order refuses.
ORDER = [
    ("allowed_guilds", None, None, "not enabled music generation in this server", ("operator", "allowed_guilds", ())),
    ("blocked", None, None, "A moderator has blocked you", ("unblock", "", 0)),
    ("global_daily", 0, 1, "operator has switched music generation off", ("operator", "global_daily", 1)),
    ("global_monthly", 0, 1, "the bot-wide budget is 0", ("operator", "global_monthly", 1)),
    ("daily", 0, 1, "a moderator set the daily limit to 0", ("server", "daily", 1)),
    ("monthly", 0, 1, "a moderator set the monthly limit to 0", ("server", "monthly", 1)),
    ("max_concurrent", 0, 1, "a moderator set the max_concurrent limit to 0", ("server", "max_concurrent", 1)),
    ("cooldown_seconds", 60, None, "one request every 60 seconds", ("server", "cooldown_seconds", 0)),
    ("per_member_daily", 1, 1, "all 1 of your generations for today", ("server", "per_member_daily", -1)),
    ("daily", 1, 1, "used all 1 of today's generations", ("server", "daily", -1)),
    ("monthly", 1, 1, "used all 1 of this month's generations", ("server", "monthly", -1)),
    ("global_daily", 1, 1, "The bot's daily budget is used up", ("operator", "global_daily", -1)),
    ("global_monthly", 1, 1, "The bot's monthly budget is used up", ("operator", "global_monthly", -1)),
    ("max_concurrent", 1, 1, "already has 1 generations running", ("server", "max_concurrent", -1)),
]


async def test_limits_refuse_in_the_documented_order(database: Database, clock: FakeClock) -> None:
    """README, Moderators: the allow-list, blocked, switched off (bot-wide, then this server), cooldown, per
    member, server daily, server monthly, the bot's daily then monthly budget, running at once."""
    first = await service(database, clock).reserve_generation(requester(1), REQUEST, backend="t")
    assert first  # still running: it counts for every limit below
    await database.execute(
        """INSERT INTO guild_limits (guild_id, daily, monthly, per_member_daily, cooldown_seconds, max_concurrent)
           VALUES (1, 0, 0, 1, 60, 0)"""
    )
    operator: dict[str, Any] = {"global_daily": 0, "global_monthly": 0, "allowed_guilds": frozenset({2})}
    await service(database, clock).block(1, 1, reason=None, actor_id=MODERATOR)
    clock.advance(seconds=1)
    for limit, value, used, words, (kind, name, new) in ORDER:
        store = QuotaStore(database, defaults=OPEN, operator=OperatorLimits(**operator))
        refusal = await refused(QuotaService(store, clock=clock), requester(1))
        assert (refusal.limit, refusal.value, refusal.used) == (limit, value, used)
        assert words in render_quota_refusal(refusal)
        if kind == "operator":
            operator[name] = new
        elif kind == "server":
            await database.execute(f"UPDATE guild_limits SET {name} = ? WHERE guild_id = 1", (new,))
        else:
            await service(database, clock).unblock(1, 1, actor_id=MODERATOR)
    await service(database, clock).reserve_generation(requester(1), REQUEST, backend="t")


async def test_a_refusal_agrees_with_its_limit_while_jobs_end(database: Database, clock: FakeClock) -> None:
    """Members keep asking while running jobs end: a request refused in its group may find room when decided
    again, and every refusal names figures from the evaluation that refused it (never "3 of 3" from a re-read
    that saw 2)."""
    quota = service(database, clock, max_concurrent=3)
    refusals: list[QuotaExceededError] = []
    granted = 0

    async def member(user: int) -> None:
        nonlocal granted
        for _ in range(8):
            try:
                job_id = await quota.reserve_generation(requester(user), REQUEST, backend="t")
            except QuotaExceededError as refusal:
                refusals.append(refusal)
                continue
            granted += 1
            await finish(database, clock, job_id, delivered=user % 2 == 0)

    await asyncio.wait_for(asyncio.gather(*(member(user) for user in range(20))), 30)
    assert granted + len(refusals) == 160
    assert refusals
    assert granted > 3
    assert {(refusal.limit, refusal.value, refusal.used) for refusal in refusals} == {("max_concurrent", 3, 3)}


async def test_refused_in_its_group_then_granted_when_a_job_ended_before_the_decision(
    database: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group's INSERT refuses, a job ends, then the refusal is decided alone: it finds room and grants."""
    quota = service(database, clock, max_concurrent=1)
    first = await quota.reserve_generation(requester(1), REQUEST, backend="t")
    group_write = database.write_returning

    async def then_the_first_job_ends(sql: str, parameters: Any, **options: Any) -> list[Any]:
        rows = await group_write(sql, parameters, **options)
        if not rows and "INSERT INTO jobs" in sql:
            monkeypatch.undo()
            await finish(database, clock, first, delivered=True)
        return rows

    monkeypatch.setattr(database, "write_returning", then_the_first_job_ends)
    second = await quota.reserve_generation(requester(2), REQUEST, backend="t")
    assert second != first
    jobs = await database.fetch_all("SELECT id, status FROM jobs ORDER BY id")
    assert [tuple(row) for row in jobs] == [(first, "delivered"), (second, "reserved")]
    refusal = await refused(quota, requester(3))
    assert (refusal.limit, refusal.value, refusal.used) == ("max_concurrent", 1, 1)


async def test_minus_one_is_unlimited(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock)
    for user in range(30):
        await quota.reserve_generation(requester(user % 3), REQUEST, backend="t")


async def test_blocked_member_is_refused_until_unblocked(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock)
    await quota.block(1, 5, reason="spam", actor_id=MODERATOR)
    refusal = await refused(quota, requester(5))
    assert (refusal.limit, refusal.block_reason) == ("blocked", "spam")
    assert "Reason: spam" in render_quota_refusal(refusal)
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
    asked_at = clock()
    clock.advance(seconds=10)
    snapshot = (await quota.status(requester(1))).snapshot
    assert (snapshot.server_today_left, snapshot.server_month_left, snapshot.member_today_left) == (9, 99, 2)
    assert snapshot.running == 1
    assert snapshot.cooldown_ends == asked_at + timedelta(seconds=30)
    clock.advance(seconds=20)
    assert (await quota.status(requester(1))).snapshot.cooldown_ends is None  # ready now


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


async def test_running_counter_follows_jobs_from_reservation_to_their_end(database: Database, clock: FakeClock) -> None:
    """max_concurrent is checked against a counter the database keeps: +1 per reservation, -1 when a job ends
    (delivered or refunded), never below 0, and a finished job ending again changes nothing."""
    quota = service(database, clock, max_concurrent=2)
    first = await quota.reserve_generation(requester(1), REQUEST, backend="t")
    await quota.reserve_generation(requester(2), REQUEST, backend="t")
    assert (await refused(quota, requester(3))).limit == "max_concurrent"
    await finish(database, clock, first, delivered=True)
    await JobStore(database).finish(first, OWNER, now=clock())  # ending again: nothing more
    third = await quota.reserve_generation(requester(3), REQUEST, backend="t")
    await finish(database, clock, third, delivered=False)
    running = await database.fetch_one("SELECT used FROM quota_counters WHERE scope = 'running'")
    assert running is not None
    assert running["used"] == 1
    assert (await quota.status(requester(1))).snapshot.running == 1


async def test_requests_beyond_max_concurrent_wait_in_line_and_start_first_come_first_served(
    database: Database, clock: FakeClock
) -> None:
    quota = service(database, clock, max_concurrent=1, max_queued=2)
    granted = [await quota.reserve_generation(requester(n), REQUEST, backend="t", owner=OWNER) for n in range(3)]
    full = await refused(quota, requester(9))  # running 1 and the line (2) full
    assert (full.limit, full.value, full.used, full.frees_at) == ("max_queued", 2, 2, None)
    assert render_quota_refusal(full) == (
        "This server's line is full: 2 requests are already waiting for a free slot. Try again when the line is "
        "shorter."
    )
    rows = await database.fetch_all("SELECT id, queued FROM jobs ORDER BY id")
    assert [(row["id"], row["queued"]) for row in rows] == [(granted[0], 0), (granted[1], 1), (granted[2], 1)]
    counters = await database.fetch_all(
        "SELECT scope, used FROM quota_counters WHERE scope IN ('running', 'queued', 'day') ORDER BY scope"
    )
    assert [tuple(row) for row in counters] == [("day", 3), ("queued", 2), ("running", 1)]
    assert await quota.start_queued(granted[2], 1, OWNER) == 2  # second in line: waits
    assert await quota.start_queued(granted[1], 1, OWNER) == 1  # first, but the slot is taken
    await finish(database, clock, granted[0], delivered=True)
    assert await quota.start_queued(granted[2], 1, OWNER) == 2  # never out of order
    assert await quota.start_queued(granted[1], 1, OWNER) is None  # started
    assert await quota.start_queued(granted[2], 1, OWNER) == 1
    snapshot = (await quota.status(requester(1))).snapshot
    assert (snapshot.running, snapshot.queued) == (1, 1)
