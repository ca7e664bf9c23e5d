"""The operator's protection from the servers, on real SQLite files: the bot-wide budget, ceilings moderators
cannot pass, limits read inside the reserving statement, and the allow-list (end to end: test_e2e_admin.py)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.errors import QuotaExceededError, UserFacingError
from bot.models import (
    UNLIMITED,
    FailureReason,
    GenerationMode,
    GenerationRequest,
    OperatorLimits,
    QuotaLimits,
    Requester,
)
from bot.quota import QuotaService, UsagePeriod
from bot.storage import Database, JobStore, QuotaStore, SqliteDatabase
from bot.storage.database import bundled_migrations
from cogs.quota_render import NOT_ALLOWED_MESSAGE, describe_in_force, render_quota_refusal
from tests.clock import FakeClock

REQUEST = GenerationRequest(GenerationMode.DESCRIPTION, "lofi beats")
OPEN = QuotaLimits(daily=-1, monthly=-1, per_member_daily=-1, cooldown_seconds=0, max_concurrent=-1)
MODERATOR = 999


def requester(user_id: int, guild_id: int = 1) -> Requester:
    return Requester(guild_id=guild_id, channel_id=10, user_id=user_id)


def service(
    database: Database,
    clock: FakeClock,
    *,
    defaults: QuotaLimits = OPEN,
    ceilings: dict[str, int] | None = None,
    **operator: Any,
) -> QuotaService:
    """A quota service whose operator set `ceilings` (by name), a budget or an allow-list."""
    if ceilings is not None:
        operator["ceilings"] = replace(OPEN, **ceilings)
    store = QuotaStore(database, defaults=defaults, operator=OperatorLimits(**operator))
    return QuotaService(store, clock=clock)


async def refused(quota: QuotaService, who: Requester) -> QuotaExceededError:
    with pytest.raises(QuotaExceededError) as caught:
        await quota.reserve_generation(who, REQUEST, backend="t")
    return caught.value


async def reserve_all(quota: QuotaService, who: list[Requester]) -> tuple[list[int], list[QuotaExceededError]]:
    results = await asyncio.gather(
        *(quota.reserve_generation(one, REQUEST, backend="t") for one in who), return_exceptions=True
    )
    granted = [result for result in results if isinstance(result, int)]
    refusals = [result for result in results if isinstance(result, QuotaExceededError)]
    assert len(granted) + len(refusals) == len(who), results
    return granted, refusals


async def fail(database: Database, clock: FakeClock, job_id: int) -> None:
    jobs = JobStore(database)
    await database.execute("UPDATE jobs SET owner = ? WHERE id = ?", ("test-process", job_id))
    await jobs.finish(job_id, "test-process", now=clock(), reason=FailureReason.API_UNAVAILABLE)


async def global_counters(database: Database) -> dict[tuple[str, str], int]:
    """All servers' use per (scope, period); PostgreSQL keeps it in slots by server, summed here."""
    rows = await database.fetch_all(
        "SELECT scope, period, sum(used) AS used FROM global_counters GROUP BY scope, period"
    )
    return {(row["scope"], row["period"]): row["used"] for row in rows}


# --- the bot-wide budget ---------------------------------------------------------------------------------------


async def test_daily_budget_spans_every_server(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock, global_daily=5)
    everyone = [requester(user, guild_id=1 + user % 2) for user in range(20)]  # two servers, no server limits
    granted, refusals = await reserve_all(quota, everyone)
    assert len(granted) == 5
    assert {refusal.limit for refusal in refusals} == {"global_daily"}
    midnight = clock.now.replace(day=28, hour=0, minute=0, second=0, microsecond=0)
    assert {(refusal.value, refusal.used, refusal.frees_at) for refusal in refusals} == {(5, 5, midnight)}
    assert render_quota_refusal(refusals[0]) == (
        f"The bot's daily budget is used up; it resets <t:{int(midnight.timestamp())}:R> (midnight UTC)."
    )
    by_server = await database.fetch_all("SELECT guild_id, count(*) AS n FROM jobs GROUP BY guild_id")
    assert sum(row["n"] for row in by_server) == 5
    assert len(by_server) == 2  # both servers drew on the one budget
    assert (await global_counters(database))[("day", "2026-11-27")] == 5
    clock.advance(days=1)
    await quota.reserve_generation(requester(1, guild_id=3), REQUEST, backend="t")  # a new day, a new budget


async def test_monthly_budget_and_its_reset(database: Database, clock: FakeClock) -> None:
    clock.now = clock.now.replace(day=29)
    quota = service(database, clock, global_monthly=3)
    for guild_id in (1, 2, 3):
        await quota.reserve_generation(requester(1, guild_id), REQUEST, backend="t")
        clock.advance(hours=6)
    refusal = await refused(quota, requester(2, guild_id=4))
    assert (refusal.limit, refusal.value, refusal.used) == ("global_monthly", 3, 3)
    first_of_december = int(clock.now.replace(month=12, day=1, hour=0, minute=0).timestamp())
    assert render_quota_refusal(refusal) == (
        f"The bot's monthly budget is used up; it resets <t:{first_of_december}:R> (the 1st, UTC)."
    )
    clock.now = clock.now.replace(month=12, day=1, hour=0, minute=0)
    await quota.reserve_generation(requester(2, guild_id=4), REQUEST, backend="t")


async def test_a_refund_gives_the_budget_back(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock, global_daily=1, global_monthly=1)
    first = await quota.reserve_generation(requester(1), REQUEST, backend="t")
    assert (await refused(quota, requester(2, guild_id=2))).limit == "global_daily"
    await fail(database, clock, first)
    assert await global_counters(database) == {("day", "2026-11-27"): 0, ("month", "2026-11"): 0}
    await quota.reserve_generation(requester(2, guild_id=2), REQUEST, backend="t")
    assert await global_counters(database) == {("day", "2026-11-27"): 1, ("month", "2026-11"): 1}
    ledger = await database.fetch_all("SELECT change FROM quota_ledger ORDER BY id")
    assert [row["change"] for row in ledger] == ["reserve", "refund", "reserve"]


@pytest.mark.parametrize("name", ["global_daily", "global_monthly"])
async def test_a_budget_of_zero_switches_generation_off(database: Database, clock: FakeClock, name: str) -> None:
    refusal = await refused(service(database, clock, **{name: 0}), requester(1))
    assert (refusal.limit, refusal.value, refusal.frees_at) == (name, 0, None)
    assert "operator has switched music generation off" in render_quota_refusal(refusal)


async def test_server_limits_are_named_before_the_budget(database: Database, clock: FakeClock) -> None:
    """When both would refuse, the member hears of the limit they can see in /music-quota."""
    quota = service(database, clock, defaults=QuotaLimits(2, -1, -1, 0, -1), global_daily=2)
    await quota.reserve_generation(requester(1), REQUEST, backend="t")
    await quota.reserve_generation(requester(2), REQUEST, backend="t")
    assert (await refused(quota, requester(3))).limit == "daily"
    assert (await refused(quota, requester(3, guild_id=2))).limit == "global_daily"


async def test_usage_and_status_show_the_budget(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock, global_daily=10, global_monthly=100)
    await quota.reserve_generation(requester(1), REQUEST, backend="t")
    await quota.reserve_generation(requester(1, guild_id=2), REQUEST, backend="t")
    budget = (await quota.usage(1, UsagePeriod.DAY)).budget
    assert (budget.used_today, budget.left_today, budget.used_month, budget.left_month) == (2, 8, 2, 98)
    assert (await quota.status(requester(1))).budget.left_today == 8


async def test_migration_backfills_the_budget_from_existing_jobs(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    async with SqliteDatabase.open(path, migrations=bundled_migrations()[:6]) as old:
        for job_id, guild_id, created_at, charged in [
            (1, 1, "2026-11-26T10:00:00.000000Z", 1),
            (2, 2, "2026-11-27T10:00:00.000000Z", 1),
            (3, 1, "2026-11-27T11:00:00.000000Z", 1),
            (4, 2, "2026-11-27T12:00:00.000000Z", 0),  # refunded: not spent
            (5, 3, "2026-10-31T23:59:59.999999Z", 1),
        ]:
            await old.execute(
                """INSERT INTO jobs (id, guild_id, channel_id, requester_id, backend, mode, prompt, instrumental,
                                     status, charged, created_at)
                   VALUES (?, ?, 2, 3, 'aimlapi-suno', 'description', 'x', 0, 'delivered', ?, ?)""",
                (job_id, guild_id, charged, created_at),
            )
    async with SqliteDatabase.open(path) as upgraded:
        assert await global_counters(upgraded) == {
            ("day", "2026-11-26"): 1,
            ("day", "2026-11-27"): 2,
            ("day", "2026-10-31"): 1,
            ("month", "2026-11"): 3,
            ("month", "2026-10"): 1,
        }
        clock = FakeClock()  # 2026-11-27: two of three spent today
        quota = service(upgraded, clock, global_daily=3)
        await quota.reserve_generation(requester(9, guild_id=9), REQUEST, backend="t")
        assert (await refused(quota, requester(9, guild_id=8))).limit == "global_daily"
        server = await upgraded.fetch_all("SELECT scope, used FROM quota_counters WHERE guild_id = 9 ORDER BY scope")
        # the server counters still kept: today, this month, the member today, and running now
        assert [tuple(row) for row in server] == [("day", 1), ("member:9", 1), ("month", 1), ("running", 1)]


# --- ceilings --------------------------------------------------------------------------------------------------


async def test_ceiling_clamps_unlimited_defaults_and_values_stored_before_it(
    database: Database, clock: FakeClock
) -> None:
    defaults = QuotaLimits(daily=300, monthly=-1, per_member_daily=-1, cooldown_seconds=0, max_concurrent=-1)
    # Stored before any ceiling existed (as an older bot or a moderator left it).
    await database.execute("INSERT INTO guild_limits (guild_id, daily, monthly) VALUES (2, 100, 1000)")
    quota = service(database, clock, defaults=defaults, ceilings={"daily": 2, "monthly": 50})
    await quota.set_limits(3, {"daily": -1}, actor_id=MODERATOR)
    for guild_id in (1, 2, 3):  # the default 300, the old 100 and -1 all become 2
        record = await quota.limits(guild_id)
        assert (record.limits.daily, record.limits.monthly) == (2, 50)
        for user in (1, 2):
            await quota.reserve_generation(requester(user, guild_id), REQUEST, backend="t")
        refusal = await refused(quota, requester(3, guild_id))
        assert (refusal.limit, refusal.value, refusal.used) == ("daily", 2, 2)  # the effective number
        assert "used all 2 of today's generations" in render_quota_refusal(refusal)
    assert (await quota.limits(2)).configured.daily == 100
    assert (await quota.limits(3)).configured.daily == UNLIMITED
    assert (await quota.status(requester(1))).snapshot.server_today_left == 0


async def test_a_value_above_the_ceiling_is_refused_and_nothing_changes(database: Database, clock: FakeClock) -> None:
    quota = service(database, clock, ceilings={"daily": 50, "max_concurrent": 0})
    with pytest.raises(UserFacingError) as caught:
        await quota.set_limits(1, {"monthly": 10, "daily": 51}, actor_id=MODERATOR)
    assert "at most 50 (the bot's ceiling)" in caught.value.message
    with pytest.raises(UserFacingError, match="ceiling is 0"):
        await quota.set_limits(1, {"max_concurrent": 1}, actor_id=MODERATOR)
    assert await database.fetch_all("SELECT * FROM guild_limits") == []
    assert await database.fetch_all("SELECT * FROM moderation_log") == []
    changes = await quota.set_limits(1, {"daily": 50, "monthly": -1, "cooldown_seconds": 86_400}, actor_id=MODERATOR)
    assert [(change.name, change.new) for change in changes] == [("daily", 50), ("cooldown_seconds", 86_400)]
    await quota.set_limits(1, {"daily": -1, "max_concurrent": 0}, actor_id=MODERATOR)  # -1 and 0 always allowed


CHOICES = [None, -1, 0, 1, 3, 100]  # None: the server never set it (the default, 4, applies)
CEILINGS = [-1, 0, 2, 5]


@pytest.mark.parametrize("ceiling", CEILINGS)
@pytest.mark.parametrize("chosen", CHOICES)
async def test_the_sql_rule_the_refusals_and_the_words_agree(
    database: Database, clock: FakeClock, chosen: int | None, ceiling: int
) -> None:
    """One rule in SQL (reservation and snapshot); the admin answer words it; all three say the same."""
    defaults = QuotaLimits(daily=4, monthly=-1, per_member_daily=-1, cooldown_seconds=0, max_concurrent=-1)
    if chosen is not None:
        await database.execute("INSERT INTO guild_limits (guild_id, daily) VALUES (1, ?)", (chosen,))
    value = 4 if chosen is None else chosen
    expected = value if ceiling == -1 else ceiling if value == -1 else min(value, ceiling)
    quota = service(database, clock, defaults=defaults, ceilings={"daily": ceiling})
    record = await quota.limits(1)
    assert (record.limits.daily, record.configured.daily) == (expected, value)
    granted, refusals = await reserve_all(quota, [requester(user) for user in range(12)])
    assert len(granted) == (12 if expected == -1 else min(expected, 12))
    assert {refusal.limit for refusal in refusals} <= {"daily"}
    words = describe_in_force("daily", value, ceiling)
    if expected == value:
        assert "ceiling" not in words
    elif expected == 0:
        assert words.endswith("off (0) (the bot's ceiling)")
    else:
        assert words.endswith(f"{'up to ' if value == -1 else ''}{expected} (the bot's ceiling)")


async def test_cooldown_cutoff_in_sql_is_exact_to_the_microsecond(database: Database, clock: FakeClock) -> None:
    clock.now = clock.now.replace(second=59, microsecond=999_999)  # the cutoff crosses a minute and an hour
    await database.execute("INSERT INTO guild_limits (guild_id, cooldown_seconds) VALUES (1, 3600)")
    quota = service(database, clock)
    await quota.reserve_generation(requester(1), REQUEST, backend="t")
    clock.advance(seconds=3599, microseconds=999_999)
    assert (await refused(quota, requester(1))).limit == "cooldown_seconds"
    clock.advance(microseconds=1)
    await quota.reserve_generation(requester(1), REQUEST, backend="t")


# --- limits are read inside the reserving statement ------------------------------------------------------------


async def watch_order(database: Database) -> None:
    """Records, inside each transaction, every grant and the moment `daily` became 0: their order in this table
    is the order in which they were written, so a grant after the change is a grant after its commit."""
    if database.dialect.name == "sqlite":
        await database.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL)")
        await database.execute(
            "CREATE TRIGGER watch_grant AFTER INSERT ON jobs BEGIN INSERT INTO events (kind) VALUES ('grant'); END"
        )
        await database.execute(
            """CREATE TRIGGER watch_limit AFTER UPDATE OF daily ON guild_limits WHEN NEW.daily = 0
               BEGIN INSERT INTO events (kind) VALUES ('daily=0'); END"""
        )
        return
    # PostgreSQL: ids are drawn while each transaction holds the server's lock, so they follow commit order.
    await database.execute("CREATE TABLE events (id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL)")
    await database.execute(
        """CREATE FUNCTION watch() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN INSERT INTO events (kind) VALUES (TG_ARGV[0]); RETURN NULL; END $$"""
    )
    await database.execute(
        "CREATE TRIGGER watch_grant AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION watch('grant')"
    )
    await database.execute(
        """CREATE TRIGGER watch_limit AFTER UPDATE OF daily ON guild_limits
           FOR EACH ROW WHEN (NEW.daily = 0) EXECUTE FUNCTION watch('daily=0')"""
    )


async def test_no_reservation_in_flight_is_granted_after_daily_zero_commits(
    database: Database, clock: FakeClock
) -> None:
    quota = service(database, clock)
    await watch_order(database)
    await quota.reserve_generation(requester(0), REQUEST, backend="t")  # limits read once (a cache would fill)
    busy = asyncio.Event()
    granted_so_far = 0

    async def member(user: int) -> QuotaExceededError:
        nonlocal granted_so_far
        while True:
            try:
                await quota.reserve_generation(requester(user), REQUEST, backend="t")
            except QuotaExceededError as refusal:
                return refusal
            granted_so_far += 1
            if granted_so_far == 60:  # members are busy: dozens of reservations in flight
                busy.set()

    async def moderator() -> None:
        await busy.wait()
        await quota.set_limits(1, {"daily": 0}, actor_id=MODERATOR)

    _, *refusals = await asyncio.wait_for(asyncio.gather(moderator(), *(member(user) for user in range(30))), 30)
    assert [(refusal.limit, refusal.value) for refusal in refusals] == [("daily", 0)] * 30
    assert all("switched off" in render_quota_refusal(refusal) for refusal in refusals)
    events = [row["kind"] for row in await database.fetch_all("SELECT kind FROM events ORDER BY id")]
    change = events.index("daily=0")
    assert change >= 60
    assert events[change + 1 :] == []  # not one grant after the change committed


async def test_a_change_made_by_another_process_holds_at_once(
    database: Database, clock: FakeClock, tmp_path: Path
) -> None:
    quota = service(database, clock)
    await quota.reserve_generation(requester(1), REQUEST, backend="t")
    change = "INSERT INTO guild_limits (guild_id, monthly) VALUES (1, 0)"
    if database.dialect.name == "sqlite":
        other = sqlite3.connect(tmp_path / "musicbot.sqlite3")  # an operator's sqlite3 shell
        try:
            with other:
                other.execute(change)
        finally:
            other.close()
    else:
        elsewhere = await asyncpg.connect(database.url)  # another process's connection
        try:
            await elsewhere.execute(change)
        finally:
            await elsewhere.close()
    assert (await refused(quota, requester(2))).limit == "monthly"


# --- the allow-list --------------------------------------------------------------------------------------------


async def test_allow_list_refuses_other_servers_before_reserving_and_logs_each_once(
    database: Database, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    quota = service(database, clock, allowed_guilds=frozenset({1}))
    caplog.set_level(logging.INFO, logger="bot.quota")
    for _ in range(3):
        refusal = await refused(quota, requester(1, guild_id=2))
        assert (render_quota_refusal(refusal), refusal.limit) == (NOT_ALLOWED_MESSAGE, "allowed_guilds")
    await refused(quota, requester(1, guild_id=3))
    logged = [record for record in caplog.records if "ALLOWED_GUILD_IDS" in record.getMessage()]
    assert [record.levelno for record in logged] == [logging.WARNING, logging.WARNING]
    assert "guild=2" in logged[0].getMessage()
    assert "guild=3" in logged[1].getMessage()
    assert await database.fetch_all("SELECT * FROM jobs") == []
    assert await database.fetch_all("SELECT * FROM quota_ledger") == []
    assert not (await quota.status(requester(1, guild_id=2))).allowed
    await quota.reserve_generation(requester(1, guild_id=1), REQUEST, backend="t")
