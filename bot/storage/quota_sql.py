"""The quota verdict in SQL: each server's effective limits (defaults, ceilings), its counters and the bot's, and
the first limit that refuses, in the order the README gives; the one statement that reserves reads it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from bot.models import JobStatus
from bot.storage.database import Dialect

# Job statuses are bound as parameters (from the domain enum), never written into the SQL.
STATUSES: dict[str, str] = {f"status_{status.value}": status.value for status in JobStatus}
ACTIVE = "(" + ", ".join(f":status_{status.value}" for status in JobStatus if not status.is_finished) + ")"


def _capped(dialect: Dialect, value: str, ceiling: str) -> str:
    """The ceiling rule: no ceiling (-1) keeps the value; "unlimited" (-1) becomes the ceiling; else the smaller."""
    smaller = dialect.least(value, ceiling)
    return f"CASE WHEN {ceiling} = -1 THEN {value} WHEN {value} = -1 THEN {ceiling} ELSE {smaller} END"


# A server's limits as they stand in this statement: what its moderators stored (NULL = the default), the
# defaults, then the operator's ceilings. Every statement that needs limits reads them here, so a reservation
# sees a change the moment it commits, and there is one rule for "effective limit".
def _limits_cte(d: Dialect) -> str:
    return f"""
chosen AS (
    SELECT g.updated_by AS updated_by, g.updated_at AS updated_at,
           g.daily IS NOT NULL AS set_daily, g.monthly IS NOT NULL AS set_monthly,
           g.per_member_daily IS NOT NULL AS set_per_member_daily,
           g.cooldown_seconds IS NOT NULL AS set_cooldown_seconds,
           g.max_concurrent IS NOT NULL AS set_max_concurrent,
           g.max_queued IS NOT NULL AS set_max_queued,
           coalesce(g.daily, :default_daily) AS chosen_daily,
           coalesce(g.monthly, :default_monthly) AS chosen_monthly,
           coalesce(g.per_member_daily, :default_per_member_daily) AS chosen_per_member_daily,
           coalesce(g.cooldown_seconds, :default_cooldown_seconds) AS cooldown_seconds,
           coalesce(g.max_concurrent, :default_max_concurrent) AS chosen_max_concurrent,
           coalesce(g.max_queued, :default_max_queued) AS chosen_max_queued
    FROM (SELECT 1) AS one LEFT JOIN guild_limits AS g ON g.guild_id = :guild
),
lim AS (
    SELECT *,
           {_capped(d, "chosen_daily", ":ceiling_daily")} AS daily,
           {_capped(d, "chosen_monthly", ":ceiling_monthly")} AS monthly,
           {_capped(d, "chosen_per_member_daily", ":ceiling_per_member_daily")} AS per_member_daily,
           {_capped(d, "chosen_max_concurrent", ":ceiling_max_concurrent")} AS max_concurrent,
           {_capped(d, "chosen_max_queued", ":ceiling_max_queued")} AS max_queued
    FROM chosen
)"""


def _counter(scope: str, period: str) -> str:
    return (
        f"coalesce((SELECT used FROM quota_counters WHERE guild_id = :guild AND scope = {scope} "
        f"AND period = {period}), 0)"
    )


def _global_counter(scope: str, period: str) -> str:
    """All servers' use, summed: PostgreSQL keeps it in a few slots (by server) so that servers reserving at
    the same time do not all wait for one row; SQLite in one."""
    return f"coalesce((SELECT sum(used) FROM global_counters WHERE scope = '{scope}' AND period = {period}), 0)"


def _left(d: Dialect, limit: str, used: str) -> str:
    """Generations left under a count limit: NULL when it is unlimited (-1), never below 0; 0 refuses."""
    return f"CASE WHEN {limit} = -1 THEN NULL ELSE {d.greatest('0', f'{limit} - {used}')} END"


# The bot-wide budget: what all servers together used today and this month, and what is left of it (these
# columns are in the reserving statement's `standing` too).
_BOT_TODAY = _global_counter("day", ":day_key")
_BOT_MONTH = _global_counter("month", ":month_key")


def _budget_left(d: Dialect) -> str:
    return f"""{_left(d, ":global_daily", "bot_today")} AS bot_today_left,
           {_left(d, ":global_monthly", "bot_month")} AS bot_month_left"""


# When the member's cooldown ends: their last request that still counts (a refunded one does not) plus the
# cooldown, in the stored text format (whole seconds moved, the same microseconds kept) so that comparing it
# with :now as text is exact. NULL without a cooldown or without a request. A member who asked to be forgotten
# is no longer named by their jobs: their last request's time is kept in forgotten_requests instead.
def _ready_at(d: Dialect) -> str:
    return f"""CASE WHEN lim.cooldown_seconds > 0 THEN (
               SELECT {d.plus_seconds("max(requested_at)", "lim.cooldown_seconds")}
               FROM (SELECT * FROM (SELECT created_at AS requested_at FROM jobs
                                    WHERE guild_id = :guild AND requester_id = :user AND charged = 1
                                    ORDER BY created_at DESC LIMIT 1) AS own
                     UNION ALL
                     SELECT requested_at FROM forgotten_requests WHERE guild_id = :guild AND user_id = :user
                    ) AS requests) END"""


# The one quota rule set. `standing` holds every limit's figures; `verdict` names, in the README's order, the
# first limit that refuses (NULL: none does), and `refusal` the figures to word it. The reservation inserts
# only where `refused_by` is NULL; a refused reservation is worded from this same row, and /music-quota reads
# its columns, so no figure is computed twice. Order: blocked, switched off (the bot-wide budget, then this
# server), cooldown, per member, server daily, server monthly, the bot's daily and monthly budget, running at
# once: a member hears of the limit they can see in /music-quota before the bot-wide one, and "try again when
# one finishes" comes last because only then is it true.
def _verdict_cte(d: Dialect) -> str:
    return f"""{_limits_cte(d)},
counted AS MATERIALIZED (
    SELECT lim.*,
           EXISTS (SELECT 1 FROM blocked_members WHERE guild_id = :guild AND user_id = :user) AS blocked,
           (SELECT reason FROM blocked_members WHERE guild_id = :guild AND user_id = :user) AS block_reason,
           {_counter(":member_scope", ":day_key")} AS member_today,
           {_counter("'day'", ":day_key")} AS server_today,
           {_counter("'month'", ":month_key")} AS server_month,
           {_counter("'running'", "''")} AS running,
           {_counter("'queued'", "''")} AS queued,
           {_BOT_TODAY} AS bot_today,
           {_BOT_MONTH} AS bot_month,
           {_ready_at(d)} AS ready_at
    FROM lim
),
standing AS (
    SELECT counted.*,
           {_budget_left(d)},
           {_left(d, "per_member_daily", "member_today")} AS member_today_left,
           {_left(d, "daily", "server_today")} AS server_today_left,
           {_left(d, "monthly", "server_month")} AS server_month_left,
           {_left(d, "max_concurrent", "running")} AS running_left,
           {_left(d, "max_queued", "queued")} AS queue_left,
           CASE WHEN ready_at > :now THEN ready_at END AS cooldown_ends
    FROM counted
),
verdict AS (
    SELECT standing.*,
           CASE
               WHEN blocked THEN 'blocked'
               WHEN :global_daily = 0 THEN 'global_daily'
               WHEN :global_monthly = 0 THEN 'global_monthly'
               WHEN daily = 0 THEN 'daily'
               WHEN monthly = 0 THEN 'monthly'
               WHEN max_concurrent = 0 THEN 'max_concurrent'
               WHEN cooldown_ends IS NOT NULL THEN 'cooldown_seconds'
               WHEN member_today_left = 0 THEN 'per_member_daily'
               WHEN server_today_left = 0 THEN 'daily'
               WHEN server_month_left = 0 THEN 'monthly'
               WHEN bot_today_left = 0 THEN 'global_daily'
               WHEN bot_month_left = 0 THEN 'global_monthly'
               -- Every slot taken: the request waits in the server's line, unless that is full too (or off: 0).
               WHEN running_left = 0 AND queue_left = 0 AND max_queued = 0 THEN 'max_concurrent'
               WHEN running_left = 0 AND queue_left = 0 THEN 'max_queued'
           END AS refused_by,
           CASE WHEN running_left = 0 THEN 1 ELSE 0 END AS to_queue
    FROM standing
),
refusal AS (
    SELECT verdict.*,
           CASE refused_by
               WHEN 'global_daily' THEN :global_daily WHEN 'global_monthly' THEN :global_monthly
               WHEN 'daily' THEN daily WHEN 'monthly' THEN monthly WHEN 'per_member_daily' THEN per_member_daily
               WHEN 'cooldown_seconds' THEN cooldown_seconds WHEN 'max_concurrent' THEN max_concurrent
               WHEN 'max_queued' THEN max_queued
           END AS refused_value,
           CASE refused_by
               WHEN 'global_daily' THEN bot_today WHEN 'global_monthly' THEN bot_month
               WHEN 'daily' THEN server_today WHEN 'monthly' THEN server_month
               WHEN 'per_member_daily' THEN member_today WHEN 'max_concurrent' THEN running
               WHEN 'max_queued' THEN queued
           END AS refused_used
    FROM verdict
)"""


@dataclass(frozen=True, slots=True)
class QuotaStatements:
    """The quota SQL for one database engine."""

    # Every limit checked inside the one statement that inserts the job (-1 = unlimited, 0 = off), limits read
    # from guild_limits in the same statement, so no number of simultaneous requests can pass a limit.
    reserve: str
    # The same evaluation as a row: the standing /music-quota shows, and the refusal with when it frees up. A
    # block, a switched-off limit (one at 0 that refused before the cooldown; a per-member limit at 0 is "all 0
    # used today") and a full server do not free up by themselves.
    verdict: str
    limits: str
    budget: str


@cache
def quota_statements(d: Dialect) -> QuotaStatements:
    verdict_cte = _verdict_cte(d)
    return QuotaStatements(
        reserve=f"""
WITH {verdict_cte}
INSERT INTO jobs (guild_id, channel_id, requester_id, backend, mode, prompt, title, tags, instrumental, model,
                  duration_seconds, status, charged, created_at, owner, lease_until, queued)
SELECT CAST(:guild AS BIGINT), CAST(:channel AS BIGINT), CAST(:user AS BIGINT), CAST(:backend AS TEXT),
       CAST(:mode AS TEXT), CAST(:prompt AS TEXT), CAST(:title AS TEXT), CAST(:tags AS TEXT),
       CAST(:instrumental AS INTEGER), CAST(:model AS TEXT), CAST(:duration AS INTEGER),
       CAST(:status_reserved AS TEXT), 1, CAST(:now AS TEXT), CAST(:owner AS TEXT), CAST(:lease_until AS TEXT),
       to_queue
FROM verdict
WHERE refused_by IS NULL
RETURNING id
""",
        verdict=f"""
WITH {verdict_cte}
SELECT refusal.*,
       CASE
           WHEN refused_by = 'cooldown_seconds' THEN cooldown_ends
           WHEN refused_value = 0 AND refused_by != 'per_member_daily' THEN NULL
           WHEN refused_by IN ('per_member_daily', 'daily', 'global_daily') THEN :next_day
           WHEN refused_by IN ('monthly', 'global_monthly') THEN :next_month
       END AS frees_at
FROM refusal
""",
        limits=f"WITH {_limits_cte(d)} SELECT * FROM lim",
        budget=f"""
WITH used AS (SELECT {_BOT_TODAY} AS bot_today, {_BOT_MONTH} AS bot_month)
SELECT bot_today, bot_month, {_budget_left(d)} FROM used
""",
    )
