"""`musicbot migrate-db --to postgresql://…` as an operator runs it: a SQLite database with songs, votes, limits,
blocks and a refund is copied into an empty PostgreSQL one, and the bot reads the same things from it."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

from bot.clock import utc_now
from bot.models import (
    Clip,
    ClipStatus,
    FailureReason,
    GenerationMode,
    GenerationRequest,
    QuotaLimits,
    Requester,
    VoteChoice,
)
from bot.quota import QuotaService, UsagePeriod
from bot.storage import JobStore, QuotaStore, SqliteDatabase, VoteStore
from bot.storage.database import Database
from bot.storage.postgres import PostgresDatabase
from bot.voting import LeaderboardPeriod, VotingService

ROOT = Path(__file__).resolve().parent.parent
LIMITS = QuotaLimits(daily=20, monthly=300, per_member_daily=5, cooldown_seconds=0, max_concurrent=4)
REQUEST = GenerationRequest(mode=GenerationMode.DESCRIPTION, prompt="a song about rain")
GUILD = 10


async def migrate_db(source: Path, target: str) -> tuple[int, str]:
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("DISCORD_", "AIML_"))},
        "DISCORD_TOKEN": "unused-here",
        "AIML_API_KEY": "unused-here",
        "DATABASE_URL": f"sqlite:///{source}",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "migrate-db", "--to", target,
        cwd=source.parent, env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def fill(database: Database) -> None:
    """What a few days of a server look like: two delivered songs with votes, a refunded failure, a block."""
    quota = QuotaService(QuotaStore(database, defaults=LIMITS), clock=utc_now)
    jobs = JobStore(database)
    for user, delivered in ((1, True), (2, True), (3, False)):
        job_id = await quota.reserve_generation(Requester(GUILD, 20, user), REQUEST, backend="aimlapi-suno", owner="p")
        await jobs.mark_submitted(job_id, "p", utc_now())
        clips = [Clip(f"clip-{job_id}-{n}", ClipStatus.COMPLETE, title=f"Rain {n}", lyrics="la la") for n in (0, 1)]
        await jobs.save_clips(job_id, "p", list(enumerate(clips)), polling=True)
        if delivered:
            for n, clip in enumerate(clips):
                await jobs.mark_posting(job_id, "p", clip.id, utc_now())
                await jobs.record_delivery(job_id, "p", clip.id, 5000 + job_id * 10 + n, utc_now())
        await jobs.finish(job_id, "p", now=utc_now(), reason=None if delivered else FailureReason.CLIPS_FAILED)
    votes = VoteStore(database)
    for voter in (7, 8, 9):
        await votes.toggle("clip-1-0", voter, VoteChoice.UP, utc_now())
    await votes.toggle("clip-2-1", 7, VoteChoice.DOWN, utc_now())
    await quota.set_limits(GUILD, {"daily": 12}, actor_id=99)
    await quota.block(GUILD, 66, reason="spam", actor_id=99)


async def observe(database: Database) -> tuple[object, ...]:
    """Everything a member or moderator would see, and the bookkeeping behind it."""
    quota = QuotaService(QuotaStore(database, defaults=LIMITS), clock=utc_now)
    voting = VotingService(VoteStore(database), clock=utc_now)
    top = await voting.leaderboard(GUILD, LeaderboardPeriod.ALL)
    counters = await database.fetch_all("SELECT scope, period, used FROM quota_counters ORDER BY scope, period")
    ledger = await database.fetch_all("SELECT job_id, change FROM quota_ledger ORDER BY id")
    return (
        [(clip.clip_id, clip.tally) for clip in top],
        await quota.usage(GUILD, UsagePeriod.ALL),
        (await quota.limits(GUILD)).configured,
        (await quota.status(Requester(GUILD, 20, 1))).snapshot.member_today,
        [tuple(row) for row in counters],
        [tuple(row) for row in ledger],
        [tuple(row) for row in await database.fetch_all("SELECT user_id, reason FROM blocked_members")],
        (await quota.budget()).used_today,
    )


async def test_migrate_db_copies_everything_and_the_bot_carries_on_from_it(tmp_path: Path, postgres_url: str) -> None:
    source = tmp_path / "musicbot.sqlite3"
    async with SqliteDatabase.open(source) as sqlite:
        await fill(sqlite)
        before = await observe(sqlite)
    code, output = await migrate_db(source, postgres_url)
    assert code == 0, output
    assert "jobs 3" in output
    assert "votes 4" in output
    async with PostgresDatabase.open(postgres_url) as postgres:
        assert await observe(postgres) == before
        quota = QuotaService(QuotaStore(postgres, defaults=LIMITS), clock=utc_now)
        next_job = await quota.reserve_generation(Requester(GUILD, 20, 4), REQUEST, backend="aimlapi-suno")
        assert next_job == 4  # ids go on after the copied ones
        counted = await postgres.fetch_one("SELECT used FROM quota_counters WHERE scope = 'day'")
        assert counted is not None
        assert counted[0] == 3  # two kept + this one (the refunded job counts for nothing), via the triggers
    code, output = await migrate_db(source, postgres_url)  # a second run would duplicate: refused
    assert code == 1
    assert "is not empty" in output
    assert "nothing was copied" in output


async def test_migrate_db_refuses_while_a_bot_holds_jobs(tmp_path: Path, postgres_url: str) -> None:
    source = tmp_path / "musicbot.sqlite3"
    async with SqliteDatabase.open(source) as sqlite:
        quota = QuotaService(QuotaStore(sqlite, defaults=LIMITS), clock=utc_now)
        await quota.reserve_generation(
            Requester(GUILD, 20, 1), REQUEST, backend="t", owner="live", lease=timedelta(hours=1)
        )
    code, output = await migrate_db(source, postgres_url)
    assert code == 1
    assert "held by a running bot: stop it" in output
    async with PostgresDatabase.open(postgres_url) as postgres:
        assert await postgres.fetch_all("SELECT id FROM jobs") == []


async def test_migrate_db_names_a_bad_target_without_its_password(tmp_path: Path) -> None:
    source = tmp_path / "musicbot.sqlite3"
    async with SqliteDatabase.open(source):
        pass
    code, output = await migrate_db(source, "postgresql://bot:pa55word@127.0.0.1:1/none")
    assert code == 1
    assert "cannot open the database at postgresql://bot:***@127.0.0.1:1/none" in output
    assert "pa55word" not in output
    code, output = await migrate_db(source, "mysql://somewhere")
    assert code == 2
    assert "--to must be a postgresql://" in output
