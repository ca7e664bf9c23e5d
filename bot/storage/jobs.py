"""Job and clip SQL: a job's progress, its clips as the API reports them, and what was delivered."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from bot.errors import ForeignClipError
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
from bot.storage.database import Database, from_db_time, to_db_time

_UNFINISHED = ("reserved", "submitted", "polling")


def _job_from_row(row: sqlite3.Row) -> Job:
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
    )


def _clip_from_row(row: sqlite3.Row) -> Clip:
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
    """Reads and moves jobs through their states; finishing and refunding happen in one transaction."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, job_id: int) -> Job:
        row = await self._database.fetch_one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            raise KeyError(f"no job {job_id}")
        return _job_from_row(row)

    async def unfinished(self) -> list[Job]:
        rows = await self._database.fetch_all(f"SELECT * FROM jobs WHERE status IN {_UNFINISHED} ORDER BY id")
        return [_job_from_row(row) for row in rows]

    async def set_response_message(self, job_id: int, message_id: int) -> None:
        await self._database.execute("UPDATE jobs SET response_message_id = ? WHERE id = ?", (message_id, job_id))

    async def mark_submitted(self, job_id: int, now: datetime) -> None:
        """Recorded before the paid call goes out, so a crash inside it is known after a restart."""
        await self._database.execute(
            "UPDATE jobs SET status = 'submitted', submitted_at = ? WHERE id = ? AND status = 'reserved'",
            (to_db_time(now), job_id),
        )

    async def set_task_id(self, job_id: int, task_id: str) -> None:
        await self._database.execute("UPDATE jobs SET provider_task_id = ? WHERE id = ?", (task_id, job_id))

    async def save_clips(self, job_id: int, clips: Sequence[tuple[int, Clip]], *, polling: bool) -> None:
        """Stores (position, clip) pairs as the API reported them (new ids or fresher states); never touches
        delivery columns, and a known clip keeps its position.

        A clip belongs to the job that first reported it: an id already stored for another job raises
        ForeignClipError and nothing is written, so one job's answer can never rewrite another job's song.
        """
        if not clips:
            return
        async with self._database.transaction() as connection:
            ids = [clip.id for _, clip in clips]
            owners = await connection.execute_fetchall(
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
            if polling:
                await connection.execute(
                    "UPDATE jobs SET status = 'polling' WHERE id = ? AND status IN ('reserved', 'submitted')",
                    (job_id,),
                )

    async def clips(self, job_id: int) -> list[Clip]:
        rows = await self._database.fetch_all("SELECT * FROM clips WHERE job_id = ? ORDER BY position", (job_id,))
        return [_clip_from_row(row) for row in rows]

    async def delivered_clip_ids(self, job_id: int) -> set[str]:
        rows = await self._database.fetch_all(
            "SELECT id FROM clips WHERE job_id = ? AND message_id IS NOT NULL", (job_id,)
        )
        return {row["id"] for row in rows}

    async def mark_posting(self, clip_id: str, now: datetime) -> None:
        await self._database.execute(
            "UPDATE clips SET posting_started_at = ? WHERE id = ? AND message_id IS NULL", (to_db_time(now), clip_id)
        )

    async def clips_maybe_posted(self, job_id: int) -> set[str]:
        """Clips whose posting began but was never recorded: they may be in the channel already."""
        rows = await self._database.fetch_all(
            "SELECT id FROM clips WHERE job_id = ? AND message_id IS NULL AND posting_started_at IS NOT NULL",
            (job_id,),
        )
        return {row["id"] for row in rows}

    async def record_delivery(self, clip_id: str, message_id: int, now: datetime) -> bool:
        """Marks the clip posted; False if it already was (the first message stays the clip's home)."""
        changed = await self._database.execute(
            "UPDATE clips SET message_id = ?, delivered_at = ? WHERE id = ? AND message_id IS NULL",
            (message_id, to_db_time(now), clip_id),
        )
        return changed == 1

    async def finish(
        self,
        job_id: int,
        *,
        now: datetime,
        reason: FailureReason | None = None,
        detail: str | None = None,
    ) -> Job:
        """Ends the job: delivered if any clip was posted (quota kept), else failed and refunded exactly once."""
        async with self._database.transaction() as connection:
            rows = await connection.execute_fetchall(
                "SELECT count(*) FROM clips WHERE job_id = ? AND message_id IS NOT NULL", (job_id,)
            )
            delivered = int(next(iter(rows))[0]) > 0
            status = JobStatus.DELIVERED if delivered else JobStatus.FAILED
            await connection.execute(
                """UPDATE jobs SET status = ?, finished_at = ?, failure_reason = ?, failure_detail = ?
                   WHERE id = ? AND status IN ('reserved', 'submitted', 'polling')""",
                (status.value, to_db_time(now), reason.value if reason else None, detail, job_id),
            )
            if not delivered:
                # The refund's ledger row is written by a trigger, exactly once.
                await connection.execute("UPDATE jobs SET charged = 0 WHERE id = ? AND charged = 1", (job_id,))
        return await self.get(job_id)
