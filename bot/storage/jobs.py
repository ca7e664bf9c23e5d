"""Job and clip SQL: a job's progress, its clips as the API reports them, and what was delivered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.errors import ForeignClipError, JobTakenOverError
from bot.models import (
    Clip,
    ClipStatus,
    FailureReason,
    GenerationMode,
    GenerationRequest,
    Job,
    JobStatus,
    Requester,
)
from bot.storage.database import Database, Row, Transaction, from_db_time, to_db_time

_UNFINISHED_VALUES = {f"unfinished_{n}": status.value for n, status in enumerate(JobStatus) if not status.is_finished}
_UNFINISHED_PARAMS = ", ".join(f":{name}" for name in _UNFINISHED_VALUES)
_POSITIONAL_UNFINISHED = ", ".join("?" * len(_UNFINISHED_VALUES))
# As literals, so both engines see the partial index `jobs_unfinished` answers the query.
_LITERAL_UNFINISHED = ", ".join(f"'{status}'" for status in _UNFINISHED_VALUES.values())


def _job_from_row(row: Row) -> Job:
    return Job(
        id=row["id"],
        requester=Requester(row["guild_id"], row["channel_id"], row["requester_id"]),
        request=GenerationRequest(
            mode=GenerationMode(row["mode"]),
            prompt=row["prompt"],
            instrumental=bool(row["instrumental"]),
            model=row["model"],
            title=row["title"],
            tags=row["tags"],
            duration_seconds=row["duration_seconds"],
        ),
        status=JobStatus(row["status"]),
        created_at=from_db_time(row["created_at"]),
        backend=row["backend"],
        charged=bool(row["charged"]),
        response_message_id=row["response_message_id"],
        submitted_at=from_db_time(row["submitted_at"]) if row["submitted_at"] else None,
        finished_at=from_db_time(row["finished_at"]) if row["finished_at"] else None,
        failure_reason=FailureReason(row["failure_reason"]) if row["failure_reason"] else None,
        failure_detail=row["failure_detail"],
        provider_task_id=row["provider_task_id"],
        owner=row["owner"],
        cancel_requested_by=row["cancel_requested_by"],
        queued=bool(row["queued"]),
        erased=row["erased_at"] is not None,
    )


def _clip_from_row(row: Row) -> Clip:
    return Clip(
        id=row["id"],
        status=ClipStatus(row["status"]),
        title=row["title"],
        audio_url=row["audio_url"],
        image_url=row["image_url"],
        lyrics=row["lyrics"],
        tags=row["tags"],
        duration=row["duration"],
        model_name=row["model_name"],
        error_message=row["error_message"],
    )


class JobStore:
    """Reads and moves jobs through their states. Every transition names the job's owner (the process holding
    its lease): one that changes no row means the job was taken over, and raises JobTakenOverError."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, job_id: int) -> Job:
        row = await self._database.fetch_one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            raise KeyError(f"no job {job_id}")
        return _job_from_row(row)

    async def claim(
        self, owner: str, *, now: datetime, until: datetime, stale_before: datetime, running: Sequence[int] = ()
    ) -> list[Job]:
        """Takes, in one statement, every unfinished job whose lease has run out, and those `owner` holds but
        is not `running` (they wait for redelivery), and returns them.

        A job without a lease (reserved a moment ago and not yet taken by its process, or left by a version
        without leases) is taken once it was created before `stale_before`, or at once if it got past reserved.
        """
        held_here = {f"run_{n}": job_id for n, job_id in enumerate(running)}
        not_running = f"id NOT IN ({', '.join(f':{name}' for name in held_here)})" if held_here else "TRUE"
        # On PostgreSQL two processes claiming at once each take rows the other has not locked (never the same
        # job twice, and neither waits); on SQLite the one writer runs the statement alone.
        rows = await self._database.write_returning(
            f"""UPDATE jobs SET owner = :owner, lease_until = :until
                WHERE id IN (
                    SELECT id FROM jobs
                    WHERE status IN ({_UNFINISHED_PARAMS})
                      AND (lease_until < :now
                           OR (lease_until IS NULL AND (status != :reserved OR created_at < :stale))
                           OR (owner = :owner AND {not_running}))
                    ORDER BY id{self._database.dialect.skip_locked})
                RETURNING *""",
            {
                **_UNFINISHED_VALUES,
                **held_here,
                "owner": owner,
                "until": to_db_time(until),
                "now": to_db_time(now),
                "stale": to_db_time(stale_before),
                "reserved": JobStatus.RESERVED.value,
            },
        )
        return sorted((_job_from_row(row) for row in rows), key=lambda job: job.id)

    async def extend_leases(self, owner: str, job_ids: Sequence[int], *, until: datetime) -> set[int]:
        """The heartbeat: the jobs this process is running stay its own until `until`. Returns those of them
        a member asked to cancel (the request may have reached another process)."""
        if not job_ids:
            return set()
        marks = ", ".join("?" * len(job_ids))
        rows = await self._database.write_returning(
            f"""UPDATE jobs SET lease_until = ? WHERE owner = ? AND id IN ({marks})
                RETURNING id, cancel_requested_by""",
            (to_db_time(until), owner, *job_ids),
        )
        return {row["id"] for row in rows if row["cancel_requested_by"] is not None}

    async def recent_durations(self, limit: int = 500) -> list[tuple[str, float]]:
        """How long the most recently posted songs took from submission to posted, newest first, each with its
        profile (backend and model, as the poller names them): the poller's pace starts from them."""
        rows = await self._database.fetch_all(
            """SELECT jobs.backend, jobs.model, jobs.submitted_at, clips.delivered_at
               FROM clips JOIN jobs ON jobs.id = clips.job_id
               WHERE clips.delivered_at IS NOT NULL AND jobs.submitted_at IS NOT NULL
               ORDER BY clips.delivered_at DESC LIMIT ?""",
            (limit,),
        )
        return [
            (
                f"{row['backend']}:{row['model'] or ''}",
                (from_db_time(row["delivered_at"]) - from_db_time(row["submitted_at"])).total_seconds(),
            )
            for row in rows
        ]

    async def unfinished_by_state(self) -> dict[str, int]:
        """How many unfinished jobs stand in each state, `queued` for those waiting in their server's line: the
        unfinished rows only, found through their partial index."""
        rows = await self._database.fetch_all(
            f"""SELECT status, queued, count(*) AS jobs FROM jobs
                WHERE status IN ({_LITERAL_UNFINISHED}) GROUP BY status, queued"""
        )
        counts: dict[str, int] = {}
        for row in rows:
            state = "queued" if row["queued"] else row["status"]
            counts[state] = counts.get(state, 0) + int(row["jobs"])
        return counts

    async def request_cancel(self, job_id: int, member_id: int) -> Job | None:
        """Notes that `member_id` asked to cancel the job; the job as it stands, or None when it had ended."""
        rows = await self._database.write_returning(
            f"""UPDATE jobs SET cancel_requested_by = coalesce(cancel_requested_by, ?)
                WHERE id = ? AND status IN ({_POSITIONAL_UNFINISHED}) RETURNING *""",
            (member_id, job_id, *_UNFINISHED_VALUES.values()),
        )
        return _job_from_row(rows[0]) if rows else None

    async def release(self, owner: str, *, now: datetime) -> int:
        """Expires the leases of every unfinished job this process holds (at shutdown), so another process or
        the next start takes them at once; returns how many."""
        return await self._database.execute(
            f"UPDATE jobs SET lease_until = ? WHERE owner = ? AND status IN ({_POSITIONAL_UNFINISHED})",
            (to_db_time(now), owner, *_UNFINISHED_VALUES.values()),
        )

    async def set_response_message(self, job_id: int, owner: str, message_id: int) -> None:
        await self._fenced(
            "UPDATE jobs SET response_message_id = ? WHERE id = ? AND owner = ?", (message_id, job_id, owner), job_id
        )

    async def mark_submitted(self, job_id: int, owner: str, now: datetime) -> None:
        """Recorded before the paid call goes out, so a crash inside it is known after a restart; raises
        JobTakenOverError (and the paid call must then not be sent) when this process no longer owns the job, or
        its lease ran out (a process stopped past it may be being replaced right now)."""
        await self._fenced(
            """UPDATE jobs SET status = ?, submitted_at = ?
               WHERE id = ? AND owner = ? AND status = ? AND (lease_until IS NULL OR lease_until > ?)""",
            (JobStatus.SUBMITTED.value, to_db_time(now), job_id, owner, JobStatus.RESERVED.value, to_db_time(now)),
            job_id,
        )

    async def set_task_id(self, job_id: int, owner: str, task_id: str) -> None:
        await self._fenced(
            "UPDATE jobs SET provider_task_id = ? WHERE id = ? AND owner = ?", (task_id, job_id, owner), job_id
        )

    async def save_clips(self, job_id: int, owner: str, clips: Sequence[tuple[int, Clip]], *, polling: bool) -> None:
        """Stores (position, clip) pairs as the API reported them (new ids or fresher states); never touches
        delivery columns, and a known clip keeps its position.

        A clip belongs to the job that first reported it: an id already stored for another job raises
        ForeignClipError and nothing is written, so one job's answer can never rewrite another job's song.
        """
        async with self._database.transaction() as connection:
            await self._check_owner(connection, job_id, owner)
            if polling:
                await connection.execute(
                    "UPDATE jobs SET status = ? WHERE id = ? AND status IN (?, ?)",
                    (JobStatus.POLLING.value, job_id, JobStatus.RESERVED.value, JobStatus.SUBMITTED.value),
                )
            if not clips:
                return
            ids = [clip.id for _, clip in clips]
            owners = await connection.fetch_all(
                f"SELECT id, job_id FROM clips WHERE id IN ({', '.join('?' * len(ids))})", ids
            )
            foreign = sorted(row["id"] for row in owners if row["job_id"] != job_id)
            if foreign:
                raise ForeignClipError(job_id, foreign)
            for position, clip in clips:
                await connection.execute(
                    """INSERT INTO clips (id, job_id, position, status, title, tags, lyrics, image_url,
                                          audio_url, duration, model_name, error_message)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (id) DO UPDATE SET
                           status = excluded.status, title = excluded.title, tags = excluded.tags,
                           lyrics = excluded.lyrics, image_url = excluded.image_url,
                           audio_url = excluded.audio_url, duration = excluded.duration,
                           model_name = excluded.model_name, error_message = excluded.error_message
                       WHERE clips.job_id = excluded.job_id""",
                    (
                        clip.id,
                        job_id,
                        position,
                        clip.status.value,
                        clip.title,
                        clip.tags,
                        clip.lyrics,
                        clip.image_url,
                        clip.audio_url,
                        clip.duration,
                        clip.model_name,
                        clip.error_message,
                    ),
                )

    async def clips(self, job_id: int) -> list[Clip]:
        rows = await self._database.fetch_all("SELECT * FROM clips WHERE job_id = ? ORDER BY position", (job_id,))
        return [_clip_from_row(row) for row in rows]

    async def delivered_clip_ids(self, job_id: int) -> set[str]:
        rows = await self._database.fetch_all(
            "SELECT id FROM clips WHERE job_id = ? AND message_id IS NOT NULL", (job_id,)
        )
        return {row["id"] for row in rows}

    async def mark_posting(self, job_id: int, owner: str, clip_id: str, now: datetime) -> None:
        """Noted before a clip is posted: a clip with this mark but no message id may be in the channel already."""
        await self._fenced(
            """UPDATE clips SET posting_started_at = ?
               WHERE id = ? AND job_id = ? AND message_id IS NULL
                 AND EXISTS (SELECT 1 FROM jobs WHERE id = ? AND owner = ?)""",
            (to_db_time(now), clip_id, job_id, job_id, owner),
            job_id,
        )

    async def clips_maybe_posted(self, job_id: int) -> set[str]:
        """Clips whose posting began but was never recorded: they may be in the channel already."""
        rows = await self._database.fetch_all(
            "SELECT id FROM clips WHERE job_id = ? AND message_id IS NULL AND posting_started_at IS NOT NULL",
            (job_id,),
        )
        return {row["id"] for row in rows}

    async def record_delivery(self, job_id: int, owner: str, clip_id: str, message_id: int, now: datetime) -> bool:
        """Marks the clip posted (safe to repeat: the first message stays the clip's home). True when this call
        recorded the job's first posted clip."""
        async with self._database.transaction() as connection:
            await self._check_owner(connection, job_id, owner)
            recorded = await connection.execute(
                "UPDATE clips SET message_id = ?, delivered_at = ? WHERE id = ? AND job_id = ? AND message_id IS NULL",
                (message_id, to_db_time(now), clip_id, job_id),
            )
            if not recorded:
                return False
            posted = await connection.fetch_one(
                "SELECT count(*) FROM clips WHERE job_id = ? AND message_id IS NOT NULL", (job_id,)
            )
            return posted is not None and int(posted[0]) == 1

    async def finish(
        self,
        job_id: int,
        owner: str,
        *,
        now: datetime,
        reason: FailureReason | None = None,
        detail: str | None = None,
        refund: bool = True,
    ) -> Job:
        """Ends the job: delivered if any clip was posted (quota kept), else failed and refunded exactly once
        (unless `refund` is False: a job cancelled after the music service was paid still counts).
        A job already finished stays as it ended; one another process holds (or has finished) raises
        JobTakenOverError."""
        async with self._database.transaction() as connection:
            held = await connection.fetch_one(
                f"SELECT status, owner FROM jobs WHERE id = ?{self._database.dialect.for_update}", (job_id,)
            )
            if held is None:
                raise KeyError(f"no job {job_id}")
            if held["owner"] != owner:  # also when the process that took it over has finished it
                raise JobTakenOverError(job_id)
            if JobStatus(held["status"]).is_finished:
                return await self.get(job_id)
            count = await connection.fetch_one(
                "SELECT count(*) FROM clips WHERE job_id = ? AND message_id IS NOT NULL", (job_id,)
            )
            delivered = count is not None and int(count[0]) > 0
            status = JobStatus.DELIVERED if delivered else JobStatus.FAILED
            await connection.execute(
                f"""UPDATE jobs SET status = ?, finished_at = ?, failure_reason = ?, failure_detail = ?,
                                    lease_until = NULL
                    WHERE id = ? AND status IN ({_POSITIONAL_UNFINISHED})""",
                (
                    status.value,
                    to_db_time(now),
                    reason.value if reason else None,
                    detail,
                    job_id,
                    *_UNFINISHED_VALUES.values(),
                ),
            )
            if not delivered and refund:
                # The refund's ledger row is written by a trigger, exactly once.
                await connection.execute("UPDATE jobs SET charged = 0 WHERE id = ? AND charged = 1", (job_id,))
        return await self.get(job_id)

    async def _fenced(self, sql: str, parameters: Sequence[object], job_id: int) -> None:
        if await self._database.execute(sql, parameters) == 0:
            raise JobTakenOverError(job_id)

    async def _check_owner(self, transaction: Transaction, job_id: int, owner: str) -> None:
        """Inside a write transaction: the job is still unfinished and this process's, or JobTakenOverError. On
        PostgreSQL the job's row stays locked to the commit, so no claim can take it in between."""
        row = await transaction.fetch_one(
            f"""SELECT 1 FROM jobs WHERE id = ? AND owner = ? AND status IN ({_POSITIONAL_UNFINISHED})
                {self._database.dialect.for_update}""",
            (job_id, owner, *_UNFINISHED_VALUES.values()),
        )
        if row is None:
            raise JobTakenOverError(job_id)
