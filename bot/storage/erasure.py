"""Erasure SQL, in bounded batches: the words of finished jobs, votes (under their clips' locks, so the tallies the
triggers keep always agree with the votes), and everything of a server the bot left DATA_RETENTION_DAYS ago."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.models import FORGOTTEN_MEMBER, JobStatus
from bot.storage.database import Database, Transaction, to_db_time
from bot.storage.votes import vote_lock

FINISHED: dict[str, str] = {f"finished_{n}": status.value for n, status in enumerate(JobStatus) if status.is_finished}
FINISHED_IN = "(" + ", ".join(f":{name}" for name in FINISHED) + ")"
ACTIVE: dict[str, str] = {f"active_{n}": status.value for n, status in enumerate(JobStatus) if not status.is_finished}
ACTIVE_IN = "(" + ", ".join(f":{name}" for name in ACTIVE) + ")"

# A clip's words and links (what the music service made of the prompt); the posted message keeps its own copy.
_ERASED_CLIP = "title = '', tags = '', lyrics = '', image_url = '', audio_url = '', error_message = ''"


@dataclass(frozen=True, slots=True)
class GuildTable:
    """A table of servers' own rows, emptied of a server's rows when its data is erased. `key`: the columns that,
    with guild_id, pick one row (deleted a batch at a time); `only`: which of the server's rows go (all if empty)."""

    name: str
    key: str
    only: str = ""


# What a server's data holds besides its jobs and votes, in the order erased (the tallies after the votes they
# count). A table added for servers (their settings, lists, logs) joins this list.
GUILD_TABLES: tuple[GuildTable, ...] = (
    GuildTable("vote_tallies", "clip_id"),
    GuildTable("vote_days", "day, clip_id"),
    GuildTable("vote_hours", "hour, clip_id"),
    GuildTable("guild_limits", "guild_id"),
    GuildTable("blocked_members", "user_id"),
    GuildTable("moderation_log", "id"),
    GuildTable("forgotten_requests", "user_id"),
    GuildTable("blocked_phrases", "words"),
    GuildTable("allowed_channels", "channel_id"),
    GuildTable("quota_counters", "scope, period", only="scope LIKE 'member:%'"),
    GuildTable("contest_entries", "job_id"),
    GuildTable("contest_results", "contest_id, place"),
    GuildTable("contests", "id"),
    GuildTable("hall_of_fame_posts", "clip_id"),
    GuildTable("hall_of_fame", "guild_id"),
)


def named(prefix: str, values: Sequence[object]) -> tuple[str, dict[str, object]]:
    """`:prefix_0, :prefix_1…` for an IN list, and their values."""
    names = {f"{prefix}_{n}": value for n, value in enumerate(values)}
    return ", ".join(f":{name}" for name in names), names


async def erase_jobs(transaction: Transaction, job_ids: Sequence[int], *, now: datetime, forget_requester: bool) -> int:
    """Erases the words of those of these jobs that are finished, and of their clips; with `forget_requester`
    also who asked (the jobs, their ledger rows and a cancel then name nobody). Returns the jobs changed.

    Unfinished jobs are left alone: their refund (a trigger) counts against their requester."""
    if not job_ids:
        return 0
    marks, ids = named("job", job_ids)
    parameters: Mapping[str, object] = {**ids, **FINISHED, "now": to_db_time(now), "nobody": FORGOTTEN_MEMBER}
    finished = f"SELECT id FROM jobs WHERE id IN ({marks}) AND status IN {FINISHED_IN}"
    await transaction.execute(f"UPDATE clips SET {_ERASED_CLIP} WHERE job_id IN ({finished})", parameters)
    forget = ""
    if forget_requester:
        await transaction.execute(
            f"UPDATE quota_ledger SET user_id = :nobody WHERE job_id IN ({finished}) AND user_id != :nobody",
            parameters,
        )
        forget = """, requester_id = :nobody, cancel_requested_by = CASE WHEN cancel_requested_by IS NULL
                                                                   THEN NULL ELSE CAST(:nobody AS BIGINT) END"""
    return await transaction.execute(
        f"""UPDATE jobs SET prompt = '', title = NULL, tags = NULL, failure_detail = NULL,
                            erased_at = coalesce(erased_at, :now){forget}
            WHERE id IN ({marks}) AND status IN {FINISHED_IN}""",
        parameters,
    )


async def delete_votes(database: Database, votes: Sequence[tuple[str, int]], *, cast_until: datetime | None) -> int:
    """Deletes these (clip, member) votes in one transaction holding their clips' vote locks, so a click on one
    of those clips waits or goes first: the triggers keep every tally equal to the votes either way. With
    `cast_until`, a vote cast (or switched) later than that is kept. Returns how many went."""
    if not votes:
        return 0
    locks = [vote_lock(clip_id) for clip_id in sorted({clip_id for clip_id, _ in votes})]
    until = "" if cast_until is None else " AND voted_at <= :until"
    removed = 0
    async with database.transaction(locks=locks) as transaction:
        for clip_id, user_id in votes:
            removed += await transaction.execute(
                f"DELETE FROM votes WHERE clip_id = :clip AND user_id = :user{until}",
                {"clip": clip_id, "user": user_id, "until": to_db_time(cast_until) if cast_until else None},
            )
    return removed


class ErasureStore:
    """What the retention loop erases: old jobs' words, the data of servers the bot left, expired cooldown marks."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def erase_old_jobs(self, *, created_before: datetime, now: datetime, batch: int) -> int:
        """One batch: the words of finished jobs created before `created_before`, oldest first (an unfinished
        job waits until it ends). Returns how many were erased."""
        rows = await self._database.fetch_all(
            f"""SELECT id FROM jobs WHERE erased_at IS NULL AND created_at < :before AND status IN {FINISHED_IN}
                ORDER BY created_at LIMIT :batch""",
            {**FINISHED, "before": to_db_time(created_before), "batch": batch},
        )
        if not rows:
            return 0
        async with self._database.transaction() as transaction:
            return await erase_jobs(transaction, [row["id"] for row in rows], now=now, forget_requester=False)

    async def forget_expired_requests(self, *, before: datetime) -> int:
        """Cooldown marks of forgotten members older than any cooldown can be."""
        return await self._database.execute(
            "DELETE FROM forgotten_requests WHERE requested_at < ?", (to_db_time(before),)
        )

    async def departed_before(self, moment: datetime, limit: int) -> list[int]:
        """Servers the bot left before `moment`, those that left first first."""
        rows = await self._database.fetch_all(
            "SELECT guild_id FROM departed_guilds WHERE left_at < ? ORDER BY left_at, guild_id LIMIT ?",
            (to_db_time(moment), limit),
        )
        return [row["guild_id"] for row in rows]

    async def erase_departed_guild(self, guild_id: int, *, left_before: datetime, now: datetime, batch: int) -> bool:
        """Erases, batch by batch, a server the bot left before `left_before`: its votes, its jobs' words and
        requesters (the jobs stay, anonymous, for the operator's accounting), and its rows in GUILD_TABLES; then
        forgets the departure. Every batch first checks the departure still stands: a server that took the bot
        back meanwhile keeps what is left. False when it did, or a job of it has not finished yet."""
        departed = {"guild": guild_id, "before": to_db_time(left_before), "batch": batch}
        still = f"SELECT 1 FROM departed_guilds WHERE guild_id = :guild AND left_at < :before{self._for_update}"
        while votes := await self._database.fetch_all(
            """SELECT votes.clip_id, votes.user_id FROM vote_tallies JOIN votes ON votes.clip_id = vote_tallies.clip_id
               WHERE vote_tallies.guild_id = :guild LIMIT :batch""",
            departed,
        ):
            locks = [vote_lock(clip_id) for clip_id in sorted({row["clip_id"] for row in votes})]
            async with self._database.transaction(locks=locks) as transaction:
                if await transaction.fetch_one(still, departed) is None:
                    return False
                for row in votes:
                    await transaction.execute(
                        "DELETE FROM votes WHERE clip_id = ? AND user_id = ?", (row["clip_id"], row["user_id"])
                    )
        after: tuple[str, int] = ("", 0)
        while jobs := await self._database.fetch_all(
            f"""SELECT id, created_at FROM jobs
                WHERE guild_id = :guild AND status IN {FINISHED_IN} AND (erased_at IS NULL OR requester_id != :nobody)
                  AND (created_at > :created OR (created_at = :created AND id > :id))
                ORDER BY created_at, id LIMIT :batch""",
            {**departed, **FINISHED, "nobody": FORGOTTEN_MEMBER, "created": after[0], "id": after[1]},
        ):
            async with self._database.transaction() as transaction:
                if await transaction.fetch_one(still, departed) is None:
                    return False
                await erase_jobs(transaction, [row["id"] for row in jobs], now=now, forget_requester=True)
            after = (jobs[-1]["created_at"], jobs[-1]["id"])
        for table in GUILD_TABLES:
            only = f" AND {table.only}" if table.only else ""
            removed = batch
            while removed == batch:
                async with self._database.transaction() as transaction:
                    if await transaction.fetch_one(still, departed) is None:
                        return False
                    removed = await transaction.execute(
                        f"""DELETE FROM {table.name} WHERE guild_id = :guild AND ({table.key}) IN (
                                SELECT {table.key} FROM {table.name} WHERE guild_id = :guild{only} LIMIT :batch)""",
                        departed,
                    )
        async with self._database.transaction() as transaction:
            if await transaction.fetch_one(still, departed) is None:
                return False
            running = await transaction.fetch_one(
                f"SELECT count(*) FROM jobs WHERE guild_id = :guild AND status IN {ACTIVE_IN}", {**departed, **ACTIVE}
            )
            if running is not None and running[0]:
                return False
            await transaction.execute("DELETE FROM departed_guilds WHERE guild_id = ?", (guild_id,))
        return True

    @property
    def _for_update(self) -> str:
        """The departure's row stays locked to the commit, so joining again waits for the batch to finish."""
        return self._database.dialect.for_update
