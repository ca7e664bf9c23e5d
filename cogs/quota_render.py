"""Rendering for quotas: refusals, the limits moderators set, usage reports and what a member has left."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import discord

from bot.errors import QuotaExceededError
from bot.models import CEILING_NAMES, FORGOTTEN_MEMBER, UNLIMITED, BudgetStatus, GuildLimits, LimitChange, UsageReport
from bot.quota import QuotaStatus, UsagePeriod
from cogs.i18n import Locale, t, tn

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

LIMIT_NAMES = ("daily", "monthly", "per_member_daily", "cooldown_seconds", "max_concurrent", "max_queued")
"""The limits a moderator sets, in the embed's order; each labelled by "limits.label.<name>"."""


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


def describe_limit(name: str, value: int, locale: Locale = None) -> str:
    if name == "cooldown_seconds":
        return t(locale, "limits.value.none") if value == 0 else t(locale, "limits.value.seconds", value=value)
    if value == UNLIMITED:
        return t(locale, "limits.value.unlimited")
    if name == "max_queued" and value == 0:
        return t(locale, "limits.value.no_line")
    return t(locale, "limits.value.off") if value == 0 else str(value)


def describe_in_force(name: str, chosen: int, ceiling: int, locale: Locale = None) -> str:
    """A limit as chosen, and what the bot's ceiling makes of it: "unlimited → up to 50 (the bot's ceiling)"."""
    if name not in CEILING_NAMES or ceiling == UNLIMITED or (chosen != UNLIMITED and chosen <= ceiling):
        return describe_limit(name, chosen, locale)
    if ceiling == 0:
        capped = t(locale, "limits.value.off")
    else:
        capped = t(locale, "limits.up_to", ceiling=ceiling) if chosen == UNLIMITED else str(ceiling)
    return t(locale, "limits.capped", chosen=describe_limit(name, chosen, locale), capped=capped)


def render_limits(
    record: GuildLimits, changes: list[LimitChange] | None = None, locale: Locale = None
) -> discord.Embed:
    embed = discord.Embed(title=t(locale, "limits.title"), colour=discord.Colour.blurple())
    changed = {change.name: change for change in changes or []}
    chosen, ceilings = record.configured, record.ceilings
    for name in LIMIT_NAMES:
        value = describe_in_force(name, getattr(chosen, name), getattr(ceilings, name), locale)
        if name in changed:
            value = f"{describe_limit(name, changed[name].old, locale)} → **{value}**"
        source = t(locale, "limits.source.here" if name in record.overridden else "limits.source.default")
        embed.add_field(name=t(locale, f"limits.label.{name}"), value=f"{value} · {source}", inline=False)
    if record.updated_by is not None and record.updated_at is not None:
        embed.set_footer(text=t(locale, "limits.footer"))
        when = discord_time(record.updated_at)
        embed.description = t(locale, "limits.changed_by", member=f"<@{record.updated_by}>", when=when)
    else:
        embed.description = t(locale, "limits.defaults")
    capped = [
        t(locale, "limits.ceiling_line", label=t(locale, f"limits.label.{name}"), value=_ceiling(ceiling, locale))
        for name in CEILING_NAMES
        if (ceiling := getattr(ceilings, name)) != UNLIMITED
    ]
    if capped:
        embed.add_field(name=t(locale, "limits.ceilings"), value="\n".join(capped), inline=False)
    how = t(locale, "limits.how") + (" " + t(locale, "limits.how_under_ceiling") if capped else "")
    embed.add_field(name=t(locale, "limits.how_title"), value=how, inline=False)
    return embed


def _ceiling(ceiling: int, locale: Locale) -> str:
    return t(locale, "limits.value.off") if ceiling == 0 else t(locale, "limits.at_most", ceiling=ceiling)


def describe_budget(limit: int, used: int, left: int | None, locale: Locale = None) -> str:
    if left is None:
        return t(locale, "usage.budget.no_limit", used=used)
    if limit == 0:
        return t(locale, "usage.budget.off")
    return t(locale, "usage.budget.left", left=left, limit=limit, used=used)


def render_budget(budget: BudgetStatus, locale: Locale = None) -> str:
    """The bot-wide budget in numbers only: moderators of one server learn nothing about the others but totals."""
    if not budget.is_set:
        return t(locale, "usage.budget.none")
    today = describe_budget(budget.daily, budget.used_today, budget.left_today, locale)
    month = describe_budget(budget.monthly, budget.used_month, budget.left_month, locale)
    return t(locale, "usage.budget.lines", today=today, month=month)


def _member(member_id: int, locale: Locale) -> str:
    return t(locale, "usage.forgotten") if member_id == FORGOTTEN_MEMBER else f"<@{member_id}>"


def render_usage(
    report: UsageReport, period: UsagePeriod, *, costs: Mapping[str, tuple[int, str]], locale: Locale = None
) -> discord.Embed:
    """`costs`: each backend's price of one generation and its unit (AI/ML API tokens, Suno credits...)."""
    title = t(locale, "usage.title", period=t(locale, f"usage.period.{period.value}"))
    embed = discord.Embed(title=title, colour=discord.Colour.blurple())
    for name, figure in (
        ("requested", report.requested),
        ("delivered", report.delivered),
        ("failed", report.failed),
        ("refunded", report.refunded),
    ):
        embed.add_field(name=t(locale, f"usage.{name}"), value=str(figure))
    running = t(locale, "usage.running_value", running=report.running - report.queued, queued=report.queued)
    embed.add_field(name=t(locale, "usage.running"), value=running)
    spent = [
        f"{backend}: {count} x {costs[backend][0]:,} = **{count * costs[backend][0]:,}** {costs[backend][1]}"
        for backend, count in report.charged_by_backend
        if backend in costs
    ]
    embed.add_field(name=t(locale, "usage.spent"), value="\n".join(spent) or t(locale, "usage.nothing"), inline=False)
    top = "\n".join(
        tn(locale, "usage.top_line", count, rank=rank, member=_member(member, locale))
        for rank, (member, count) in enumerate(report.top_members, start=1)
    )
    embed.add_field(name=t(locale, "usage.top"), value=top or t(locale, "usage.nobody"), inline=False)
    embed.add_field(name=t(locale, "usage.budget"), value=render_budget(report.budget, locale), inline=False)
    return embed


def _left(left: int | None, limit: int, locale: Locale) -> str:
    if left is None:
        return t(locale, "limits.value.unlimited")
    return t(locale, "status.left", left=left, limit=limit)


def _add_left(embed: discord.Embed, key: str, left: int | None, limit: int, resets: datetime, locale: Locale) -> None:
    """One "what is left, and when it resets" line of /music-quota."""
    value = t(locale, "status.resets", left=_left(left, limit, locale), when=discord_time(resets))
    embed.add_field(name=t(locale, f"status.{key}"), value=value, inline=False)


def render_quota_status(status: QuotaStatus, locale: Locale = None) -> discord.Embed:
    snapshot, windows = status.snapshot, status.windows
    limits = snapshot.limits
    embed = discord.Embed(title=t(locale, "status.title"), colour=discord.Colour.blurple())
    if not status.allowed:
        embed.description = f"⛔ {t(locale, 'quota.not_allowed')}"
    elif snapshot.blocked:
        embed.description = f"⛔ {t(locale, 'quota.blocked')}"
    _add_left(embed, "server_today", snapshot.server_today_left, limits.daily, windows.next_day, locale)
    _add_left(embed, "server_month", snapshot.server_month_left, limits.monthly, windows.next_month, locale)
    _add_left(embed, "you_today", snapshot.member_today_left, limits.per_member_daily, windows.next_day, locale)
    if snapshot.cooldown_ends:
        cooldown = t(locale, "status.ready_at", when=discord_time(snapshot.cooldown_ends))
    else:
        cooldown = t(locale, "status.ready_now")
    embed.add_field(name=t(locale, "status.cooldown"), value=cooldown)
    unlimited = t(locale, "limits.value.unlimited")
    running_limit = unlimited if limits.max_concurrent == UNLIMITED else str(limits.max_concurrent)
    running = t(locale, "status.running_value", running=snapshot.running, limit=running_limit)
    embed.add_field(name=t(locale, "status.running"), value=running)
    if limits.max_queued == UNLIMITED:
        line_limit = t(locale, "status.no_limit")
    else:
        line_limit = t(locale, "status.at_most", limit=limits.max_queued)
    queued = t(locale, "status.queued_value", queued=snapshot.queued, limit=line_limit)
    embed.add_field(name=t(locale, "status.queued"), value=queued)
    budget = status.budget
    if budget.is_set:
        _add_left(embed, "bot_today", budget.left_today, budget.daily, windows.next_day, locale)
        _add_left(embed, "bot_month", budget.left_month, budget.monthly, windows.next_month, locale)
    return embed
