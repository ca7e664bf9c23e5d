"""Rendering for quotas: the limits moderators set, usage reports and what a member has left."""

from __future__ import annotations

from collections.abc import Mapping

import discord

from bot.models import UNLIMITED, GuildLimits, LimitChange, UsageReport
from bot.quota import QuotaStatus, UsagePeriod, discord_time

LIMIT_LABELS = {
    "daily": "Server per UTC day",
    "monthly": "Server per UTC month",
    "per_member_daily": "Each member per UTC day",
    "cooldown_seconds": "Cooldown between a member's requests",
    "max_concurrent": "Running at once",
}
_PERIOD_WORDS = {
    UsagePeriod.DAY: "today (UTC)",
    UsagePeriod.WEEK: "the last 7 days",
    UsagePeriod.MONTH: "this month (UTC)",
    UsagePeriod.ALL: "all time",
}


def describe_limit(name: str, value: int) -> str:
    if name == "cooldown_seconds":
        return "none" if value == 0 else f"{value} s"
    if value == UNLIMITED:
        return "unlimited"
    return "off (0)" if value == 0 else str(value)


def render_limits(record: GuildLimits, changes: list[LimitChange] | None = None) -> discord.Embed:
    embed = discord.Embed(title="🎛️ Music limits for this server", colour=discord.Colour.blurple())
    changed = {change.name: change for change in changes or []}
    for name, label in LIMIT_LABELS.items():
        value = describe_limit(name, getattr(record.limits, name))
        if name in changed:
            value = f"{describe_limit(name, changed[name].old)} → **{value}**"
        source = "set here" if name in record.overridden else "default"
        embed.add_field(name=label, value=f"{value} · {source}", inline=False)
    if record.updated_by is not None and record.updated_at is not None:
        embed.set_footer(text="Last changed by a moderator")
        embed.description = f"Last changed by <@{record.updated_by}> {discord_time(record.updated_at)}."
    else:
        embed.description = "No moderator has changed these yet; they are the bot's defaults."
    embed.add_field(
        name="How to change",
        value="`/music-admin quota daily:10 cooldown_seconds:60` … `-1` means unlimited, `0` switches generation off.",
        inline=False,
    )
    return embed


def render_usage(report: UsageReport, period: UsagePeriod, *, costs: Mapping[str, tuple[int, str]]) -> discord.Embed:
    """`costs`: each backend's price of one generation and its unit (AI/ML API tokens, Suno credits...)."""
    embed = discord.Embed(title=f"📊 Music usage: {_PERIOD_WORDS[period]}", colour=discord.Colour.blurple())
    embed.add_field(name="Requested", value=str(report.requested))
    embed.add_field(name="Delivered", value=str(report.delivered))
    embed.add_field(name="Failed", value=str(report.failed))
    embed.add_field(name="Refunded", value=str(report.refunded))
    embed.add_field(name="Running now", value=str(report.running))
    spent = [
        f"{backend}: {count} x {costs[backend][0]:,} = **{count * costs[backend][0]:,}** {costs[backend][1]}"
        for backend, count in report.charged_by_backend
        if backend in costs
    ]
    embed.add_field(name="Spent", value="\n".join(spent) or "nothing", inline=False)
    top = "\n".join(
        f"{rank}. <@{member}>: {count} generation{'s' if count != 1 else ''}"
        for rank, (member, count) in enumerate(report.top_members, start=1)
    )
    embed.add_field(name="Top members", value=top or "nobody yet", inline=False)
    return embed


def _left(left: int | None, limit: int) -> str:
    if left is None:
        return "unlimited"
    return f"**{left}** of {limit} left"


def render_quota_status(status: QuotaStatus) -> discord.Embed:
    limits, snapshot, windows = status.snapshot.limits, status.snapshot, status.windows
    embed = discord.Embed(title="🎟️ Music generations left", colour=discord.Colour.blurple())
    if snapshot.blocked:
        embed.description = "⛔ A moderator has blocked you from generating music on this server."
    embed.add_field(
        name="This server today",
        value=f"{_left(status.server_today_left, limits.daily)} · resets {discord_time(windows.next_day)}",
        inline=False,
    )
    embed.add_field(
        name="This server this month",
        value=f"{_left(status.server_month_left, limits.monthly)} · resets {discord_time(windows.next_month)}",
        inline=False,
    )
    embed.add_field(
        name="You today",
        value=f"{_left(status.member_today_left, limits.per_member_daily)} · resets {discord_time(windows.next_day)}",
        inline=False,
    )
    cooldown = f"ready {discord_time(status.cooldown_ends)}" if status.cooldown_ends else "ready now"
    embed.add_field(name="Your cooldown", value=cooldown)
    running_limit = "unlimited" if limits.max_concurrent == UNLIMITED else str(limits.max_concurrent)
    embed.add_field(name="Running now", value=f"{snapshot.running} (at most {running_limit} at once)")
    return embed
