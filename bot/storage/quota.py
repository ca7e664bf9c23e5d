"""Quota SQL: the atomic check-and-reserve of a generation, per-server limits, blocks, the audit log, usage."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

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


def _counter(scope: str, period: str) -> str:
    return (
        f"coalesce((SELECT used FROM quota_counters WHERE guild_id = :guild AND scope = {scope} "
        f"AND period = {period}), 0)"
    )


_MEMBER_TODAY = _counter(":member_scope", ":day_key")
_SERVER_TODAY = _counter("'day'", ":day_key")
_SERVER_MONTH = _counter("'month'", ":month_key")
_RUNNING = f"(SELECT count(*) FROM jobs WHERE guild_id = :guild AND status IN {_ACTIVE})"
_LAST_REQUEST = "(SELECT max(created_at) FROM jobs WHERE guild_id = :guild AND requester_id = :user AND charged = 1)"

# Every limit checked inside the one statement that inserts the job (-1 = unlimited, 0 = off).
_RESERVE_SQL = f"""
INSERT INTO jobs (guild_id, channel_id, requester_id, backend, mode, prompt, title, tags, instrumental, model,
                  duration_seconds, status, charged, created_at)
SELECT :guild, :channel, :user, :backend, :mode, :prompt, :title, :tags, :instrumental, :model,
       :duration, 'reserved', 1, :now
WHERE NOT EXISTS (SELECT 1 FROM blocked_members WHERE guild_id = :guild AND user_id = :user)
  AND :daily != 0 AND :monthly != 0 AND :concurrent != 0
  AND (:cooldown = 0 OR NOT EXISTS (
        SELECT 1 FROM jobs WHERE guild_id = :guild AND requester_id = :user AND charged = 1
                             AND created_at > :cooldown_cutoff))
  AND (:member = -1 OR {_MEMBER_TODAY} < :member)
  AND (:daily = -1 OR {_SERVER_TODAY} < :daily)
  AND (:monthly = -1 OR {_SERVER_MONTH} < :monthly)
  AND (:concurrent = -1 OR {_RUNNING} < :concurrent)
RETURNING id
"""

_SNAPSHOT_SQL = f"""
SELECT (SELECT reason FROM blocked_members WHERE guild_id = :guild AND user_id = :user) AS block_reason,
       EXISTS (SELECT 1 FROM blocked_members WHERE guild_id = :guild AND user_id = :user) AS blocked,
       {_LAST_REQUEST} AS last_request,
       {_MEMBER_TODAY} AS member_today,
       {_SERVER_TODAY} AS server_today,
       {_SERVER_MONTH} AS server_month,
       {_RUNNING} AS running
"""


def _period_keys(requester: Requester, day_start: datetime, month_start: datetime) -> dict[str, object]:
    return {
        "guild": requester.guild_id,
        "user": requester.user_id,
        "member_scope": f"member:{requester.user_id}",
        "day_key": to_db_time(day_start)[:10],
        "month_key": to_db_time(month_start)[:7],
    }


class QuotaStore:
    """Reads what the quota policy needs and reserves generations without ever passing a limit."""

    def __init__(self, database: Database, *, defaults: QuotaLimits) -> None:
        self._database = database
        self._defaults = defaults
        self._limits: dict[int, GuildLimits] = {}

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
        """One INSERT ... SELECT ... WHERE <every limit holds> RETURNING id: SQLite runs a statement atomically,
        so no number of simultaneous requests can pass a limit, and it costs one trip to the database thread.

        When nothing was inserted, `check` is given a snapshot to raise the refusal that names the limit.
        Returns the new job id (the ledger row comes from a trigger).
        """
        for _ in range(3):
            limits = (await self.guild_limits(requester.guild_id)).limits
            rows = await self._database.write_returning(
                _RESERVE_SQL,
                {
                    **_period_keys(requester, day_start, month_start),
                    "channel": requester.channel_id,
                    "backend": backend,
                    "mode": request.mode.value,
                    "prompt": request.prompt,
                    "title": request.title,
                    "tags": request.tags,
                    "instrumental": int(request.instrumental),
                    "model": request.model,
                    "duration": request.duration_seconds,
                    "now": to_db_time(now),
                    "cooldown": limits.cooldown_seconds,
                    "cooldown_cutoff": to_db_time(now - timedelta(seconds=limits.cooldown_seconds)),
                    "member": limits.per_member_daily,
                    "daily": limits.daily,
                    "monthly": limits.monthly,
                    "concurrent": limits.max_concurrent,
                },
            )
            if rows:
                return int(rows[0][0])
            check(await self.snapshot(requester, day_start=day_start, month_start=month_start))
            # Nothing refuses any more (a job ended in between): try again.
        raise RuntimeError("a reservation was refused three times by limits that then had room")

    async def snapshot(self, requester: Requester, *, day_start: datetime, month_start: datetime) -> QuotaSnapshot:
        """Everything the policy looks at, read in one statement (so the figures are consistent)."""
        row = await self._database.fetch_one(_SNAPSHOT_SQL, _period_keys(requester, day_start, month_start))
        assert row is not None
        return QuotaSnapshot(
            limits=(await self.guild_limits(requester.guild_id)).limits,
            blocked=bool(row["blocked"]),
            block_reason=row["block_reason"],
            member_last_request=from_db_time(row["last_request"]) if row["last_request"] else None,
            member_today=row["member_today"],
            server_today=row["server_today"],
            server_month=row["server_month"],
            running=row["running"],
        )

    async def guild_limits(self, guild_id: int) -> GuildLimits:
        """A server's limits, cached: this process is the database's only writer, and set_limits refreshes it."""
        cached = self._limits.get(guild_id)
        if cached is None:
            row = await self._database.fetch_one("SELECT * FROM guild_limits WHERE guild_id = ?", (guild_id,))
            cached = self._limits[guild_id] = _limits_from_row(row, self._defaults)
        return cached

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
        self._limits.pop(guild_id, None)
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
