"""Quota SQL: the atomic check-and-reserve of a generation, per-server limits, blocks, the audit log, usage."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.errors import QuotaExceededError
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
    Windows,
)
from bot.storage.database import Database, Lock, LockSpace, Row, Transaction, from_db_time, to_db_time
from bot.storage.quota_sql import ACTIVE, STATUSES, quota_statements


def _limits_from_row(row: Row, ceilings: QuotaLimits) -> GuildLimits:
    """Reads a row of `lim`: the effective limits, the values before the ceilings, and which were set here."""
    effective = QuotaLimits(**{name: row[name] for name in LIMIT_NAMES})
    chosen = QuotaLimits(
        **{name: row[name if name == "cooldown_seconds" else f"chosen_{name}"] for name in LIMIT_NAMES}
    )
    overridden = frozenset(name for name in LIMIT_NAMES if row[f"set_{name}"])
    updated_at = from_db_time(row["updated_at"]) if row["updated_at"] else None
    return GuildLimits(effective, overridden, row["updated_by"], updated_at, chosen=chosen, ceilings=ceilings)


def _refusal_from_row(row: Row) -> QuotaExceededError:
    return QuotaExceededError(
        row["refused_by"],
        value=row["refused_value"],
        used=row["refused_used"],
        frees_at=from_db_time(row["frees_at"]) if row["frees_at"] else None,
        block_reason=row["block_reason"] if row["refused_by"] == "blocked" else None,
    )


def _window_keys(now: datetime, day_start: datetime, month_start: datetime) -> dict[str, object]:
    windows = Windows(day_start, month_start)
    return {
        "now": to_db_time(now),
        "day_key": to_db_time(day_start)[:10],
        "month_key": to_db_time(month_start)[:7],
        "next_day": to_db_time(windows.next_day),
        "next_month": to_db_time(windows.next_month),
    }


def _member_keys(requester: Requester) -> dict[str, object]:
    return {"guild": requester.guild_id, "user": requester.user_id, "member_scope": f"member:{requester.user_id}"}


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
            **STATUSES,
        }
        self._sql = quota_statements(database.dialect)
        # The bot-wide budget spans every server: with one set, reservations of all servers are decided one at
        # a time (on PostgreSQL; SQLite's one writer always does).
        self._budget_locks = [Lock(LockSpace.BOT_BUDGET, 0)] if self.operator.has_budget else []

    def _locks(self, guild_id: int) -> list[Lock]:
        """What a reservation or a change of this server's limits holds until it commits."""
        return [Lock(LockSpace.GUILD_QUOTA, guild_id), *self._budget_locks]

    async def reserve_job(
        self,
        requester: Requester,
        request: GenerationRequest,
        *,
        backend: str,
        now: datetime,
        day_start: datetime,
        month_start: datetime,
        owner: str | None = None,
        lease_until: datetime | None = None,
    ) -> int:
        """Creates the job with its quota held and returns its id, or raises the QuotaExceededError of the first
        limit that refuses (the ledger row and the counters come from triggers on the job row). The job is born
        held by `owner` until `lease_until`, in the same statement: no moment exists when it is nobody's.

        One INSERT ... SELECT ... FROM verdict WHERE nothing refuses ... RETURNING id, group-committed: SQLite
        runs a statement atomically, so no number of simultaneous requests can pass a limit, and the statement
        reads the server's limits itself (defaults and ceilings applied), so a reservation that runs after a
        moderator's change committed is judged by the new limits.

        An INSERT that inserts nothing returns nothing, so a refused request's reason comes from the same
        verdict, read from the state committed right after the refusal: its figures word the refusal (one read
        on a reader: refusals do not queue behind the writer, which the benchmark showed costs a third of the
        throughput when a server is at its limit). When it finds room (a job ended or a limit was raised in
        between), the request is decided alone in one transaction, so it cannot go round again.
        """
        parameters = {
            **self._policy,
            **_member_keys(requester),
            **_window_keys(now, day_start, month_start),
            "channel": requester.channel_id,
            "backend": backend,
            "mode": request.mode.value,
            "prompt": request.prompt,
            "title": request.title,
            "tags": request.tags,
            "instrumental": int(request.instrumental),
            "model": request.model,
            "duration": request.duration_seconds,
            "owner": owner,
            "lease_until": to_db_time(lease_until) if lease_until else None,
        }
        locks = self._locks(requester.guild_id)
        rows = await self._database.write_returning(self._sql.reserve, parameters, locks=locks)
        if rows:
            return int(rows[0]["id"])
        # Refused: the same verdict, read from the committed state right after (on a reader, so refusals do not
        # queue behind the writer), names the limit. If a job ended in between and it finds room, the request
        # is decided again alone in one transaction.
        verdict = await self._database.fetch_one(self._sql.verdict, parameters)
        assert verdict is not None
        if verdict["refused_by"] is None:
            async with self._database.transaction(locks=locks) as transaction:
                verdict = await transaction.fetch_one(self._sql.verdict, parameters)
                assert verdict is not None
                if verdict["refused_by"] is None:  # the same state, the same rules: this INSERT inserts
                    rows = await transaction.fetch_all(self._sql.reserve, parameters)
                    return int(rows[0]["id"])
        raise _refusal_from_row(verdict)

    async def start_queued(self, job_id: int, guild_id: int, owner: str) -> int | None:
        """A queued job takes a free slot when it is first in its server's line (FIFO by id): None once it has
        (it then counts as running), else its place in line (1 = next). Decided under the server's lock, so two
        processes never start two jobs for one slot, and never out of order."""
        async with self._database.transaction(locks=self._locks(guild_id)) as transaction:
            place = await transaction.fetch_one(
                f"""SELECT count(*) FROM jobs
                    WHERE guild_id = :guild AND queued = 1 AND status IN {ACTIVE} AND id <= :job""",
                {**STATUSES, "guild": guild_id, "job": job_id},
            )
            position = int(place[0]) if place else 0
            if position != 1:
                return position or None
            limits = await transaction.fetch_one(self._sql.limits, {**self._policy, "guild": guild_id})
            running = await transaction.fetch_one(
                "SELECT used FROM quota_counters WHERE guild_id = ? AND scope = 'running' AND period = ''",
                (guild_id,),
            )
            assert limits is not None
            allowed, busy = limits["max_concurrent"], int(running["used"]) if running else 0
            if allowed != -1 and busy >= allowed:
                return 1
            await transaction.execute(
                "UPDATE jobs SET queued = 0 WHERE id = ? AND owner = ? AND queued = 1", (job_id, owner)
            )
            return None

    async def snapshot(
        self, requester: Requester, *, now: datetime, day_start: datetime, month_start: datetime
    ) -> QuotaSnapshot:
        """The member's standing against every limit, read by the reserving statement's own expressions."""
        row = await self._database.fetch_one(
            self._sql.verdict, {**self._policy, **_member_keys(requester), **_window_keys(now, day_start, month_start)}
        )
        assert row is not None
        return QuotaSnapshot(
            limits=_limits_from_row(row, self.operator.ceilings).limits,
            blocked=bool(row["blocked"]),
            block_reason=row["block_reason"],
            member_today=row["member_today"],
            server_today=row["server_today"],
            server_month=row["server_month"],
            running=row["running"],
            member_today_left=row["member_today_left"],
            server_today_left=row["server_today_left"],
            server_month_left=row["server_month_left"],
            cooldown_ends=from_db_time(row["cooldown_ends"]) if row["cooldown_ends"] else None,
            budget=self._budget_from_row(row),
            queued=row["queued"],
        )

    async def guild_limits(self, guild_id: int) -> GuildLimits:
        """A server's limits as they stand now: defaults for what its moderators never set, ceilings applied."""
        row = await self._database.fetch_one(self._sql.limits, {**self._policy, "guild": guild_id})
        assert row is not None
        return _limits_from_row(row, self.operator.ceilings)

    async def budget(self, *, day_start: datetime, month_start: datetime) -> BudgetStatus:
        """The bot-wide budget, what all servers together used of it today and this month, and what is left."""
        keys = {"day_key": to_db_time(day_start)[:10], "month_key": to_db_time(month_start)[:7]}
        row = await self._database.fetch_one(self._sql.budget, {**self._policy, **keys})
        assert row is not None
        return self._budget_from_row(row)

    def _budget_from_row(self, row: Row) -> BudgetStatus:
        return BudgetStatus(
            self.operator.global_daily,
            self.operator.global_monthly,
            used_today=row["bot_today"],
            used_month=row["bot_month"],
            left_today=row["bot_today_left"],
            left_month=row["bot_month_left"],
        )

    async def set_limits(
        self, guild_id: int, changes: Mapping[str, int], *, actor_id: int, now: datetime
    ) -> list[LimitChange]:
        """Stores the new values and logs each one that changed (old and new values as chosen, before ceilings)."""
        unknown = set(changes) - set(LIMIT_NAMES)
        if unknown:
            raise ValueError(f"unknown limits: {sorted(unknown)}")
        async with self._database.transaction(locks=self._locks(guild_id)) as connection:
            row = await connection.fetch_one(self._sql.limits, {**self._policy, "guild": guild_id})
            assert row is not None
            before = _limits_from_row(row, self.operator.ceilings).configured
            await connection.execute(
                "INSERT INTO guild_limits (guild_id) VALUES (?) ON CONFLICT (guild_id) DO NOTHING", (guild_id,)
            )
            applied: list[LimitChange] = []
            for name, value in changes.items():
                await connection.execute(f"UPDATE guild_limits SET {name} = ? WHERE guild_id = ?", (value, guild_id))
                old = getattr(before, name)
                if old != value:
                    applied.append(LimitChange(name, old, value))
                    await log_moderation(connection, guild_id, actor_id, "set_limit", name, str(old), str(value), now)
            await connection.execute(
                "UPDATE guild_limits SET updated_by = ?, updated_at = ? WHERE guild_id = ?",
                (actor_id, to_db_time(now), guild_id),
            )
        return applied

    async def block(self, guild_id: int, user_id: int, *, reason: str | None, actor_id: int, now: datetime) -> None:
        async with self._database.transaction(locks=self._locks(guild_id)) as connection:
            await connection.execute(
                """INSERT INTO blocked_members (guild_id, user_id, reason, blocked_by, blocked_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (guild_id, user_id) DO UPDATE SET reason = excluded.reason,
                       blocked_by = excluded.blocked_by, blocked_at = excluded.blocked_at""",
                (guild_id, user_id, reason, actor_id, to_db_time(now)),
            )
            await log_moderation(connection, guild_id, actor_id, "block", str(user_id), None, reason, now)

    async def unblock(self, guild_id: int, user_id: int, *, actor_id: int, now: datetime) -> bool:
        """False when the member was not blocked (nothing is logged then)."""
        async with self._database.transaction(locks=self._locks(guild_id)) as connection:
            removed = (
                await connection.execute(
                    "DELETE FROM blocked_members WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
                )
                == 1
            )
            if removed:
                await log_moderation(connection, guild_id, actor_id, "unblock", str(user_id), None, None, now)
            return removed

    async def usage(self, guild_id: int, since: datetime | None) -> UsageReport:
        start = to_db_time(since) if since else ""
        row = await self._database.fetch_one(
            f"""SELECT count(*) AS requested,
                       count(*) FILTER (WHERE status = :status_delivered) AS delivered,
                       count(*) FILTER (WHERE status = :status_failed) AS failed,
                       count(*) FILTER (WHERE charged = 0) AS refunded,
                       count(*) FILTER (WHERE status IN {ACTIVE}) AS running,
                       count(*) FILTER (WHERE charged = 1) AS charged,
                       count(*) FILTER (WHERE status IN {ACTIVE} AND queued = 1) AS queued
                FROM jobs WHERE guild_id = :guild AND created_at >= :start""",
            {**STATUSES, "guild": guild_id, "start": start},
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
            queued=row["queued"],
            charged_by_backend=tuple((backend["backend"], backend["generations"]) for backend in backends),
            top_members=tuple((member["requester_id"], member["generations"]) for member in top),
        )


async def log_moderation(
    connection: Transaction,
    guild_id: int,
    actor_id: int,
    action: str,
    subject: str,
    old: str | None,
    new: str | None,
    now: datetime,
) -> None:
    """One row of the audit log: who changed what, from which value to which, in the caller's transaction."""
    await connection.execute(
        """INSERT INTO moderation_log (guild_id, actor_id, action, subject, old_value, new_value, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)""",
        (guild_id, actor_id, action, subject, old, new, to_db_time(now)),
    )
