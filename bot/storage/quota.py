"""Quota SQL: the atomic check-and-reserve of a generation, per-server limits, blocks, the audit log, usage."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime

import aiosqlite

from bot.models import (
    CEILING_NAMES,
    LIMIT_NAMES,
    BudgetStatus,
    GenerationRequest,
    GuildLimits,
    LimitChange,
    OperatorLimits,
    QuotaLimits,
    QuotaSnapshot,
    Requester,
    UsageReport,
)
from bot.storage.database import Database, from_db_time, to_db_time

_ACTIVE = "('reserved', 'submitted', 'polling')"


def _capped(value: str, ceiling: str) -> str:
    """The ceiling rule: no ceiling (-1) keeps the value; "unlimited" (-1) becomes the ceiling; else the smaller."""
    return f"CASE WHEN {ceiling} = -1 THEN {value} WHEN {value} = -1 THEN {ceiling} ELSE min({value}, {ceiling}) END"


# A server's limits as they stand in this statement: what its moderators stored (NULL = the default), the
# defaults, then the operator's ceilings. Every statement that needs limits reads them here, so a reservation
# sees a change the moment it commits, and there is one rule for "effective limit".
_LIMITS_CTE = f"""
chosen AS (
    SELECT g.updated_by AS updated_by, g.updated_at AS updated_at,
           g.daily IS NOT NULL AS set_daily, g.monthly IS NOT NULL AS set_monthly,
           g.per_member_daily IS NOT NULL AS set_per_member_daily,
           g.cooldown_seconds IS NOT NULL AS set_cooldown_seconds,
           g.max_concurrent IS NOT NULL AS set_max_concurrent,
           coalesce(g.daily, :default_daily) AS chosen_daily,
           coalesce(g.monthly, :default_monthly) AS chosen_monthly,
           coalesce(g.per_member_daily, :default_per_member_daily) AS chosen_per_member_daily,
           coalesce(g.cooldown_seconds, :default_cooldown_seconds) AS cooldown_seconds,
           coalesce(g.max_concurrent, :default_max_concurrent) AS chosen_max_concurrent
    FROM (SELECT 1) LEFT JOIN guild_limits AS g ON g.guild_id = :guild
),
lim AS (
    SELECT *,
           {_capped("chosen_daily", ":ceiling_daily")} AS daily,
           {_capped("chosen_monthly", ":ceiling_monthly")} AS monthly,
           {_capped("chosen_per_member_daily", ":ceiling_per_member_daily")} AS per_member_daily,
           {_capped("chosen_max_concurrent", ":ceiling_max_concurrent")} AS max_concurrent
    FROM chosen
)"""


def _counter(scope: str, period: str) -> str:
    return (
        f"coalesce((SELECT used FROM quota_counters WHERE guild_id = :guild AND scope = {scope} "
        f"AND period = {period}), 0)"
    )


def _global_counter(scope: str, period: str) -> str:
    return f"coalesce((SELECT used FROM global_counters WHERE scope = '{scope}' AND period = {period}), 0)"


_MEMBER_TODAY = _counter(":member_scope", ":day_key")
_SERVER_TODAY = _counter("'day'", ":day_key")
_SERVER_MONTH = _counter("'month'", ":month_key")
_BOT_TODAY = _global_counter("day", ":day_key")
_BOT_MONTH = _global_counter("month", ":month_key")
_RUNNING = f"(SELECT count(*) FROM jobs WHERE guild_id = :guild AND status IN {_ACTIVE})"
_LAST_REQUEST = "(SELECT max(created_at) FROM jobs WHERE guild_id = :guild AND requester_id = :user AND charged = 1)"
# Now minus the cooldown, in the stored text format: whole seconds moved back, the same microseconds kept, so
# text comparison is exact (the Python refusal path compares the same instants).
_COOLDOWN_CUTOFF = (
    "strftime('%Y-%m-%dT%H:%M:%S', substr(:now, 1, 19), '-' || lim.cooldown_seconds || ' seconds') || substr(:now, 20)"
)

# Every limit checked inside the one statement that inserts the job (-1 = unlimited, 0 = off), limits read
# from guild_limits in the same statement. The bot-wide budget is checked beside the server's limits.
_RESERVE_SQL = f"""
WITH {_LIMITS_CTE}
INSERT INTO jobs (guild_id, channel_id, requester_id, backend, mode, prompt, title, tags, instrumental, model,
                  duration_seconds, status, charged, created_at)
SELECT :guild, :channel, :user, :backend, :mode, :prompt, :title, :tags, :instrumental, :model,
       :duration, 'reserved', 1, :now
FROM lim
WHERE :global_daily != 0 AND :global_monthly != 0
  AND lim.daily != 0 AND lim.monthly != 0 AND lim.max_concurrent != 0
  AND NOT EXISTS (SELECT 1 FROM blocked_members WHERE guild_id = :guild AND user_id = :user)
  AND (lim.cooldown_seconds = 0 OR NOT EXISTS (
        SELECT 1 FROM jobs WHERE guild_id = :guild AND requester_id = :user AND charged = 1
                             AND created_at > {_COOLDOWN_CUTOFF}))
  AND (lim.per_member_daily = -1 OR {_MEMBER_TODAY} < lim.per_member_daily)
  AND (lim.daily = -1 OR {_SERVER_TODAY} < lim.daily)
  AND (lim.monthly = -1 OR {_SERVER_MONTH} < lim.monthly)
  AND (:global_daily = -1 OR {_BOT_TODAY} < :global_daily)
  AND (:global_monthly = -1 OR {_BOT_MONTH} < :global_monthly)
  AND (lim.max_concurrent = -1 OR {_RUNNING} < lim.max_concurrent)
RETURNING id
"""

_SNAPSHOT_SQL = f"""
WITH {_LIMITS_CTE}
SELECT lim.*,
       (SELECT reason FROM blocked_members WHERE guild_id = :guild AND user_id = :user) AS block_reason,
       EXISTS (SELECT 1 FROM blocked_members WHERE guild_id = :guild AND user_id = :user) AS blocked,
       {_LAST_REQUEST} AS last_request,
       {_MEMBER_TODAY} AS member_today,
       {_SERVER_TODAY} AS server_today,
       {_SERVER_MONTH} AS server_month,
       {_RUNNING} AS running,
       {_BOT_TODAY} AS bot_today,
       {_BOT_MONTH} AS bot_month
FROM lim
"""

_LIMITS_SQL = f"WITH {_LIMITS_CTE} SELECT * FROM lim"
_BUDGET_SQL = f"SELECT {_BOT_TODAY} AS bot_today, {_BOT_MONTH} AS bot_month"


def _limits_from_row(row: sqlite3.Row, ceilings: QuotaLimits) -> GuildLimits:
    """Reads a row of `lim`: the effective limits, the values before the ceilings, and which were set here."""
    effective = QuotaLimits(**{name: row[name] for name in LIMIT_NAMES})
    chosen = QuotaLimits(
        **{name: row[name if name == "cooldown_seconds" else f"chosen_{name}"] for name in LIMIT_NAMES}
    )
    overridden = frozenset(name for name in LIMIT_NAMES if row[f"set_{name}"])
    updated_at = from_db_time(row["updated_at"]) if row["updated_at"] else None
    return GuildLimits(effective, overridden, row["updated_by"], updated_at, chosen=chosen, ceilings=ceilings)


def _period_keys(requester: Requester, day_start: datetime, month_start: datetime) -> dict[str, object]:
    return {
        "guild": requester.guild_id,
        "user": requester.user_id,
        "member_scope": f"member:{requester.user_id}",
        "day_key": to_db_time(day_start)[:10],
        "month_key": to_db_time(month_start)[:7],
    }


class QuotaStore:
    """Reads what the quota policy needs and reserves generations without ever passing a limit.

    `defaults` apply to servers whose moderators set nothing; `operator` holds the bot-wide budget and the
    ceilings (both enforced in SQL) and the allow-list (enforced by the service). Nothing is cached: every
    statement reads the limits as they stand, even when another process changed them.
    """

    def __init__(self, database: Database, *, defaults: QuotaLimits, operator: OperatorLimits | None = None) -> None:
        self._database = database
        self.defaults = defaults
        self.operator = operator or OperatorLimits()
        ceilings = self.operator.ceilings
        self._policy: dict[str, object] = {
            **{f"default_{name}": getattr(defaults, name) for name in LIMIT_NAMES},
            **{f"ceiling_{name}": getattr(ceilings, name) for name in CEILING_NAMES},
            "global_daily": self.operator.global_daily,
            "global_monthly": self.operator.global_monthly,
        }

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
        The statement reads the server's limits itself (defaults and ceilings applied), so a reservation
        that runs after a moderator's change committed is judged by the new limits.

        When nothing was inserted, `check` is given a fresh snapshot to raise the refusal that names the limit.
        Returns the new job id (the ledger row and the counters come from triggers).
        """
        parameters = {
            **self._policy,
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
        }
        for _ in range(3):
            rows = await self._database.write_returning(_RESERVE_SQL, parameters)
            if rows:
                return int(rows[0][0])
            check(await self.snapshot(requester, day_start=day_start, month_start=month_start))
            # Nothing refuses any more (a job ended, or a limit was raised, in between): try again.
        raise RuntimeError("a reservation was refused three times by limits that then had room")

    async def snapshot(self, requester: Requester, *, day_start: datetime, month_start: datetime) -> QuotaSnapshot:
        """Everything the policy looks at, limits included, read in one statement (so the figures agree)."""
        row = await self._database.fetch_one(
            _SNAPSHOT_SQL, {**self._policy, **_period_keys(requester, day_start, month_start)}
        )
        assert row is not None
        return QuotaSnapshot(
            limits=_limits_from_row(row, self.operator.ceilings).limits,
            blocked=bool(row["blocked"]),
            block_reason=row["block_reason"],
            member_last_request=from_db_time(row["last_request"]) if row["last_request"] else None,
            member_today=row["member_today"],
            server_today=row["server_today"],
            server_month=row["server_month"],
            running=row["running"],
            budget=BudgetStatus(
                self.operator.global_daily, self.operator.global_monthly, row["bot_today"], row["bot_month"]
            ),
        )

    async def guild_limits(self, guild_id: int) -> GuildLimits:
        """A server's limits as they stand now: defaults for what its moderators never set, ceilings applied."""
        row = await self._database.fetch_one(_LIMITS_SQL, {**self._policy, "guild": guild_id})
        assert row is not None
        return _limits_from_row(row, self.operator.ceilings)

    async def budget(self, *, day_start: datetime, month_start: datetime) -> BudgetStatus:
        """The bot-wide budget and what all servers together used of it today and this month."""
        keys = {"day_key": to_db_time(day_start)[:10], "month_key": to_db_time(month_start)[:7]}
        row = await self._database.fetch_one(_BUDGET_SQL, keys)
        assert row is not None
        return BudgetStatus(
            self.operator.global_daily, self.operator.global_monthly, row["bot_today"], row["bot_month"]
        )

    async def set_limits(
        self, guild_id: int, changes: Mapping[str, int], *, actor_id: int, now: datetime
    ) -> list[LimitChange]:
        """Stores the new values and logs each one that changed (old and new values as chosen, before ceilings)."""
        unknown = set(changes) - set(LIMIT_NAMES)
        if unknown:
            raise ValueError(f"unknown limits: {sorted(unknown)}")
        async with self._database.transaction() as connection:
            rows = list(await connection.execute_fetchall(_LIMITS_SQL, {**self._policy, "guild": guild_id}))
            before = _limits_from_row(rows[0], self.operator.ceilings).configured
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
