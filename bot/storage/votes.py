"""Vote SQL: one row per (clip, member), toggled atomically; rankings read from tallies kept by triggers."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.models import PostedClip, VoteAction, VoteChoice, VoteTally
from bot.storage.database import Database, Dialect, Lock, LockSpace, Row, from_db_time, to_db_time

_POSTED_CLIP_COLUMNS = """
    clips.job_id, clips.position, clips.id AS clip_id, clips.title, clips.lyrics, jobs.guild_id,
    jobs.channel_id, clips.message_id, jobs.requester_id, clips.delivered_at, jobs.prompt, jobs.mode
"""

# Ties go to the earlier clip.
_RANKING = "score DESC, clips.delivered_at ASC, clips.job_id ASC, clips.position ASC"

# Every vote: the kept all-time tallies, walked down the score index.
_TOP_ALL_TIME = f"""
    SELECT {_POSTED_CLIP_COLUMNS}, vote_tallies.up, vote_tallies.down, vote_tallies.up - vote_tallies.down AS score
    FROM vote_tallies JOIN clips ON clips.id = vote_tallies.clip_id JOIN jobs ON jobs.id = clips.job_id
    WHERE vote_tallies.guild_id = :guild AND clips.message_id IS NOT NULL
      AND vote_tallies.up + vote_tallies.down > 0
    ORDER BY {_RANKING}
    LIMIT :limit"""


def _top_since(d: Dialect) -> str:
    """Votes cast since :since, exactly: the whole UTC days from :first_day on, the whole hours from
    :first_hour up to that day, and the raw votes from :since to the start of :first_hour (under an hour's)."""
    return f"""
    WITH counted (clip_id, up, down) AS (
        SELECT clip_id, up, down FROM vote_days WHERE guild_id = :guild AND day >= :first_day
        UNION ALL
        SELECT clip_id, up, down FROM vote_hours
        WHERE guild_id = :guild AND hour >= :first_hour AND hour < :first_day
        UNION ALL
        SELECT votes.clip_id, CASE WHEN votes.value = 1 THEN 1 ELSE 0 END, CASE WHEN votes.value = -1 THEN 1 ELSE 0 END
        FROM votes {d.indexed_by("votes_by_time")} JOIN vote_tallies ON vote_tallies.clip_id = votes.clip_id
        WHERE votes.voted_at >= :since AND votes.voted_at < :first_hour_starts AND vote_tallies.guild_id = :guild
    ), totals AS (
        SELECT clip_id, sum(up) AS up, sum(down) AS down FROM counted
        GROUP BY clip_id HAVING sum(up) + sum(down) > 0
    )
    SELECT {_POSTED_CLIP_COLUMNS}, totals.up, totals.down, totals.up - totals.down AS score
    FROM totals JOIN clips ON clips.id = totals.clip_id JOIN jobs ON jobs.id = clips.job_id
    WHERE clips.message_id IS NOT NULL
    ORDER BY {_RANKING}
    LIMIT :limit"""


@dataclass(frozen=True, slots=True)
class ButtonClip:
    """The clip under a message's buttons: what Vote and Lyrics need, known from the moment its posting
    began, so a click that arrives before the bot has recorded its own message still counts."""

    job_id: int
    position: int
    clip_id: str
    title: str
    lyrics: str
    requester_id: int
    message_id: int | None
    tally: VoteTally
    erased: bool = False  # its words were erased (forget-me, DATA_RETENTION_DAYS)


def vote_lock(clip_id: str) -> Lock:
    """Clicks on one clip are decided one at a time, also from several processes; so is erasing its votes."""
    return Lock(LockSpace.VOTE, zlib.crc32(clip_id.encode()))


def row_title(row: Row) -> str:
    """A clip's title; untitled ones go by their description prompt."""
    return row["title"] or (row["prompt"] if row["mode"] == "description" else "") or "Untitled"


def _posted_clip(row: Row) -> PostedClip:
    return PostedClip(
        job_id=row["job_id"],
        position=row["position"],
        clip_id=row["clip_id"],
        title=row_title(row),
        lyrics=row["lyrics"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        requester_id=row["requester_id"],
        delivered_at=from_db_time(row["delivered_at"]),
        tally=VoteTally(row["up"], row["down"]),
    )


def _next_boundary(moment: datetime, step: timedelta) -> datetime:
    """`moment` itself if it starts a UTC hour (or day), else the start of the next one."""
    moment = moment.astimezone(UTC)
    start = moment.replace(minute=0, second=0, microsecond=0)
    if step == timedelta(days=1):
        start = start.replace(hour=0)
    return start if start == moment else start + step


class VoteStore:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._top_since = _top_since(database.dialect)

    async def button_clip(self, job_id: int, position: int) -> ButtonClip | None:
        """The clip at (job, position) once its posting began (its message may not be recorded yet)."""
        row = await self._database.fetch_one(
            """SELECT clips.job_id, clips.position, clips.id AS clip_id, clips.title, clips.lyrics, clips.message_id,
                      jobs.requester_id, jobs.prompt, jobs.mode, jobs.erased_at,
                      coalesce(vote_tallies.up, 0) AS up, coalesce(vote_tallies.down, 0) AS down
               FROM clips JOIN jobs ON jobs.id = clips.job_id
               LEFT JOIN vote_tallies ON vote_tallies.clip_id = clips.id
               WHERE clips.job_id = ? AND clips.position = ?
                 AND (clips.message_id IS NOT NULL OR clips.posting_started_at IS NOT NULL)""",
            (job_id, position),
        )
        if row is None:
            return None
        return ButtonClip(
            job_id=row["job_id"],
            position=row["position"],
            clip_id=row["clip_id"],
            title=row_title(row),
            lyrics=row["lyrics"],
            requester_id=row["requester_id"],
            message_id=row["message_id"],
            tally=VoteTally(row["up"], row["down"]),
            erased=row["erased_at"] is not None,
        )

    async def toggle(
        self, clip_id: str, user_id: int, choice: VoteChoice, now: datetime, joined_at: datetime | None = None
    ) -> tuple[VoteAction, VoteTally]:
        """Adds, removes (same choice again) or switches the member's vote, and returns the fresh tally."""
        value = choice.value_in_db
        async with self._database.transaction(locks=[vote_lock(clip_id)]) as connection:
            rows = await connection.fetch_all(
                "SELECT value FROM votes WHERE clip_id = ? AND user_id = ?", (clip_id, user_id)
            )
            if rows and rows[0][0] == value:
                await connection.execute("DELETE FROM votes WHERE clip_id = ? AND user_id = ?", (clip_id, user_id))
                action = VoteAction.REMOVED
            else:
                await connection.execute(
                    """INSERT INTO votes (clip_id, user_id, value, voted_at, voter_joined_at) VALUES (?, ?, ?, ?, ?)
                       ON CONFLICT (clip_id, user_id) DO UPDATE SET value = excluded.value,
                                                                   voted_at = excluded.voted_at,
                                                                   voter_joined_at = excluded.voter_joined_at""",
                    (clip_id, user_id, value, to_db_time(now), to_db_time(joined_at) if joined_at else None),
                )
                action = VoteAction.SWITCHED if rows else VoteAction.ADDED
            tally_rows = await connection.fetch_all("SELECT up, down FROM vote_tallies WHERE clip_id = ?", (clip_id,))
        return action, VoteTally(*tally_rows[0]) if tally_rows else VoteTally()

    async def top(self, guild_id: int, since: datetime | None, limit: int) -> list[PostedClip]:
        """The guild's delivered clips ranked by up - down among votes cast since `since` (every vote if None);
        ties go to the earlier clip."""
        if since is None:
            rows = await self._database.fetch_all(_TOP_ALL_TIME, {"guild": guild_id, "limit": limit})
        else:
            first_hour = _next_boundary(since, timedelta(hours=1))
            first_day = _next_boundary(since, timedelta(days=1))
            rows = await self._database.fetch_all(
                self._top_since,
                {
                    "guild": guild_id,
                    "since": to_db_time(since),
                    "first_hour_starts": to_db_time(first_hour),
                    "first_hour": to_db_time(first_hour)[:13],
                    "first_day": to_db_time(first_day)[:10],
                    "limit": limit,
                },
            )
        return [_posted_clip(row) for row in rows]

    async def history(self, guild_id: int, requester_id: int, limit: int) -> list[PostedClip]:
        """The member's most recent delivered clips in the guild, newest first, with their all-time votes."""
        rows = await self._database.fetch_all(
            f"""SELECT {_POSTED_CLIP_COLUMNS},
                       coalesce(vote_tallies.up, 0) AS up, coalesce(vote_tallies.down, 0) AS down
                FROM clips JOIN jobs ON jobs.id = clips.job_id
                LEFT JOIN vote_tallies ON vote_tallies.clip_id = clips.id
                WHERE clips.message_id IS NOT NULL AND jobs.guild_id = ? AND jobs.requester_id = ?
                ORDER BY clips.delivered_at DESC, clips.job_id DESC, clips.position DESC
                LIMIT ?""",
            (guild_id, requester_id, limit),
        )
        return [_posted_clip(row) for row in rows]
