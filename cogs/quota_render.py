"""Rendering for quotas: refusals, the limits moderators set, usage reports and what a member has left."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import discord

from bot.errors import QuotaExceededError
from bot.models import CEILING_NAMES, FORGOTTEN_MEMBER, UNLIMITED, BudgetStatus, GuildLimits, LimitChange, UsageReport
from bot.quota import QuotaStatus, UsagePeriod
from cogs.i18n import Locale, t

NOT_ALLOWED_MESSAGE = t(None, "quota.not_allowed")
BLOCKED_MESSAGE = t(None, "quota.blocked")
# Each has its sentence "quota.refused.<limit>" with the placeholders {value}, {used} and {when}.
_REFUSAL_LIMITS = (
    "cooldown_seconds",
    "per_member_daily",
    "daily",
    "monthly",
    "global_daily",
    "global_monthly",
    "max_concurrent",
    "max_queued",
)
_SERVER_SWITCHES = ("daily", "monthly", "max_concurrent")
"""The server's limits whose 0 switches generation off (a per-member limit of 0 reads as "all 0 used")."""

LIMIT_LABELS = {
    "daily": "Server per UTC day",
    "monthly": "Server per UTC month",
    "per_member_daily": "Each member per UTC day",
    "cooldown_seconds": "Cooldown between a member's requests",
    "max_concurrent": "Running at once",
    "max_queued": "Waiting in line",
}
_PERIOD_WORDS = {
    UsagePeriod.DAY: "today (UTC)",
    UsagePeriod.WEEK: "the last 7 days",
    UsagePeriod.MONTH: "this month (UTC)",
    UsagePeriod.ALL: "all time",
}


def discord_time(moment: datetime) -> str:
    """A Discord timestamp that each reader sees in their own time zone, as "in 3 hours"."""
    return f"<t:{int(moment.timestamp())}:R>"


def render_quota_refusal(refusal: QuotaExceededError, locale: Locale = None) -> str:
    """What a member is told when a limit refuses their generation: which limit, and when it frees up."""
    limit, value, used = refusal.limit, refusal.value, refusal.used
    when = discord_time(refusal.frees_at) if refusal.frees_at else t(locale, "quota.later")
    if limit == "allowed_guilds":
        return t(locale, "quota.not_allowed")
    if limit == "blocked":
        words = t(locale, "quota.blocked")
        return words + (
            " " + t(locale, "quota.block_reason", reason=refusal.block_reason) if refusal.block_reason else ""
        )
    if value == 0 and limit in ("global_daily", "global_monthly"):
        return t(locale, "quota.operator_off")
    if value == 0 and limit in _SERVER_SWITCHES:
        return t(locale, "quota.server_off", limit=limit)
    if limit in _REFUSAL_LIMITS:
        return t(locale, f"quota.refused.{limit}", value=value, used=used, when=when)
    return t(locale, "quota.refused")


def describe_limit(name: str, value: int) -> str:
    if name == "cooldown_seconds":
        return "none" if value == 0 else f"{value} s"
    if value == UNLIMITED:
        return "unlimited"
    if name == "max_queued" and value == 0:
        return "no line (0): requests beyond the running limit are refused"
    return "off (0)" if value == 0 else str(value)


def describe_in_force(name: str, chosen: int, ceiling: int) -> str:
    """A limit as chosen, and what the bot's ceiling makes of it: "unlimited → up to 50 (the bot's ceiling)"."""
    if name not in CEILING_NAMES or ceiling == UNLIMITED or (chosen != UNLIMITED and chosen <= ceiling):
        return describe_limit(name, chosen)
    if ceiling == 0:
        return f"{describe_limit(name, chosen)} → off (0) (the bot's ceiling)"
    capped = f"up to {ceiling}" if chosen == UNLIMITED else str(ceiling)
    return f"{describe_limit(name, chosen)} → {capped} (the bot's ceiling)"


def render_limits(record: GuildLimits, changes: list[LimitChange] | None = None) -> discord.Embed:
    embed = discord.Embed(title="🎛️ Music limits for this server", colour=discord.Colour.blurple())
    changed = {change.name: change for change in changes or []}
    chosen, ceilings = record.configured, record.ceilings
    for name, label in LIMIT_LABELS.items():
        value = describe_in_force(name, getattr(chosen, name), getattr(ceilings, name))
        if name in changed:
            value = f"{describe_limit(name, changed[name].old)} → **{value}**"
        source = "set here" if name in record.overridden else "default"
        embed.add_field(name=label, value=f"{value} · {source}", inline=False)
    if record.updated_by is not None and record.updated_at is not None:
        embed.set_footer(text="Last changed by a moderator")
        embed.description = f"Last changed by <@{record.updated_by}> {discord_time(record.updated_at)}."
    else:
        embed.description = "No moderator has changed these yet; they are the bot's defaults."
    capped = [
        f"{LIMIT_LABELS[name]}: {'off (0)' if getattr(ceilings, name) == 0 else f'at most {getattr(ceilings, name)}'}"
        for name in CEILING_NAMES
        if getattr(ceilings, name) != UNLIMITED
    ]
    if capped:
        embed.add_field(
            name="The bot's ceilings (set by its operator; no server can go above them)",
            value="\n".join(capped),
            inline=False,
        )
    embed.add_field(
        name="How to change",
        value="`/music-admin quota daily:10 cooldown_seconds:60` … `-1` means unlimited, `0` switches generation off."
        + (" Under a ceiling, `-1` means as many as the ceiling allows." if capped else ""),
        inline=False,
    )
    return embed


def describe_budget(limit: int, used: int, left: int | None) -> str:
    if left is None:
        return f"no limit ({used} used)"
    if limit == 0:
        return "off (0): the operator switched generation off"
    return f"**{left}** of {limit} left ({used} used)"


def render_budget(budget: BudgetStatus) -> str:
    """The bot-wide budget in numbers only: moderators of one server learn nothing about the others but totals."""
    if not budget.is_set:
        return "none: the bot's operator has set no bot-wide budget"
    today = describe_budget(budget.daily, budget.used_today, budget.left_today)
    month = describe_budget(budget.monthly, budget.used_month, budget.left_month)
    return f"Today (UTC): {today}\nThis month (UTC): {month}"


def _member(member_id: int) -> str:
    return "members who asked to be forgotten" if member_id == FORGOTTEN_MEMBER else f"<@{member_id}>"


def render_usage(report: UsageReport, period: UsagePeriod, *, costs: Mapping[str, tuple[int, str]]) -> discord.Embed:
    """`costs`: each backend's price of one generation and its unit (AI/ML API tokens, Suno credits...)."""
    embed = discord.Embed(title=f"📊 Music usage: {_PERIOD_WORDS[period]}", colour=discord.Colour.blurple())
    embed.add_field(name="Requested", value=str(report.requested))
    embed.add_field(name="Delivered", value=str(report.delivered))
    embed.add_field(name="Failed", value=str(report.failed))
    embed.add_field(name="Refunded", value=str(report.refunded))
    embed.add_field(name="Running now", value=f"{report.running - report.queued} (+ {report.queued} in line)")
    spent = [
        f"{backend}: {count} x {costs[backend][0]:,} = **{count * costs[backend][0]:,}** {costs[backend][1]}"
        for backend, count in report.charged_by_backend
        if backend in costs
    ]
    embed.add_field(name="Spent", value="\n".join(spent) or "nothing", inline=False)
    top = "\n".join(
        f"{rank}. {_member(member)}: {count} generation{'s' if count != 1 else ''}"
        for rank, (member, count) in enumerate(report.top_members, start=1)
    )
    embed.add_field(name="Top members", value=top or "nobody yet", inline=False)
    embed.add_field(name="Bot-wide budget (all servers together)", value=render_budget(report.budget), inline=False)
    return embed


def _left(left: int | None, limit: int) -> str:
    if left is None:
        return "unlimited"
    return f"**{left}** of {limit} left"


def _add_left(embed: discord.Embed, name: str, left: int | None, limit: int, resets: datetime) -> None:
    """One "what is left, and when it resets" line of /music-quota."""
    embed.add_field(name=name, value=f"{_left(left, limit)} · resets {discord_time(resets)}", inline=False)


def render_quota_status(status: QuotaStatus) -> discord.Embed:
    snapshot, windows = status.snapshot, status.windows
    limits = snapshot.limits
    embed = discord.Embed(title="🎟️ Music generations left", colour=discord.Colour.blurple())
    if not status.allowed:
        embed.description = f"⛔ {NOT_ALLOWED_MESSAGE}"
    elif snapshot.blocked:
        embed.description = f"⛔ {BLOCKED_MESSAGE}"
    _add_left(embed, "This server today", snapshot.server_today_left, limits.daily, windows.next_day)
    _add_left(embed, "This server this month", snapshot.server_month_left, limits.monthly, windows.next_month)
    _add_left(embed, "You today", snapshot.member_today_left, limits.per_member_daily, windows.next_day)
    cooldown = f"ready {discord_time(snapshot.cooldown_ends)}" if snapshot.cooldown_ends else "ready now"
    embed.add_field(name="Your cooldown", value=cooldown)
    running_limit = "unlimited" if limits.max_concurrent == UNLIMITED else str(limits.max_concurrent)
    embed.add_field(name="Running now", value=f"{snapshot.running} (at most {running_limit} at once)")
    line_limit = "no limit" if limits.max_queued == UNLIMITED else f"at most {limits.max_queued}"
    embed.add_field(name="Waiting in line", value=f"{snapshot.queued} ({line_limit})")
    budget = status.budget
    if budget.is_set:
        _add_left(embed, "The bot today, all servers", budget.left_today, budget.daily, windows.next_day)
        _add_left(embed, "The bot this month, all servers", budget.left_month, budget.monthly, windows.next_month)
    return embed
