"""Hall-of-fame SQL: a server's channel and score, and each song's forward claimed once before it is posted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.storage.database import Database, Row, from_db_time, to_db_time


@dataclass(frozen=True, slots=True)
class HallOfFame:
    guild_id: int
    channel_id: int
    threshold: int
    updated_by: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class FameCandidate:
    """A song whose forward this process has claimed: where it is and who asked for it."""

    clip_id: str
    job_id: int
    position: int
    guild_id: int
    source_channel_id: int
    message_id: int
    requester_id: int
    channel_id: int  # the hall of fame's
    score: int
    retaken: bool = False  # claimed after another claim ran out: its posts may be in the channel already


_CANDIDATE = """
    SELECT clips.id AS clip_id, clips.job_id, clips.position, jobs.guild_id, jobs.channel_id AS source_channel_id,
           clips.message_id, jobs.requester_id, hall_of_fame_posts.channel_id,
           coalesce(vote_tallies.up, 0) - coalesce(vote_tallies.down, 0) AS score
    FROM hall_of_fame_posts JOIN clips ON clips.id = hall_of_fame_posts.clip_id JOIN jobs ON jobs.id = clips.job_id
    LEFT JOIN vote_tallies ON vote_tallies.clip_id = clips.id
    WHERE hall_of_fame_posts.clip_id = ? AND clips.message_id IS NOT NULL"""


def _candidate(row: Row, *, retaken: bool) -> FameCandidate:
    return FameCandidate(
        clip_id=row["clip_id"],
        job_id=int(row["job_id"]),
        position=int(row["position"]),
        guild_id=int(row["guild_id"]),
        source_channel_id=int(row["source_channel_id"]),
        message_id=int(row["message_id"]),
        requester_id=int(row["requester_id"]),
        channel_id=int(row["channel_id"]),
        score=int(row["score"]),
        retaken=retaken,
    )


class HallOfFameStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def configure(self, guild_id: int, channel_id: int, threshold: int, *, actor_id: int, now: datetime) -> None:
        await self._database.execute(
            """INSERT INTO hall_of_fame (guild_id, channel_id, threshold, updated_by, updated_at)
               VALUES (:guild, :channel, :threshold, :actor, :now)
               ON CONFLICT (guild_id) DO UPDATE SET channel_id = excluded.channel_id, threshold = excluded.threshold,
                   updated_by = excluded.updated_by, updated_at = excluded.updated_at""",
            {
                "guild": guild_id,
                "channel": channel_id,
                "threshold": threshold,
                "actor": actor_id,
                "now": to_db_time(now),
            },
        )

    async def turn_off(self, guild_id: int) -> bool:
        return bool(await self._database.execute("DELETE FROM hall_of_fame WHERE guild_id = ?", (guild_id,)))

    async def settings(self, guild_id: int) -> HallOfFame | None:
        row = await self._database.fetch_one(
            "SELECT guild_id, channel_id, threshold, updated_by, updated_at FROM hall_of_fame WHERE guild_id = ?",
            (guild_id,),
        )
        if row is None:
            return None
        return HallOfFame(
            int(row["guild_id"]),
            int(row["channel_id"]),
            int(row["threshold"]),
            int(row["updated_by"]),
            from_db_time(row["updated_at"]),
        )

    async def claim(
        self, clip_id: str, guild_id: int, channel_id: int, owner: str, *, now: datetime, until: datetime
    ) -> FameCandidate | None:
        """Claims the song's forward: a new row (the primary key lets one insert win), or the row of a claim that
        ran out before its forward was recorded. None when another process holds it or it is posted already."""
        parameters = {
            "clip": clip_id,
            "guild": guild_id,
            "channel": channel_id,
            "owner": owner,
            "now": to_db_time(now),
            "until": to_db_time(until),
        }
        inserted = await self._database.execute(
            """INSERT INTO hall_of_fame_posts (clip_id, guild_id, channel_id, claimed_by, claim_until)
               VALUES (:clip, :guild, :channel, :owner, :until) ON CONFLICT (clip_id) DO NOTHING""",
            parameters,
        )
        if not inserted and not await self.reclaim(clip_id, owner, now=now, until=until):
            return None
        row = await self._database.fetch_one(_CANDIDATE, (clip_id,))
        return _candidate(row, retaken=not inserted) if row else None

    async def reclaim(self, clip_id: str, owner: str, *, now: datetime, until: datetime) -> bool:
        return bool(
            await self._database.execute(
                """UPDATE hall_of_fame_posts SET claimed_by = :owner, claim_until = :until
                   WHERE clip_id = :clip AND posted_at IS NULL AND claim_until < :now""",
                {"clip": clip_id, "owner": owner, "now": to_db_time(now), "until": to_db_time(until)},
            )
        )

    async def stale_claims(self, now: datetime) -> list[tuple[str, int, int]]:
        """Forwards claimed by a process that stopped before recording them: (clip, guild, channel)."""
        rows = await self._database.fetch_all(
            "SELECT clip_id, guild_id, channel_id FROM hall_of_fame_posts WHERE posted_at IS NULL AND claim_until < ?",
            (to_db_time(now),),
        )
        return [(row["clip_id"], int(row["guild_id"]), int(row["channel_id"])) for row in rows]

    async def mark_posted(self, clip_id: str, owner: str, message_id: int, now: datetime) -> bool:
        return bool(
            await self._database.execute(
                """UPDATE hall_of_fame_posts SET forward_message_id = ?, posted_at = ?
                   WHERE clip_id = ? AND claimed_by = ? AND posted_at IS NULL""",
                (message_id, to_db_time(now), clip_id, owner),
            )
        )
