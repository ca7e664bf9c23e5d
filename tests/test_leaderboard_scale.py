"""The kept vote tallies on a real SQLite file: the leaderboard they serve equals a recount of the raw votes."""

from __future__ import annotations

import random
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.models import VoteChoice
from bot.storage import Database, SqliteDatabase, VoteStore
from bot.storage.database import Transaction, bundled_migrations, to_db_time

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # on the hour
WINDOWS = (timedelta(days=1), timedelta(days=7), timedelta(days=30), None)
MICROSECOND = timedelta(microseconds=1)
GUILDS = (101, 102, 103)
CLIPS_PER_GUILD = 400
VOTERS = 200
VOTES = 20_000


def window_starts() -> list[datetime | None]:
    """Each period's start as the bot computes it at NOW, and starts on, just before and just after an hour
    and a UTC midnight, so every way a window can begin against the kept hours and days is covered."""
    starts: list[datetime | None] = [None]
    for window in WINDOWS[:-1]:
        assert window is not None
        exact = NOW - window
        midnight = exact.replace(hour=0)
        for anchor in (exact, midnight, midnight + timedelta(hours=1)):
            starts += [anchor, anchor - MICROSECOND, anchor + MICROSECOND]
        starts += [exact + timedelta(minutes=30), midnight - timedelta(minutes=1)]
    return starts


EDGES = [start for start in window_starts() if start is not None]


@dataclass(frozen=True)
class Ranked:
    clip_id: str
    up: int
    down: int


def random_instant(rng: random.Random) -> datetime:
    """Mostly anywhere in the last 35 days; often right on an edge a window can start at."""
    if rng.random() < 0.2:
        return rng.choice(EDGES)
    return NOW - timedelta(seconds=rng.uniform(0, 35 * 86_400))


async def insert_songs(connection: Transaction, rng: random.Random) -> list[str]:
    """Two clips per job in each guild, delivered over 40 days (both clips of a job at the same instant, so
    ties fall to job and position); one clip in ten is still being posted (no message id yet)."""
    jobs: list[tuple[int, int, int, int, str]] = []
    clips: list[tuple[str, int, int, int | None, str | None]] = []
    job_id = 0
    for guild_id in GUILDS:
        for _ in range(CLIPS_PER_GUILD // 2):
            job_id += 1
            created = NOW - timedelta(days=40) + timedelta(seconds=rng.uniform(0, 40 * 86_400))
            jobs.append((job_id, guild_id, 7, 1000 + job_id % 50, to_db_time(created)))
            for position in (0, 1):
                clip_id = f"g{guild_id}-j{job_id}-{position}"
                if rng.random() < 0.1:
                    clips.append((clip_id, job_id, position, None, None))
                else:
                    delivered = to_db_time(created + timedelta(minutes=1))
                    clips.append((clip_id, job_id, position, 9000 + len(clips), delivered))
    await connection.execute_many(
        """INSERT INTO jobs (id, guild_id, channel_id, requester_id, backend, mode, prompt, instrumental,
                             status, charged, created_at)
           VALUES (?, ?, ?, ?, 'aimlapi-suno', 'description', 'a song', 0, 'delivered', 1, ?)""",
        jobs,
    )
    await connection.execute_many(
        "INSERT INTO clips (id, job_id, position, status, title, message_id, delivered_at)"
        " VALUES (?, ?, ?, 'complete', 'Song', ?, ?)",
        clips,
    )
    return [clip[0] for clip in clips]


async def insert_votes(connection: Transaction, rng: random.Random, clip_ids: list[str]) -> None:
    pairs = {(rng.choice(clip_ids), 5000 + rng.randrange(VOTERS)) for _ in range(VOTES)}
    await connection.execute_many(
        "INSERT INTO votes (clip_id, user_id, value, voted_at) VALUES (?, ?, ?, ?)",
        [
            (clip_id, user_id, 1 if rng.random() < 0.6 else -1, to_db_time(random_instant(rng)))
            for clip_id, user_id in sorted(pairs)
        ],
    )


def recount(votes: list[sqlite3.Row], guild_id: int, since: datetime | None) -> list[Ranked]:
    """The leaderboard straight from the raw votes, in Python: delivered clips only, ties to the earlier clip."""
    start = to_db_time(since) if since else ""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    order: dict[str, tuple[str, int, int]] = {}
    for vote in votes:
        if vote["guild_id"] == guild_id and vote["delivered_at"] is not None and vote["voted_at"] >= start:
            counts[vote["clip_id"]][0 if vote["value"] == 1 else 1] += 1
            order[vote["clip_id"]] = (vote["delivered_at"], vote["job_id"], vote["position"])
    ranked = sorted(counts, key=lambda clip_id: (counts[clip_id][1] - counts[clip_id][0], order[clip_id]))
    return [Ranked(clip_id, *counts[clip_id]) for clip_id in ranked]


async def assert_leaderboards_match_a_recount(database: Database) -> None:
    votes = await database.fetch_all(
        """SELECT votes.clip_id, votes.value, votes.voted_at, jobs.guild_id, clips.delivered_at, clips.job_id,
                  clips.position
           FROM votes JOIN clips ON clips.id = votes.clip_id JOIN jobs ON jobs.id = clips.job_id"""
    )
    # Each guild's votes set apart once (recount filters them again), so the recounts do not rescan all 20,000.
    votes_of = {guild_id: [vote for vote in votes if vote["guild_id"] == guild_id] for guild_id in GUILDS}
    store = VoteStore(database)
    for guild_id in GUILDS:
        for since in window_starts():
            expected = recount(votes_of[guild_id], guild_id, since)
            ranked = await store.top(guild_id, since, limit=10 * CLIPS_PER_GUILD)
            assert [Ranked(c.clip_id, c.tally.up, c.tally.down) for c in ranked] == expected, (guild_id, since)
            top_ten = await store.top(guild_id, since, limit=10)
            assert [c.clip_id for c in top_ten] == [r.clip_id for r in expected[:10]]
        assert expected, "the data set must give every guild a leaderboard"


async def assert_kept_tallies_match_a_recount(database: Database) -> None:
    """Every kept row (all-time, per day, per hour) against a GROUP BY of the raw votes; emptied rows may stay."""
    for table, key in (("vote_tallies", "''"), ("vote_days", "day"), ("vote_hours", "hour")):
        width = {"vote_tallies": 0, "vote_days": 10, "vote_hours": 13}[table]
        period = f"substr(votes.voted_at, 1, {width})" if width else "''"
        kept = await database.fetch_all(
            f"SELECT guild_id, {key} AS period, clip_id, up, down FROM {table} WHERE up + down > 0 ORDER BY 1, 2, 3"
        )
        counted = await database.fetch_all(
            f"""SELECT jobs.guild_id, {period} AS period, votes.clip_id,
                       count(*) FILTER (WHERE votes.value = 1) AS up,
                       count(*) FILTER (WHERE votes.value = -1) AS down
                FROM votes JOIN clips ON clips.id = votes.clip_id JOIN jobs ON jobs.id = clips.job_id
                GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
        )
        assert [tuple(row) for row in kept] == [tuple(row) for row in counted], table


async def test_kept_tallies_rank_exactly_like_the_raw_votes_through_switches_and_removals(database: Database) -> None:
    rng = random.Random(20261127)
    async with database.transaction() as connection:
        clip_ids = await insert_songs(connection, rng)
        await insert_votes(connection, rng, clip_ids)
    await assert_kept_tallies_match_a_recount(database)
    await assert_leaderboards_match_a_recount(database)

    store = VoteStore(database)
    existing = [tuple(row) for row in await database.fetch_all("SELECT clip_id, user_id, value FROM votes")]
    for clip_id, user_id, value in rng.sample(existing, 300):  # the same button again removes, the other switches
        same = VoteChoice.UP if value == 1 else VoteChoice.DOWN
        other = VoteChoice.DOWN if value == 1 else VoteChoice.UP
        await store.toggle(clip_id, user_id, rng.choice((same, other)), random_instant(rng))
    for _ in range(100):  # new votes, some on clips still being posted
        await store.toggle(rng.choice(clip_ids), 9000 + rng.randrange(50), VoteChoice.UP, random_instant(rng))
    async with database.transaction() as connection:  # any other change moves or removes the vote too
        for clip_id, user_id, _ in rng.sample(existing, 200):
            await connection.execute(
                "UPDATE votes SET voted_at = ?, value = -value WHERE clip_id = ? AND user_id = ?",
                (to_db_time(random_instant(rng)), clip_id, user_id),
            )
            await connection.execute("DELETE FROM votes WHERE clip_id = ? AND user_id = ?", rng.choice(existing)[:2])
    await assert_kept_tallies_match_a_recount(database)
    await assert_leaderboards_match_a_recount(database)


async def test_the_migration_backfills_tallies_from_existing_votes(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    rng = random.Random(8)
    before_tallies = [migration for migration in bundled_migrations() if migration.version < 8]
    async with SqliteDatabase.open(path, migrations=before_tallies) as old, old.transaction() as connection:
        clip_ids = await insert_songs(connection, rng)
        await insert_votes(connection, rng, clip_ids)
    async with SqliteDatabase.open(path) as upgraded:
        assert await upgraded.schema_version() >= 8
        await assert_kept_tallies_match_a_recount(upgraded)
        await assert_leaderboards_match_a_recount(upgraded)


@pytest.mark.parametrize("window", WINDOWS[:-1])
async def test_a_vote_on_the_windows_first_instant_counts_and_one_just_before_does_not(
    database: Database, window: timedelta
) -> None:
    async with database.transaction() as connection:
        await insert_songs(connection, random.Random(1))
    store = VoteStore(database)
    first, second = (
        row["id"] for row in await database.fetch_all("SELECT id FROM clips WHERE message_id IS NOT NULL LIMIT 2")
    )
    since = NOW + timedelta(minutes=17) - window  # inside an hour, so the raw votes of that hour are read
    await store.toggle(first, 1, VoteChoice.UP, since)
    await store.toggle(second, 1, VoteChoice.UP, since - MICROSECOND)
    assert [clip.clip_id for clip in await store.top(GUILDS[0], since, limit=10)] == [first]
    assert {clip.clip_id for clip in await store.top(GUILDS[0], since - MICROSECOND, limit=10)} == {first, second}
