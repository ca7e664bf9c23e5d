"""Quota SQL: the atomic check-and-reserve of a generation, per-server limits, blocks, the audit log, usage."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime

import aiosqlite

from bot.models import (
    LIMIT_NAMES,
    GenerationRequest,
    GuildLimits,
    LimitChange,
    QuotaLimits,
    QuotaSnapshot,
    Requester,
    UsageReport,
)
from bot.storage.database import Database, from_db_time, to_db_time

_ACTIVE = "('reserved', 'submitted', 'polling')"


async def insert_ledger_row(connection: aiosqlite.Connection, *, job_id: int, change: str, now: datetime) -> None:
    """Records a reservation or a refund against the job's guild and requester (inside the caller's transaction)."""
    await connection.execute(
        """INSERT INTO quota_ledger (guild_id, user_id, job_id, change, created_at)
           SELECT guild_id, requester_id, id, ?, ? FROM jobs WHERE id = ?""",
        (change, to_db_time(now), job_id),
    )


async def _scalar(connection: aiosqlite.Connection, sql: str, parameters: tuple[object, ...]) -> object:
    rows = list(await connection.execute_fetchall(sql, parameters))
    return rows[0][0] if rows else None


def _limits_from_row(row: sqlite3.Row | None, defaults: QuotaLimits) -> GuildLimits:
    if row is None:
        return GuildLimits(defaults, frozenset())
    values = {name: row[name] for name in LIMIT_NAMES}
    overridden = frozenset(name for name, value in values.items() if value is not None)
    merged = QuotaLimits(
        **{name: getattr(defaults, name) if value is None else value for name, value in values.items()}
    )
    updated_at = from_db_time(row["updated_at"]) if row["updated_at"] else None
    return GuildLimits(merged, overridden, row["updated_by"], updated_at)


async def _read_limits(connection: aiosqlite.Connection, guild_id: int, defaults: QuotaLimits) -> GuildLimits:
    rows = list(await connection.execute_fetchall("SELECT * FROM guild_limits WHERE guild_id = ?", (guild_id,)))
    return _limits_from_row(rows[0] if rows else None, defaults)


async def _snapshot(
    connection: aiosqlite.Connection,
    requester: Requester,
    *,
    defaults: QuotaLimits,
    day_start: datetime,
    month_start: datetime,
) -> QuotaSnapshot:
    guild, user = requester.guild_id, requester.user_id
    day, month = to_db_time(day_start), to_db_time(month_start)
    block = list(
        await connection.execute_fetchall(
            "SELECT reason FROM blocked_members WHERE guild_id = ? AND user_id = ?", (guild, user)
        )
    )
    last = await _scalar(
        connection,
        "SELECT max(created_at) FROM jobs WHERE guild_id = ? AND requester_id = ? AND charged = 1",
        (guild, user),
    )
    rows = await connection.execute_fetchall(
        f"""SELECT coalesce(sum(charged = 1 AND requester_id = ? AND created_at >= ?), 0),
                   coalesce(sum(charged = 1 AND created_at >= ?), 0),
                   coalesce(sum(charged = 1 AND created_at >= ?), 0),
                   coalesce(sum(status IN {_ACTIVE}), 0)
            FROM jobs WHERE guild_id = ? AND (created_at >= ? OR status IN {_ACTIVE})""",
        (user, day, day, month, guild, month),
    )
    counts = next(iter(rows))
    return QuotaSnapshot(
        limits=(await _read_limits(connection, guild, defaults)).limits,
        blocked=bool(block),
        block_reason=block[0][0] if block else None,
        member_last_request=from_db_time(str(last)) if last else None,
        member_today=int(counts[0]),
        server_today=int(counts[1]),
        server_month=int(counts[2]),
        running=int(counts[3]),
    )


class QuotaStore:
    """Reads what the quota policy needs and reserves generations without ever passing a limit."""

    def __init__(self, database: Database, *, defaults: QuotaLimits) -> None:
        self._database = database
        self._defaults = defaults

    async def reserve_job(
        self,
        requester: Requester,
        request: GenerationRequest,
        *,
        backend: str,
        now: datetime,
        day_start: datetime,
        month_start: datetime,
        check: Callable[[QuotaSnapshot], None],
    ) -> int:
        """In one IMMEDIATE transaction: snapshot usage, let `check` raise a refusal, else insert the job.

        Nothing is written when `check` raises. Returns the new job id.
        """
        async with self._database.transaction() as connection:
            snapshot = await _snapshot(
                connection, requester, defaults=self._defaults, day_start=day_start, month_start=month_start
            )
            check(snapshot)
            cursor = await connection.execute(
                """INSERT INTO jobs (guild_id, channel_id, requester_id, backend, mode, prompt, title, tags,
                                     instrumental, model, duration_seconds, status, charged, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'reserved', 1, ?)""",
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
                    request.duration_seconds,
                    to_db_time(now),
                ),
            )
            job_id = cursor.lastrowid
            await cursor.close()
            assert job_id is not None
            await insert_ledger_row(connection, job_id=job_id, change="reserve", now=now)
            return job_id

    async def snapshot(self, requester: Requester, *, day_start: datetime, month_start: datetime) -> QuotaSnapshot:
        async with self._database.transaction() as connection:
            return await _snapshot(
                connection, requester, defaults=self._defaults, day_start=day_start, month_start=month_start
            )

    async def guild_limits(self, guild_id: int) -> GuildLimits:
        row = await self._database.fetch_one("SELECT * FROM guild_limits WHERE guild_id = ?", (guild_id,))
        return _limits_from_row(row, self._defaults)

    async def set_limits(
        self, guild_id: int, changes: Mapping[str, int], *, actor_id: int, now: datetime
    ) -> list[LimitChange]:
        """Stores the new values and logs each one that changed (old and new effective values)."""
        unknown = set(changes) - set(LIMIT_NAMES)
        if unknown:
            raise ValueError(f"unknown limits: {sorted(unknown)}")
        async with self._database.transaction() as connection:
            before = (await _read_limits(connection, guild_id, self._defaults)).limits
            await connection.execute(
                "INSERT INTO guild_limits (guild_id) VALUES (?) ON CONFLICT (guild_id) DO NOTHING", (guild_id,)
            )
            applied: list[LimitChange] = []
            for name, value in changes.items():
                await connection.execute(f"UPDATE guild_limits SET {name} = ? WHERE guild_id = ?", (value, guild_id))
                old = getattr(before, name)
                if old != value:
                    applied.append(LimitChange(name, old, value))
                    await self._log(connection, guild_id, actor_id, "set_limit", name, str(old), str(value), now)
            await connection.execute(
                "UPDATE guild_limits SET updated_by = ?, updated_at = ? WHERE guild_id = ?",
                (actor_id, to_db_time(now), guild_id),
            )
        return applied

    async def block(self, guild_id: int, user_id: int, *, reason: str | None, actor_id: int, now: datetime) -> None:
        async with self._database.transaction() as connection:
            await connection.execute(
                """INSERT INTO blocked_members (guild_id, user_id, reason, blocked_by, blocked_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (guild_id, user_id) DO UPDATE SET reason = excluded.reason,
                       blocked_by = excluded.blocked_by, blocked_at = excluded.blocked_at""",
                (guild_id, user_id, reason, actor_id, to_db_time(now)),
            )
            await self._log(connection, guild_id, actor_id, "block", str(user_id), None, reason, now)

    async def unblock(self, guild_id: int, user_id: int, *, actor_id: int, now: datetime) -> bool:
        """False when the member was not blocked (nothing is logged then)."""
        async with self._database.transaction() as connection:
            cursor = await connection.execute(
                "DELETE FROM blocked_members WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
            )
            removed = cursor.rowcount == 1
            await cursor.close()
            if removed:
                await self._log(connection, guild_id, actor_id, "unblock", str(user_id), None, None, now)
            return removed

    async def usage(self, guild_id: int, since: datetime | None) -> UsageReport:
        start = to_db_time(since) if since else ""
        row = await self._database.fetch_one(
            f"""SELECT count(*) AS requested,
                       coalesce(sum(status = 'delivered'), 0) AS delivered,
                       coalesce(sum(status = 'failed'), 0) AS failed,
                       coalesce(sum(charged = 0), 0) AS refunded,
                       coalesce(sum(status IN {_ACTIVE}), 0) AS running,
                       coalesce(sum(charged = 1), 0) AS charged
                FROM jobs WHERE guild_id = ? AND created_at >= ?""",
            (guild_id, start),
        )
        assert row is not None
        top = await self._database.fetch_all(
            """SELECT requester_id, count(*) AS generations FROM jobs
               WHERE guild_id = ? AND created_at >= ? AND charged = 1
               GROUP BY requester_id ORDER BY generations DESC, min(created_at) ASC LIMIT 5""",
            (guild_id, start),
        )
        backends = await self._database.fetch_all(
            """SELECT backend, count(*) AS generations FROM jobs
               WHERE guild_id = ? AND created_at >= ? AND charged = 1 GROUP BY backend ORDER BY backend""",
            (guild_id, start),
        )
        return UsageReport(
            requested=row["requested"],
            delivered=row["delivered"],
            failed=row["failed"],
            refunded=row["refunded"],
            running=row["running"],
            charged=row["charged"],
            charged_by_backend=tuple((backend["backend"], backend["generations"]) for backend in backends),
            top_members=tuple((member["requester_id"], member["generations"]) for member in top),
        )

    @staticmethod
    async def _log(
        connection: aiosqlite.Connection,
        guild_id: int,
        actor_id: int,
        action: str,
        subject: str,
        old: str | None,
        new: str | None,
        now: datetime,
    ) -> None:
        await connection.execute(
            """INSERT INTO moderation_log (guild_id, actor_id, action, subject, old_value, new_value, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (guild_id, actor_id, action, subject, old, new, to_db_time(now)),
        )
