"""Quota SQL: the atomic check-and-reserve of a generation, and usage counts."""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from bot.models import GenerationRequest, Requester
from bot.storage.database import Database, to_db_time

UNLIMITED = -1


async def insert_ledger_row(connection: aiosqlite.Connection, *, job_id: int, change: str, now: datetime) -> None:
    """Records a reservation or a refund against the job's guild and requester (inside the caller's transaction)."""
    await connection.execute(
        """INSERT INTO quota_ledger (guild_id, user_id, job_id, change, created_at)
           SELECT guild_id, requester_id, id, ?, ? FROM jobs WHERE id = ?""",
        (change, to_db_time(now), job_id),
    )


class QuotaStore:
    """Counts charged generations and reserves new ones without ever passing a limit."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def reserve_job(
        self,
        requester: Requester,
        request: GenerationRequest,
        *,
        backend: str,
        now: datetime,
        day_start: datetime,
        daily_limit: int,
    ) -> int | None:
        """In one IMMEDIATE transaction: count today's charged jobs, and if under the limit insert the job.

        Returns the new job id, or None when the limit is reached. `UNLIMITED` (-1) skips the check.
        """
        async with self._database.transaction() as connection:
            if daily_limit != UNLIMITED:
                rows = await connection.execute_fetchall(
                    "SELECT count(*) FROM jobs WHERE guild_id = ? AND created_at >= ? AND charged = 1",
                    (requester.guild_id, to_db_time(day_start)),
                )
                used = int(next(iter(rows))[0])
                if used >= daily_limit:
                    return None
            cursor = await connection.execute(
                """INSERT INTO jobs (guild_id, channel_id, requester_id, backend, mode, prompt, title, tags,
                                     instrumental, model, status, charged, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'reserved', 1, ?)""",
                (
                    requester.guild_id,
                    requester.channel_id,
                    requester.user_id,
                    backend,
                    request.mode.value,
                    request.prompt,
                    request.title,
                    request.tags,
                    int(request.instrumental),
                    request.model,
                    to_db_time(now),
                ),
            )
            job_id = cursor.lastrowid
            await cursor.close()
            assert job_id is not None
            await insert_ledger_row(connection, job_id=job_id, change="reserve", now=now)
            return job_id

    async def charged_since(self, guild_id: int, since: datetime) -> int:
        row = await self._database.fetch_one(
            "SELECT count(*) FROM jobs WHERE guild_id = ? AND created_at >= ? AND charged = 1",
            (guild_id, to_db_time(since)),
        )
        return int(row[0]) if row else 0
