"""Vote SQL: one row per (clip, member), toggled atomically; tallies and rankings computed in SQL."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from bot.models import PostedClip, VoteAction, VoteChoice, VoteTally
from bot.storage.database import Database, from_db_time, to_db_time

_POSTED_CLIP_COLUMNS = """
    clips.job_id, clips.position, clips.id AS clip_id, clips.title, clips.lyrics, jobs.guild_id,
    jobs.channel_id, clips.message_id, jobs.requester_id, clips.delivered_at, jobs.prompt, jobs.mode
"""


# Delivered clips with their all-time tallies; callers add WHERE conditions on clips and jobs.
_TALLIED_POSTED_CLIPS = f"""
    SELECT {_POSTED_CLIP_COLUMNS},
           coalesce(sum(votes.value = 1), 0) AS up, coalesce(sum(votes.value = -1), 0) AS down
    FROM clips JOIN jobs ON jobs.id = clips.job_id
    LEFT JOIN votes ON votes.clip_id = clips.id
    WHERE clips.message_id IS NOT NULL"""


def _posted_clip(row: sqlite3.Row, tally: VoteTally) -> PostedClip:
    title = row["title"] or (row["prompt"] if row["mode"] == "description" else "") or "Untitled"
    return PostedClip(
        job_id=row["job_id"],
        position=row["position"],
        clip_id=row["clip_id"],
        title=title,
        lyrics=row["lyrics"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        requester_id=row["requester_id"],
        delivered_at=from_db_time(row["delivered_at"]),
        tally=tally,
    )


class VoteStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def posted_clip(self, job_id: int, position: int) -> PostedClip | None:
        row = await self._database.fetch_one(
            f"{_TALLIED_POSTED_CLIPS} AND clips.job_id = ? AND clips.position = ? GROUP BY clips.id",
            (job_id, position),
        )
        return _posted_clip(row, VoteTally(row["up"], row["down"])) if row else None

    async def toggle(
        self, clip_id: str, user_id: int, choice: VoteChoice, now: datetime
    ) -> tuple[VoteAction, VoteTally]:
        """Adds, removes (same choice again) or switches the member's vote, and returns the fresh tally."""
        value = choice.value_in_db
        async with self._database.transaction() as connection:
            rows = list(
                await connection.execute_fetchall(
                    "SELECT value FROM votes WHERE clip_id = ? AND user_id = ?", (clip_id, user_id)
                )
            )
            if rows and rows[0][0] == value:
                await connection.execute("DELETE FROM votes WHERE clip_id = ? AND user_id = ?", (clip_id, user_id))
                action = VoteAction.REMOVED
            else:
                await connection.execute(
                    """INSERT INTO votes (clip_id, user_id, value, voted_at) VALUES (?, ?, ?, ?)
                       ON CONFLICT (clip_id, user_id) DO UPDATE SET value = excluded.value,
                                                                   voted_at = excluded.voted_at""",
                    (clip_id, user_id, value, to_db_time(now)),
                )
                action = VoteAction.SWITCHED if rows else VoteAction.ADDED
            tally_rows = list(
                await connection.execute_fetchall(
                    """SELECT coalesce(sum(value = 1), 0), coalesce(sum(value = -1), 0)
                       FROM votes WHERE clip_id = ?""",
                    (clip_id,),
                )
            )
        return action, VoteTally(int(tally_rows[0][0]), int(tally_rows[0][1]))

    async def top(self, guild_id: int, since: datetime | None, limit: int) -> list[PostedClip]:
        """The guild's clips ranked by up - down among votes cast since `since`; ties go to the earlier clip."""
        rows = await self._database.fetch_all(
            f"""SELECT {_POSTED_CLIP_COLUMNS},
                       sum(votes.value = 1) AS up, sum(votes.value = -1) AS down, sum(votes.value) AS score
                FROM votes JOIN clips ON clips.id = votes.clip_id JOIN jobs ON jobs.id = clips.job_id
                WHERE jobs.guild_id = ? AND clips.message_id IS NOT NULL AND votes.voted_at >= ?
                GROUP BY clips.id
                ORDER BY score DESC, clips.delivered_at ASC, clips.job_id ASC, clips.position ASC
                LIMIT ?""",
            (guild_id, to_db_time(since) if since else "", limit),
        )
        return [_posted_clip(row, VoteTally(row["up"], row["down"])) for row in rows]

    async def history(self, guild_id: int, requester_id: int, limit: int) -> list[PostedClip]:
        """The member's most recent delivered clips in the guild, newest first, with their all-time votes."""
        rows = await self._database.fetch_all(
            f"""{_TALLIED_POSTED_CLIPS} AND jobs.guild_id = ? AND jobs.requester_id = ?
                GROUP BY clips.id
                ORDER BY clips.delivered_at DESC, clips.job_id DESC, clips.position DESC
                LIMIT ?""",
            (guild_id, requester_id, limit),
        )
        return [_posted_clip(row, VoteTally(row["up"], row["down"])) for row in rows]
