"""Privacy SQL: forgetting a member across every server, a moderator deleting one song, and the servers the bot
left (see bot/storage/erasure.py for the batches they share with the retention loop)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.models import FORGOTTEN_MEMBER
from bot.storage.database import Database, from_db_time, to_db_time
from bot.storage.erasure import ACTIVE, ACTIVE_IN, FINISHED, FINISHED_IN, delete_votes, erase_jobs, named
from bot.storage.quota import log_moderation
from bot.storage.votes import row_title, vote_lock


@dataclass(frozen=True, slots=True)
class ForgetReport:
    """What forgetting a member did: the votes deleted and the requests whose words and requester were erased.
    `running` > 0: refused, nothing done, as that many of their requests are unfinished."""

    votes: int = 0
    requests: int = 0
    running: int = 0


@dataclass(frozen=True, slots=True)
class SongRecord:
    """One posted song as a moderator's delete-song finds it."""

    clip_id: str
    job_id: int
    position: int
    title: str
    guild_id: int
    channel_id: int
    message_id: int
    job_finished: bool
    delivered_at: datetime


class PrivacyStore:
    def __init__(self, database: Database, *, batch: int = 200) -> None:
        self._database = database
        self._batch = batch

    async def running_requests(self, user_id: int) -> int:
        """The member's unfinished requests, in every server (read through the small unfinished-jobs index)."""
        row = await self._database.fetch_one(
            f"SELECT count(*) FROM jobs WHERE status IN {ACTIVE_IN} AND requester_id = :user",
            {**ACTIVE, "user": user_id},
        )
        return int(row[0]) if row else 0

    async def forget_member(
        self, user_id: int, *, now: datetime, today: datetime, cooldown_since: datetime
    ) -> ForgetReport:
        """Deletes the member's votes cast until `now` and erases the words of their finished requests and their
        name on them, in every server, batch by batch. What keeps their limits is kept: the per-member counter of
        `today` (earlier days' go), and, in each server, the time of their last request since `cooldown_since`
        (forgotten_requests), which their cooldown counts from. Refused while any of their requests is unfinished:
        its refund, a trigger, is counted back to its requester. A vote or request arriving meanwhile is either
        deleted with the rest or kept whole, never half counted."""
        running = await self.running_requests(user_id)
        if running:
            return ForgetReport(running=running)
        votes = 0
        while batch := await self._database.fetch_all(
            """SELECT clip_id, user_id FROM votes WHERE user_id = ? AND voted_at <= ? ORDER BY clip_id LIMIT ?""",
            (user_id, to_db_time(now), self._batch),
        ):
            # A vote of the batch switched after `now` meanwhile is kept (cast after the request) and not read again.
            votes += await delete_votes(self._database, [(row[0], row[1]) for row in batch], cast_until=now)
        # Read once, on a reader: the member's requests have no index of their own (it would slow every
        # reservation for an operation this rare).
        jobs = await self._database.fetch_all(
            f"SELECT id FROM jobs WHERE requester_id = :user AND status IN {FINISHED_IN} ORDER BY id",
            {**FINISHED, "user": user_id},
        )
        requests = 0
        for start in range(0, len(jobs), self._batch):
            ids = [row["id"] for row in jobs[start : start + self._batch]]
            marks, listed = named("job", ids)
            async with self._database.transaction() as transaction:
                await transaction.execute(
                    f"""INSERT INTO forgotten_requests (guild_id, user_id, requested_at)
                        SELECT guild_id, requester_id, max(created_at) FROM jobs
                        WHERE id IN ({marks}) AND requester_id = :user AND charged = 1 AND created_at >= :since
                        GROUP BY guild_id, requester_id
                        ON CONFLICT (guild_id, user_id) DO UPDATE SET requested_at = {self._latest}""",
                    {**listed, "user": user_id, "since": to_db_time(cooldown_since)},
                )
                requests += await erase_jobs(transaction, ids, now=now, forget_requester=True)
        async with self._database.transaction() as transaction:
            # The day's count stays until the day ends; older days' counters only say what they did.
            await transaction.execute(
                "DELETE FROM quota_counters WHERE scope = ? AND period < ?",
                (f"member:{user_id}", to_db_time(today)[:10]),
            )
            await transaction.execute(
                f"UPDATE jobs SET cancel_requested_by = :nobody WHERE cancel_requested_by = :user "
                f"AND status IN {FINISHED_IN}",
                {**FINISHED, "user": user_id, "nobody": FORGOTTEN_MEMBER},
            )
            await transaction.execute(  # their contest entries stay in the contests, no longer naming them
                "UPDATE contest_entries SET user_id = ? WHERE user_id = ?", (FORGOTTEN_MEMBER, user_id)
            )
        return ForgetReport(votes=votes, requests=requests)

    @property
    def _latest(self) -> str:
        return self._database.dialect.greatest("forgotten_requests.requested_at", "excluded.requested_at")

    async def song(self, guild_id: int, message_id: int) -> SongRecord | None:
        """The song posted as this message in this server, if it is one of the bot's."""
        row = await self._database.fetch_one(
            """SELECT clips.id, clips.job_id, clips.position, clips.title, clips.message_id, clips.delivered_at,
                      jobs.guild_id, jobs.channel_id, jobs.status, jobs.prompt, jobs.mode
               FROM clips JOIN jobs ON jobs.id = clips.job_id
               WHERE clips.message_id = ? AND jobs.guild_id = ?""",
            (message_id, guild_id),
        )
        if row is None:
            return None
        return SongRecord(
            clip_id=row["id"],
            job_id=row["job_id"],
            position=row["position"],
            title=row_title(row),
            guild_id=row["guild_id"],
            channel_id=row["channel_id"],
            message_id=row["message_id"],
            job_finished=row["status"] in FINISHED.values(),
            delivered_at=from_db_time(row["delivered_at"]),
        )

    async def delete_song(self, clip_id: str, *, actor_id: int, now: datetime) -> int | None:
        """Deletes a finished job's song: its votes (the triggers take them out of the tallies), its tallies and
        its clip row; the job stays for quota history; the moderator's deletion is a moderation_log row. The
        votes deleted, or None when it was already gone."""
        async with self._database.transaction(locks=[vote_lock(clip_id)]) as transaction:
            row = await transaction.fetch_one(
                f"""SELECT jobs.guild_id FROM clips JOIN jobs ON jobs.id = clips.job_id
                    WHERE clips.id = :clip AND jobs.status IN {FINISHED_IN}""",
                {**FINISHED, "clip": clip_id},
            )
            if row is None:
                return None
            votes = await transaction.execute("DELETE FROM votes WHERE clip_id = ?", (clip_id,))
            for table in ("vote_days", "vote_hours"):
                await transaction.execute(
                    f"DELETE FROM {table} WHERE guild_id = ? AND clip_id = ?", (row["guild_id"], clip_id)
                )
            await transaction.execute("DELETE FROM vote_tallies WHERE clip_id = ?", (clip_id,))
            for table in ("contest_results", "hall_of_fame_posts"):  # a deleted song leaves past results too
                await transaction.execute(f"DELETE FROM {table} WHERE clip_id = ?", (clip_id,))
            await transaction.execute("DELETE FROM clips WHERE id = ?", (clip_id,))
            await log_moderation(transaction, row["guild_id"], actor_id, "delete_song", clip_id, None, None, now)
            return votes

    async def guild_left(self, guild_id: int, at: datetime) -> None:
        """Remembers when the bot left a server (the first time, if several sessions report it)."""
        await self._database.execute(
            "INSERT INTO departed_guilds (guild_id, left_at) VALUES (?, ?) ON CONFLICT (guild_id) DO NOTHING",
            (guild_id, to_db_time(at)),
        )

    async def guild_joined(self, guild_id: int) -> bool:
        """Forgets a departure: the server took the bot back, and keeps what was not erased yet."""
        return await self._database.execute("DELETE FROM departed_guilds WHERE guild_id = ?", (guild_id,)) > 0
