"""What only matters with several processes on one PostgreSQL: the schema matches SQLite's, concurrent starts
migrate once, and reservations, claims and IDENTIFY slots stay exact across separate connection pools (each
pool is what one bot process holds)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import pytest

from bot.errors import QuotaExceededError
from bot.models import GenerationMode, GenerationRequest, QuotaLimits, Requester
from bot.quota import QuotaService
from bot.storage import JobStore, QuotaStore, SqliteDatabase
from bot.storage.coordination import IDENTIFY_SPACING, CoordinationStore
from bot.storage.database import Database, bundled_migrations
from bot.storage.postgres import PostgresDatabase
from tests.clock import FakeClock

REQUEST = GenerationRequest(mode=GenerationMode.DESCRIPTION, prompt="a song")
LIMITS = QuotaLimits(daily=50, monthly=1000, per_member_daily=-1, cooldown_seconds=0, max_concurrent=-1)


@pytest.fixture
async def processes(postgres_url: str) -> AsyncIterator[list[PostgresDatabase]]:
    """Two pools on one fresh database, opened at the same moment (both run the migrations)."""
    async with AsyncExitStack() as stack:
        opened = await asyncio.gather(*(stack.enter_async_context(PostgresDatabase.open(postgres_url)) for _ in "ab"))
        yield list(opened)


async def test_two_processes_starting_together_migrate_once(processes: list[PostgresDatabase]) -> None:
    rows = await processes[0].fetch_all("SELECT version FROM schema_migrations ORDER BY version")
    expected = [migration.version for migration in bundled_migrations("postgresql")]
    assert [row["version"] for row in rows] == expected
    assert [await each.schema_version() for each in processes] == [expected[-1]] * 2


async def test_both_engines_reach_the_same_version_with_the_same_tables_and_columns(
    postgres_url: str, tmp_path: Path
) -> None:
    async with SqliteDatabase.open(tmp_path / "a.sqlite3") as sqlite, PostgresDatabase.open(postgres_url) as pg:
        assert await sqlite.schema_version() == await pg.schema_version()
        tables = [row["name"] for row in await sqlite.fetch_all("SELECT name FROM sqlite_master WHERE type='table'")]
        sqlite_columns = {
            table: {row["name"] for row in await sqlite.fetch_all(f"PRAGMA table_info({table})")} for table in tables
        }
        pg_rows = await pg.fetch_all(
            """SELECT table_name, column_name FROM information_schema.columns
               WHERE table_schema = 'public' AND table_name != 'schema_migrations'"""
        )
        pg_columns: dict[str, set[str]] = {}
        for row in pg_rows:
            pg_columns.setdefault(row["table_name"], set()).add(row["column_name"])
        # PostgreSQL's bot-wide counters carry a slot (the server's share) that SQLite has no need for.
        assert pg_columns.pop("global_counters") - {"slot"} == sqlite_columns.pop("global_counters")
        assert pg_columns == sqlite_columns
        sqlite_indexes = {
            row["name"]
            for row in await sqlite.fetch_all("SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL")
        }
        pg_indexes = {
            row["indexname"]
            for row in await pg.fetch_all("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
        }
        assert sqlite_indexes <= pg_indexes


def quota(database: Database, clock: FakeClock, limits: QuotaLimits = LIMITS) -> QuotaService:
    return QuotaService(QuotaStore(database, defaults=limits), clock=clock)


async def test_two_hundred_reservations_from_two_processes_grant_exactly_the_limit(
    processes: list[PostgresDatabase], clock: FakeClock
) -> None:
    services = [quota(each, clock) for each in processes]
    results = await asyncio.gather(
        *(
            services[n % 2].reserve_generation(Requester(1, 2, 100 + n), REQUEST, backend="t", owner=f"p{n % 2}")
            for n in range(200)
        ),
        return_exceptions=True,
    )
    granted = [result for result in results if isinstance(result, int)]
    refused = [result for result in results if isinstance(result, QuotaExceededError)]
    assert (len(granted), len(refused)) == (50, 150)
    assert {refusal.limit for refusal in refused} == {"daily"}
    database = processes[0]
    ledger = await database.fetch_one("SELECT count(*) FROM quota_ledger WHERE change = 'reserve'")
    counters = await database.fetch_one("SELECT used FROM quota_counters WHERE scope = 'day'")
    assert ledger is not None
    assert counters is not None
    assert (ledger[0], counters[0]) == (50, 50)


async def test_running_at_once_never_passes_max_concurrent_across_processes(
    processes: list[PostgresDatabase], clock: FakeClock
) -> None:
    limits = QuotaLimits(daily=-1, monthly=-1, per_member_daily=-1, cooldown_seconds=0, max_concurrent=3)
    services = [quota(each, clock, limits) for each in processes]
    results = await asyncio.gather(
        *(services[n % 2].reserve_generation(Requester(1, 2, n), REQUEST, backend="t") for n in range(60)),
        return_exceptions=True,
    )
    assert len([result for result in results if isinstance(result, int)]) == 3


async def test_the_bot_wide_budget_holds_across_servers_and_processes(
    processes: list[PostgresDatabase], clock: FakeClock
) -> None:
    from bot.models import OperatorLimits

    unlimited = QuotaLimits(daily=-1, monthly=-1, per_member_daily=-1, cooldown_seconds=0, max_concurrent=-1)
    services = [
        QuotaService(QuotaStore(each, defaults=unlimited, operator=OperatorLimits(global_daily=7)), clock=clock)
        for each in processes
    ]
    results = await asyncio.gather(
        *(services[n % 2].reserve_generation(Requester(n % 20, 2, n), REQUEST, backend="t") for n in range(100)),
        return_exceptions=True,
    )
    assert len([result for result in results if isinstance(result, int)]) == 7


async def test_claims_of_orphans_by_two_processes_never_overlap(
    processes: list[PostgresDatabase], clock: FakeClock
) -> None:
    unlimited = QuotaLimits(daily=-1, monthly=-1, per_member_daily=-1, cooldown_seconds=0, max_concurrent=-1)
    service = quota(processes[0], clock, unlimited)
    for n in range(200):
        await service.reserve_generation(Requester(1, 2, n), REQUEST, backend="t", owner="dead")
    await processes[0].execute("UPDATE jobs SET lease_until = ?", ("2000-01-01T00:00:00.000000Z",))
    now = clock()
    claimed = await asyncio.gather(
        *(
            JobStore(each).claim(name, now=now, until=now + timedelta(seconds=30), stale_before=now)
            for each, name in zip(processes, ("a", "b"), strict=True)
        )
    )
    ids = [{job.id for job in jobs} for jobs in claimed]
    assert not ids[0] & ids[1]
    assert len(ids[0] | ids[1]) == 200
    owners = await processes[0].fetch_all("SELECT owner, count(*) AS n FROM jobs GROUP BY owner")
    assert sum(row["n"] for row in owners) == 200
    assert {row["owner"] for row in owners} <= {"a", "b"}


async def test_an_interaction_is_claimed_by_exactly_one_process(
    processes: list[PostgresDatabase], clock: FakeClock
) -> None:
    stores = [CoordinationStore(each, owner=name) for each, name in zip(processes, "ab", strict=True)]
    results = await asyncio.gather(*(stores[n % 2].claim_interaction(42, clock()) for n in range(20)))
    assert results.count(True) == 1


async def test_identify_slots_are_spaced_five_seconds_across_processes(
    processes: list[PostgresDatabase], clock: FakeClock
) -> None:
    stores = [CoordinationStore(each, owner=name) for each, name in zip(processes, "ab", strict=True)]
    now = clock()
    starts = sorted(await asyncio.gather(*(stores[n % 2].book_identify(0, clock) for n in range(4))))
    assert starts == [now + IDENTIFY_SPACING * n for n in range(4)]
    assert await stores[0].book_identify(1, clock) == now  # another bucket is free
