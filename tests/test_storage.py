"""Storage on real SQLite files: migrations are numbered and atomic, WAL is on, jobs move through their states."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from bot.errors import JobTakenOverError
from bot.models import (
    Clip,
    ClipStatus,
    FailureReason,
    GenerationMode,
    GenerationRequest,
    JobStatus,
    QuotaLimits,
    Requester,
    VoteAction,
    VoteChoice,
    VoteTally,
)
from bot.storage import Database, JobStore, QuotaStore, SqliteDatabase, VoteStore
from bot.storage.coordination import IDENTIFY_SPACING, CoordinationStore
from bot.storage.database import Migration, MigrationError, bundled_migrations, to_db_time
from tests.clock import FakeClock

REQUESTER = Requester(guild_id=1, channel_id=2, user_id=3)
NO_LIMITS = QuotaLimits(daily=-1, monthly=-1, per_member_daily=-1, cooldown_seconds=0, max_concurrent=-1)
REQUEST = GenerationRequest(GenerationMode.DESCRIPTION, "a calm song about rain")


OWNER = "this-process"


async def reserve(database: Database, clock: FakeClock, limits: QuotaLimits = NO_LIMITS) -> int:
    """A job reserved (with no limits in the way unless `limits` says), and held by this process."""
    return await QuotaStore(database, defaults=limits).reserve_job(
        REQUESTER,
        REQUEST,
        backend="aimlapi-suno",
        now=clock(),
        day_start=clock(),
        month_start=clock(),
        owner=OWNER,
        lease_until=clock() + timedelta(seconds=30),
    )


async def test_fresh_database_is_at_latest_version_in_wal(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    async with SqliteDatabase.open(path) as db:
        assert await db.schema_version() == len(bundled_migrations())
        row = await db.fetch_one("PRAGMA journal_mode")
        assert row is not None
        assert row[0] == "wal"
    async with SqliteDatabase.open(path) as db:  # re-opening applies nothing twice
        assert await db.schema_version() == len(bundled_migrations())


async def test_failing_migration_leaves_schema_and_version_untouched(tmp_path: Path) -> None:
    migrations = [
        *bundled_migrations(),
        Migration(
            99,
            "0099_broken.sql",
            "BEGIN IMMEDIATE; CREATE TABLE half (x); INSERT INTO nowhere VALUES (1); PRAGMA user_version = 99; COMMIT;",
        ),
    ]
    path = tmp_path / "db.sqlite3"
    with pytest.raises(MigrationError, match=r"0099_broken\.sql failed and was rolled back"):
        async with SqliteDatabase.open(path, migrations=migrations):
            pass
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == len(bundled_migrations())
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "half" not in tables
    finally:
        connection.close()


async def test_migration_must_bump_user_version(tmp_path: Path) -> None:
    migrations = [*bundled_migrations(), Migration(99, "0099_forgot.sql", "CREATE TABLE t (x);")]
    with pytest.raises(MigrationError, match="must set PRAGMA user_version"):
        async with SqliteDatabase.open(tmp_path / "db.sqlite3", migrations=migrations):
            pass


def test_migration_files_carry_their_own_transaction() -> None:
    for migration in bundled_migrations():
        sql = migration.sql.upper()
        assert "BEGIN IMMEDIATE;" in sql
        assert f"PRAGMA USER_VERSION = {migration.version};" in sql
        assert sql.rstrip().endswith("COMMIT;")


async def test_job_lifecycle_and_single_delivery(database: Database, clock: FakeClock) -> None:
    jobs = JobStore(database)
    job_id = await reserve(database, clock)
    await jobs.mark_submitted(job_id, OWNER, clock())
    clips = [Clip("c1", ClipStatus.STREAMING, title="Rain"), Clip("c2", ClipStatus.QUEUED)]
    await jobs.save_clips(job_id, OWNER, list(enumerate(clips)), polling=True)
    assert (await jobs.get(job_id)).status is JobStatus.POLLING
    await jobs.save_clips(
        job_id, OWNER, [(0, Clip("c1", ClipStatus.COMPLETE, title="Rain", audio_url="http://x/c1.mp3"))], polling=True
    )
    stored = await jobs.clips(job_id)
    assert [clip.id for clip in stored] == ["c1", "c2"]
    assert stored[0].status is ClipStatus.COMPLETE
    assert await jobs.record_delivery(job_id, OWNER, "c1", 1001, clock()) is True  # the job's first song
    assert await jobs.record_delivery(job_id, OWNER, "c1", 1002, clock()) is False  # a repeat keeps the first
    assert await jobs.delivered_clip_ids(job_id) == {"c1"}
    assert [tuple(row) for row in await database.fetch_all("SELECT message_id FROM clips WHERE id = 'c1'")] == [(1001,)]
    finished = await jobs.finish(job_id, OWNER, now=clock(), reason=FailureReason.CLIPS_FAILED, detail="c2 failed")
    assert finished.status is JobStatus.DELIVERED
    assert finished.charged is True  # something was delivered: quota kept


async def test_unfinished_jobs_are_counted_by_state(database: Database, clock: FakeClock) -> None:
    jobs = JobStore(database)
    two_slots = replace(NO_LIMITS, max_concurrent=2, max_queued=5)

    async def reserve_one() -> int:
        return await reserve(database, clock, two_slots)

    polling, submitted = await reserve_one(), await reserve_one()
    for job_id in (polling, submitted):
        await jobs.mark_submitted(job_id, OWNER, clock())
    await jobs.save_clips(polling, OWNER, [(0, Clip("p1", ClipStatus.QUEUED))], polling=True)
    for _ in range(2):
        await reserve_one()  # both slots taken: they wait in line
    await jobs.finish(submitted, OWNER, now=clock(), reason=FailureReason.API_UNAVAILABLE)
    await reserve_one()  # the freed slot
    assert await jobs.unfinished_by_state() == {"polling": 1, "queued": 2, "reserved": 1}


async def test_finishing_empty_job_refunds_exactly_once(database: Database, clock: FakeClock) -> None:
    jobs = JobStore(database)
    job_id = await reserve(database, clock)
    first = await jobs.finish(job_id, OWNER, now=clock(), reason=FailureReason.API_UNAVAILABLE)
    second = await jobs.finish(job_id, OWNER, now=clock(), reason=FailureReason.INTERNAL)
    assert first.status is JobStatus.FAILED
    assert first.charged is False
    assert second.failure_reason is FailureReason.API_UNAVAILABLE  # a finished job stays as it ended
    rows = await database.fetch_all("SELECT change FROM quota_ledger WHERE job_id = ? ORDER BY id", (job_id,))
    assert [row["change"] for row in rows] == ["reserve", "refund"]


@pytest.mark.parametrize("old_version", range(1, len(bundled_migrations())))
async def test_upgrading_an_older_database_keeps_its_data(tmp_path: Path, clock: FakeClock, old_version: int) -> None:
    path = tmp_path / "old.sqlite3"
    async with SqliteDatabase.open(path, migrations=bundled_migrations()[:old_version]) as old:
        assert await old.schema_version() == old_version
        # Rows as the first version of the bot wrote them (still valid in every later schema).
        await old.execute(
            """INSERT INTO jobs (id, guild_id, channel_id, requester_id, backend, mode, prompt, instrumental,
                                 status, charged, created_at)
               VALUES (7, 1, 2, 3, 'aimlapi-suno', 'description', 'a calm song about rain', 0,
                       'delivered', 1, '2026-11-27T10:00:00.000000Z')"""
        )
        await old.execute(
            "INSERT INTO clips (id, job_id, position, status, title, message_id, delivered_at)"
            " VALUES ('c1', 7, 0, 'complete', 'Rain', 555, '2026-11-27T10:05:00.000000Z')"
        )
        await old.execute(
            "INSERT INTO quota_ledger (guild_id, user_id, job_id, change, created_at)"
            " VALUES (1, 3, 7, 'reserve', '2026-11-27T10:00:00.000000Z')"
        )

    async with SqliteDatabase.open(path) as upgraded:
        assert await upgraded.schema_version() == len(bundled_migrations())
        assert (await JobStore(upgraded).get(7)).request == REQUEST
        votes = VoteStore(upgraded)
        action, tally = await votes.toggle("c1", 42, VoteChoice.UP, clock())
        assert action is VoteAction.ADDED
        assert tally == VoteTally(up=1, down=0)
        posted = await votes.button_clip(7, 0)
        assert posted is not None
        assert posted.message_id == 555
        assert posted.tally.score == 1
        store = QuotaStore(upgraded, defaults=NO_LIMITS)
        assert (await store.guild_limits(1)).limits == NO_LIMITS
        counters = await upgraded.fetch_all("SELECT scope, period, used FROM quota_counters ORDER BY scope")
        assert [tuple(row) for row in counters] == [
            ("day", "2026-11-27", 1),
            ("member:3", "2026-11-27", 1),
            ("month", "2026-11", 1),
        ]
        usage = await store.usage(1, None)
        assert (usage.requested, usage.delivered, usage.charged_by_backend) == (1, 1, (("aimlapi-suno", 1),))


async def test_votes_toggle_and_switch(database: Database, clock: FakeClock) -> None:
    job_id = await reserve(database, clock)
    await JobStore(database).save_clips(job_id, OWNER, [(0, Clip("c1", ClipStatus.COMPLETE))], polling=True)
    votes = VoteStore(database)
    assert await votes.toggle("c1", 7, VoteChoice.UP, clock()) == (VoteAction.ADDED, VoteTally(1, 0))
    assert await votes.toggle("c1", 7, VoteChoice.DOWN, clock()) == (VoteAction.SWITCHED, VoteTally(0, 1))
    assert await votes.toggle("c1", 7, VoteChoice.DOWN, clock()) == (VoteAction.REMOVED, VoteTally(0, 0))
    with pytest.raises((sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)):
        await database.execute(
            "INSERT INTO votes (clip_id, user_id, value, voted_at) VALUES ('c1', 7, 1, 'x'), ('c1', 7, -1, 'y')"
        )


async def test_grouped_writes_fail_alone_and_commit_together(sqlite_database: Database, tmp_path: Path) -> None:
    good = "INSERT INTO bot_state (key, value) VALUES (?, ?) RETURNING key"
    bad = "INSERT INTO quota_counters (guild_id, scope, period, used) VALUES (1, 'day', 'x', -5) RETURNING used"
    results = await asyncio.gather(
        sqlite_database.write_returning(good, ("a", "1")),
        sqlite_database.write_returning(bad, ()),
        sqlite_database.write_returning(good, ("b", "2")),
        return_exceptions=True,
    )
    assert [tuple(rows[0]) for rows in (results[0], results[2])] == [("a",), ("b",)]  # type: ignore[index]
    assert isinstance(results[1], sqlite3.IntegrityError)
    other = sqlite3.connect(tmp_path / "musicbot.sqlite3")
    try:  # committed: another connection sees both rows, and nothing of the failed statement
        assert other.execute("SELECT key FROM bot_state ORDER BY key").fetchall() == [("a",), ("b",)]
        assert other.execute("SELECT count(*) FROM quota_counters").fetchone() == (0,)
    finally:
        other.close()


async def test_reads_neither_wait_for_an_open_write_nor_see_it_before_its_commit(database: Database) -> None:
    async with database.transaction() as connection:
        await connection.execute("INSERT INTO bot_state (key, value) VALUES ('synced', 'abc')")
        during = await asyncio.wait_for(database.fetch_all("SELECT key FROM bot_state"), timeout=5)
        assert during == []
    after = await database.fetch_all("SELECT key FROM bot_state")
    assert [tuple(row) for row in after] == [("synced",)]  # committed: every reader sees it at once


async def test_reads_cannot_write(sqlite_database: Database) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await sqlite_database.fetch_all("INSERT INTO bot_state (key, value) VALUES ('a', 'b') RETURNING key")


async def test_durability_is_full_unless_asked_otherwise(tmp_path: Path) -> None:
    async with SqliteDatabase.open(tmp_path / "full.sqlite3") as full, full.transaction() as writer:
        assert [tuple(row) for row in await writer.fetch_all("PRAGMA synchronous")] == [(2,)]
    async with (
        SqliteDatabase.open(tmp_path / "normal.sqlite3", synchronous="NORMAL") as normal,
        normal.transaction() as writer,
    ):
        assert [tuple(row) for row in await writer.fetch_all("PRAGMA synchronous")] == [(1,)]


async def test_an_interaction_is_claimed_once_and_identify_slots_are_spaced(
    database: Database, clock: FakeClock
) -> None:
    store = CoordinationStore(database, owner="me")
    assert await asyncio.gather(*(store.claim_interaction(7, clock()) for _ in range(5))) == [True] + [False] * 4
    assert await store.claim_interaction(8, clock())
    assert await store.book_identify(0, clock) == clock()
    assert await store.book_identify(0, clock) == clock() + IDENTIFY_SPACING
    clock.advance(seconds=60)
    assert await store.book_identify(0, clock) == clock()  # quiet for a minute: at once


async def test_the_paid_call_is_not_marked_once_the_lease_ran_out(database: Database, clock: FakeClock) -> None:
    """A process stopped past its lease (SIGSTOP, a long pause) may already be replaced: it must not pay."""
    jobs = JobStore(database)
    job_id = await reserve(database, clock)
    await database.execute("UPDATE jobs SET lease_until = ? WHERE id = ?", (to_db_time(clock()), job_id))
    clock.advance(seconds=1)
    with pytest.raises(JobTakenOverError):
        await jobs.mark_submitted(job_id, OWNER, clock())
    assert (await jobs.get(job_id)).status is JobStatus.RESERVED
