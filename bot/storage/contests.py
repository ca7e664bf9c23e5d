"""Contest SQL: one running contest per server, entries capped under the server's contest lock, the ending
claimed once, the results frozen and recorded as posted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.storage.database import Database, Lock, LockSpace, Row, Transaction, from_db_time, to_db_time
from bot.storage.votes import row_title


class ContestStatus(StrEnum):
    RUNNING = "running"
    ENDED = "ended"
    CANCELLED = "cancelled"


class ResultsClaim(StrEnum):
    """How a process came to post a contest's results: it ended the contest, or took over a claim that ran out
    (whose posts may then be in the channel already)."""

    ENDED = "ended"
    RETAKEN = "retaken"


@dataclass(frozen=True, slots=True)
class Contest:
    id: int
    guild_id: int
    channel_id: int
    theme: str
    started_by: int
    starts_at: datetime
    ends_at: datetime
    max_entries_per_member: int | None
    exclude_new_members: bool
    status: ContestStatus
    announcement_id: int | None
    results_message_id: int | None


@dataclass(frozen=True, slots=True)
class RankedSong:
    """One entered song with its score from the votes that count (cast in the window, by members allowed)."""

    job_id: int
    position: int
    clip_id: str
    title: str
    channel_id: int
    message_id: int
    requester_id: int
    up: int
    down: int

    @property
    def score(self) -> int:
        return self.up - self.down


_CONTEST_COLUMNS = """id, guild_id, channel_id, theme, started_by, starts_at, ends_at, max_entries_per_member,
    exclude_new_members, status, announcement_id, results_message_id"""

# The entered songs, scored from the votes cast in [:starts, :ends) (and, when the contest says so, only by
# members who had joined by :starts; a vote whose voter's join time is unknown counts). Ties: the earlier song.
_SCORED = """
    SELECT clips.job_id, clips.position, clips.id AS clip_id, clips.title, jobs.prompt, jobs.mode, jobs.channel_id,
           clips.message_id, jobs.requester_id,
           coalesce(sum(CASE WHEN votes.value = 1 THEN 1 ELSE 0 END), 0) AS up,
           coalesce(sum(CASE WHEN votes.value = -1 THEN 1 ELSE 0 END), 0) AS down
    FROM contest_entries
    JOIN jobs ON jobs.id = contest_entries.job_id
    JOIN clips ON clips.job_id = contest_entries.job_id
    LEFT JOIN votes ON votes.clip_id = clips.id AND votes.voted_at >= :starts AND votes.voted_at < :ends
         AND (:exclude = 0 OR votes.voter_joined_at IS NULL OR votes.voter_joined_at <= :starts)
    WHERE contest_entries.contest_id = :contest AND clips.message_id IS NOT NULL
    GROUP BY clips.job_id, clips.position, clips.id, clips.title, jobs.prompt, jobs.mode, jobs.channel_id,
             clips.message_id, jobs.requester_id, clips.delivered_at
    ORDER BY coalesce(sum(votes.value), 0) DESC, clips.delivered_at ASC, clips.job_id ASC, clips.position ASC
    LIMIT :limit"""

_RESULTS = """
    SELECT clips.job_id, clips.position, clips.id AS clip_id, clips.title, jobs.prompt, jobs.mode, jobs.channel_id,
           clips.message_id, jobs.requester_id, contest_results.up, contest_results.down
    FROM contest_results JOIN clips ON clips.id = contest_results.clip_id JOIN jobs ON jobs.id = clips.job_id
    WHERE contest_results.contest_id = ? AND clips.message_id IS NOT NULL
    ORDER BY contest_results.place"""


def contest_lock(contest_id: int) -> Lock:
    """Entries into a contest and its ending are decided one at a time, also across processes."""
    return Lock(LockSpace.CONTEST, contest_id)


def _contest(row: Row) -> Contest:
    return Contest(
        id=int(row["id"]),
        guild_id=int(row["guild_id"]),
        channel_id=int(row["channel_id"]),
        theme=row["theme"],
        started_by=int(row["started_by"]),
        starts_at=from_db_time(row["starts_at"]),
        ends_at=from_db_time(row["ends_at"]),
        max_entries_per_member=row["max_entries_per_member"],
        exclude_new_members=bool(row["exclude_new_members"]),
        status=ContestStatus(row["status"]),
        announcement_id=row["announcement_id"],
        results_message_id=row["results_message_id"],
    )


def _ranked(row: Row) -> RankedSong:
    return RankedSong(
        job_id=int(row["job_id"]),
        position=int(row["position"]),
        clip_id=row["clip_id"],
        title=row_title(row),
        channel_id=int(row["channel_id"]),
        message_id=int(row["message_id"]),
        requester_id=int(row["requester_id"]),
        up=int(row["up"]),
        down=int(row["down"]),
    )


class ContestStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def start(
        self,
        *,
        guild_id: int,
        channel_id: int,
        theme: str,
        started_by: int,
        starts_at: datetime,
        ends_at: datetime,
        max_entries_per_member: int | None,
        exclude_new_members: bool,
    ) -> Contest | None:
        """The new contest, or None when the server has one running: the partial unique index decides, so two
        moderators starting one at the same moment (in any processes) get exactly one."""
        rows = await self._database.write_returning(
            f"""INSERT INTO contests (guild_id, channel_id, theme, started_by, starts_at, ends_at,
                                      max_entries_per_member, exclude_new_members, status)
                VALUES (:guild, :channel, :theme, :by, :starts, :ends, :cap, :exclude, 'running')
                ON CONFLICT (guild_id) WHERE status = 'running' DO NOTHING
                RETURNING {_CONTEST_COLUMNS}""",
            {
                "guild": guild_id,
                "channel": channel_id,
                "theme": theme,
                "by": started_by,
                "starts": to_db_time(starts_at),
                "ends": to_db_time(ends_at),
                "cap": max_entries_per_member,
                "exclude": int(exclude_new_members),
            },
        )
        return _contest(rows[0]) if rows else None

    async def running(self, guild_id: int) -> Contest | None:
        row = await self._database.fetch_one(
            f"SELECT {_CONTEST_COLUMNS} FROM contests WHERE guild_id = ? AND status = 'running'", (guild_id,)
        )
        return _contest(row) if row else None

    async def get(self, contest_id: int) -> Contest:
        row = await self._database.fetch_one(f"SELECT {_CONTEST_COLUMNS} FROM contests WHERE id = ?", (contest_id,))
        assert row is not None
        return _contest(row)

    async def set_announcement(self, contest_id: int, message_id: int) -> None:
        await self._database.execute(
            "UPDATE contests SET announcement_id = ? WHERE id = ? AND announcement_id IS NULL", (message_id, contest_id)
        )

    async def entries_of(self, contest_id: int, user_id: int) -> int:
        row = await self._database.fetch_one(_ENTRIES_OF, (contest_id, user_id))
        return int(row[0]) if row else 0

    async def enter(self, contest_id: int, job_id: int, user_id: int, *, now: datetime) -> bool:
        """Marks the job as entering the contest, if it still runs and the member is under its cap: decided
        under the server's contest lock (SQLite: its one writer), so simultaneous entries never pass the cap."""
        async with self._database.transaction(locks=[contest_lock(contest_id)]) as transaction:
            row = await transaction.fetch_one(
                f"SELECT {_CONTEST_COLUMNS} FROM contests WHERE id = ? AND status = 'running' AND ends_at > ?",
                (contest_id, to_db_time(now)),
            )
            if row is None:
                return False
            contest = _contest(row)
            if contest.max_entries_per_member is not None:
                entered = await transaction.fetch_one(_ENTRIES_OF, (contest_id, user_id))
                if entered is not None and int(entered[0]) >= contest.max_entries_per_member:
                    return False
            await transaction.execute(
                """INSERT INTO contest_entries (job_id, contest_id, guild_id, user_id, entered_at)
                   VALUES (?, ?, ?, ?, ?)""",
                (job_id, contest_id, contest.guild_id, user_id, to_db_time(now)),
            )
            return True

    async def end_now(self, guild_id: int, now: datetime) -> Contest | None:
        """Brings the running contest's end to now (the end loop then posts it, once); None if none runs."""
        rows = await self._database.write_returning(
            f"""UPDATE contests SET ends_at = :now WHERE guild_id = :guild AND status = 'running' AND ends_at > :now
                RETURNING {_CONTEST_COLUMNS}""",
            {"guild": guild_id, "now": to_db_time(now)},
        )
        return _contest(rows[0]) if rows else await self.running(guild_id)

    async def cancel(self, guild_id: int) -> Contest | None:
        rows = await self._database.write_returning(
            f"""UPDATE contests SET status = 'cancelled' WHERE guild_id = ? AND status = 'running'
                RETURNING {_CONTEST_COLUMNS}""",
            (guild_id,),
        )
        return _contest(rows[0]) if rows else None

    async def due(self, now: datetime) -> list[int]:
        """Contests whose end has come, and ended ones whose results' claim ran out before they were posted."""
        rows = await self._database.fetch_all(
            """SELECT id FROM contests WHERE status = 'running' AND ends_at <= :now
               UNION SELECT id FROM contests
               WHERE status = 'ended' AND results_posted_at IS NULL AND results_claim_until < :now""",
            {"now": to_db_time(now)},
        )
        return sorted(int(row["id"]) for row in rows)

    async def claim_results(
        self, contest_id: int, owner: str, *, now: datetime, until: datetime, top: int
    ) -> ResultsClaim | None:
        """Ends a contest whose time came, freezing its ranking, or takes over the posting of one whose claim ran
        out: one conditional UPDATE each, so exactly one process posts a contest's results at a time."""
        parameters = {"id": contest_id, "owner": owner, "now": to_db_time(now), "until": to_db_time(until)}
        async with self._database.transaction(locks=[contest_lock(contest_id)]) as transaction:
            ended = await transaction.execute(
                """UPDATE contests SET status = 'ended', results_claimed_by = :owner, results_claim_until = :until
                   WHERE id = :id AND status = 'running' AND ends_at <= :now""",
                parameters,
            )
            if ended:
                await self._freeze_results(transaction, contest_id, top)
                return ResultsClaim.ENDED
            retaken = await transaction.execute(
                """UPDATE contests SET results_claimed_by = :owner, results_claim_until = :until
                   WHERE id = :id AND status = 'ended' AND results_posted_at IS NULL AND results_claim_until < :now""",
                parameters,
            )
            return ResultsClaim.RETAKEN if retaken else None

    async def _freeze_results(self, transaction: Transaction, contest_id: int, top: int) -> None:
        row = await transaction.fetch_one(f"SELECT {_CONTEST_COLUMNS} FROM contests WHERE id = ?", (contest_id,))
        assert row is not None
        contest = _contest(row)
        ranked = await transaction.fetch_all(_SCORED, _window(contest, contest.ends_at, top))
        await transaction.execute_many(
            """INSERT INTO contest_results (contest_id, place, guild_id, clip_id, up, down)
               VALUES (?, ?, ?, ?, ?, ?)""",
            [
                (contest_id, place, contest.guild_id, song["clip_id"], song["up"], song["down"])
                for place, song in enumerate(ranked, start=1)
            ],
        )

    async def results(self, contest_id: int) -> list[RankedSong]:
        return [_ranked(row) for row in await self._database.fetch_all(_RESULTS, (contest_id,))]

    async def mark_posted(self, contest_id: int, owner: str, message_id: int, now: datetime) -> bool:
        return bool(
            await self._database.execute(
                """UPDATE contests SET results_message_id = ?, results_posted_at = ?
                   WHERE id = ? AND results_claimed_by = ? AND results_posted_at IS NULL""",
                (message_id, to_db_time(now), contest_id, owner),
            )
        )

    async def standings(self, contest: Contest, now: datetime, top: int) -> list[RankedSong]:
        """The ranking as it stands (votes up to now)."""
        rows = await self._database.fetch_all(_SCORED, _window(contest, now, top))
        return [_ranked(row) for row in rows]

    async def member_songs(self, contest: Contest, user_id: int, now: datetime) -> list[RankedSong]:
        songs = await self.standings(contest, now, 1_000)
        return [song for song in songs if song.requester_id == user_id]

    async def claim_standings_edit(self, contest_id: int, *, now: datetime, not_since: datetime) -> bool:
        """At most one edit of the announcement's standings per interval, whichever process asks."""
        return bool(
            await self._database.execute(
                """UPDATE contests SET standings_edited_at = :now
                   WHERE id = :id AND status = 'running' AND announcement_id IS NOT NULL
                     AND (standings_edited_at IS NULL OR standings_edited_at <= :not_since)""",
                {"id": contest_id, "now": to_db_time(now), "not_since": to_db_time(not_since)},
            )
        )

    async def running_everywhere(self) -> list[Contest]:
        rows = await self._database.fetch_all(f"SELECT {_CONTEST_COLUMNS} FROM contests WHERE status = 'running'")
        return [_contest(row) for row in rows]

    async def past(self, guild_id: int, limit: int, offset: int) -> list[Contest]:
        rows = await self._database.fetch_all(
            f"""SELECT {_CONTEST_COLUMNS} FROM contests WHERE guild_id = ? AND status = 'ended'
                ORDER BY ends_at DESC, id DESC LIMIT ? OFFSET ?""",
            (guild_id, limit, offset),
        )
        return [_contest(row) for row in rows]


# A member's entries that count: their generation still holds its quota (a refunded one frees its place).
_ENTRIES_OF = """SELECT count(*) FROM contest_entries JOIN jobs ON jobs.id = contest_entries.job_id
                 WHERE contest_entries.contest_id = ? AND contest_entries.user_id = ? AND jobs.charged = 1"""


def _window(contest: Contest, until: datetime, top: int) -> dict[str, object]:
    return {
        "contest": contest.id,
        "starts": to_db_time(contest.starts_at),
        "ends": to_db_time(min(until, contest.ends_at)),
        "exclude": int(contest.exclude_new_members),
        "limit": top,
    }
