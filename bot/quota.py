"""Quota policy: which limit (if any) refuses a generation, and what a server and a member have left."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from bot.clock import Clock, start_of_utc_day
from bot.errors import QuotaExceededError, UserFacingError
from bot.models import (
    UNLIMITED,
    BudgetStatus,
    GenerationRequest,
    GuildLimits,
    LimitChange,
    QuotaSnapshot,
    Requester,
    UsageReport,
)
from bot.storage import QuotaStore

log = logging.getLogger(__name__)

NOT_ALLOWED_MESSAGE = "This bot's operator has not enabled music generation in this server."


def start_of_utc_month(moment: datetime) -> datetime:
    return start_of_utc_day(moment).replace(day=1)


def start_of_next_utc_month(moment: datetime) -> datetime:
    month_start = start_of_utc_month(moment)
    return (month_start + timedelta(days=32)).replace(day=1)


def discord_time(moment: datetime) -> str:
    """A Discord timestamp that each reader sees in their own time zone, as "in 3 hours"."""
    return f"<t:{int(moment.timestamp())}:R>"


@dataclass(frozen=True, slots=True)
class Windows:
    """The UTC day and month a moment falls in, and when each ends."""

    day_start: datetime
    month_start: datetime

    @classmethod
    def at(cls, moment: datetime) -> Windows:
        return cls(start_of_utc_day(moment), start_of_utc_month(moment))

    @property
    def next_day(self) -> datetime:
        return self.day_start + timedelta(days=1)

    @property
    def next_month(self) -> datetime:
        return start_of_next_utc_month(self.month_start)


def _left(limit: int, used: int) -> int | None:
    """Generations left under a count limit; None when unlimited."""
    return None if limit == UNLIMITED else max(0, limit - used)


def refusal_for(snapshot: QuotaSnapshot, now: datetime) -> QuotaExceededError | None:
    """The first limit that refuses, in order: block, a limit at 0 (the operator's budget, then the server's),
    cooldown, per member, server daily, server monthly, the bot's daily and monthly budget, running at once.

    The server's own limits come before the bot-wide budget, so a member hears of the limit they can see in
    `/music-quota`; running at once comes last, because "try again when one finishes" is only true then."""
    limits, budget, windows = snapshot.limits, snapshot.budget, Windows.at(now)
    if snapshot.blocked:
        reason = f" Reason: {snapshot.block_reason}" if snapshot.block_reason else ""
        return QuotaExceededError(
            f"A moderator has blocked you from generating music on this server.{reason}", limit="blocked"
        )
    for name, value in (("global_daily", budget.daily), ("global_monthly", budget.monthly)):
        if value == 0:
            return QuotaExceededError(
                "This bot's operator has switched music generation off for now (the bot-wide budget is 0).",
                limit=name,
            )
    for name, value in (
        ("daily", limits.daily),
        ("monthly", limits.monthly),
        ("max_concurrent", limits.max_concurrent),
    ):
        if value == 0:
            return QuotaExceededError(
                f"Music generation is switched off on this server (a moderator set the {name} limit to 0).",
                limit=name,
            )
    if snapshot.member_last_request is not None and limits.cooldown_seconds > 0:
        ready_at = snapshot.member_last_request + timedelta(seconds=limits.cooldown_seconds)
        if now < ready_at:
            return QuotaExceededError(
                f"Slow down: this server allows one request every {limits.cooldown_seconds} seconds per member. "
                f"You can ask again {discord_time(ready_at)}.",
                limit="cooldown_seconds",
            )
    if _left(limits.per_member_daily, snapshot.member_today) == 0:
        return QuotaExceededError(
            f"You have used all {limits.per_member_daily} of your generations for today on this server. "
            f"Your limit resets {discord_time(windows.next_day)} (midnight UTC).",
            limit="per_member_daily",
        )
    if _left(limits.daily, snapshot.server_today) == 0:
        return QuotaExceededError(
            f"This server has used all {limits.daily} of today's generations. "
            f"The daily limit resets {discord_time(windows.next_day)} (midnight UTC).",
            limit="daily",
        )
    if _left(limits.monthly, snapshot.server_month) == 0:
        return QuotaExceededError(
            f"This server has used all {limits.monthly} of this month's generations. "
            f"The monthly limit resets {discord_time(windows.next_month)} (the 1st, UTC).",
            limit="monthly",
        )
    if budget.left_today == 0:
        return QuotaExceededError(
            f"The bot's daily budget is used up; it resets {discord_time(windows.next_day)} (midnight UTC).",
            limit="global_daily",
        )
    if budget.left_month == 0:
        return QuotaExceededError(
            f"The bot's monthly budget is used up; it resets {discord_time(windows.next_month)} (the 1st, UTC).",
            limit="global_monthly",
        )
    if _left(limits.max_concurrent, snapshot.running) == 0:
        return QuotaExceededError(
            f"This server already has {snapshot.running} generations running, the most allowed at once. "
            "Try again when one of them finishes.",
            limit="max_concurrent",
        )
    return None


def ceiling_refusal(name: str, value: int, ceiling: int) -> str | None:
    """Why a moderator may not set `name` to `value` under the bot's ceiling (-1 = none), or None."""
    if ceiling == UNLIMITED or value <= ceiling:
        return None
    if ceiling == 0:
        return f"`{name}` cannot be {value}: this bot's operator allows no generations here (the bot's ceiling is 0)."
    return (
        f"`{name}` cannot be {value}: this bot's operator allows at most {ceiling} (the bot's ceiling). "
        f'Use {ceiling} or less, or -1 for "up to {ceiling}".'
    )


class UsagePeriod(StrEnum):
    """Usage report windows: the UTC day, the last 7 days, the UTC calendar month, or everything."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    ALL = "all"

    def since(self, now: datetime) -> datetime | None:
        windows = Windows.at(now)
        return {
            UsagePeriod.DAY: windows.day_start,
            UsagePeriod.WEEK: now - timedelta(days=7),
            UsagePeriod.MONTH: windows.month_start,
            UsagePeriod.ALL: None,
        }[self]


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """What `/music-quota` shows a member."""

    snapshot: QuotaSnapshot
    windows: Windows
    server_today_left: int | None
    server_month_left: int | None
    member_today_left: int | None
    cooldown_ends: datetime | None
    allowed: bool = True
    """False when the operator's allow-list leaves this server out."""

    @property
    def budget(self) -> BudgetStatus:
        return self.snapshot.budget


class QuotaService:
    """Reserves generations atomically against every limit, and lets moderators set limits and block members.

    The operator's limits come with the store (`QuotaStore(..., operator=...)`): the bot-wide budget and the
    ceilings are enforced in its SQL, the allow-list here, before anything is reserved."""

    def __init__(self, store: QuotaStore, *, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._operator = store.operator
        self._refused_guilds: set[int] = set()

    async def reserve_generation(self, requester: Requester, request: GenerationRequest, *, backend: str) -> int:
        """Creates the job with its quota held and returns its id, or raises QuotaExceededError."""
        if not self._operator.allows(requester.guild_id):
            if requester.guild_id not in self._refused_guilds:
                self._refused_guilds.add(requester.guild_id)
                log.warning(
                    "guild=%d is not in ALLOWED_GUILD_IDS: generation refused there (logged once per server)",
                    requester.guild_id,
                )
            raise QuotaExceededError(NOT_ALLOWED_MESSAGE, limit="allowed_guilds")
        now = self._clock()
        windows = Windows.at(now)

        def check(snapshot: QuotaSnapshot) -> None:
            refusal = refusal_for(snapshot, now)
            if refusal is not None:
                raise refusal

        return await self._store.reserve_job(
            requester,
            request,
            backend=backend,
            now=now,
            day_start=windows.day_start,
            month_start=windows.month_start,
            check=check,
        )

    async def status(self, requester: Requester) -> QuotaStatus:
        now = self._clock()
        windows = Windows.at(now)
        snapshot = await self._store.snapshot(requester, day_start=windows.day_start, month_start=windows.month_start)
        limits = snapshot.limits
        cooldown_ends = None
        if snapshot.member_last_request is not None and limits.cooldown_seconds > 0:
            ready_at = snapshot.member_last_request + timedelta(seconds=limits.cooldown_seconds)
            cooldown_ends = ready_at if ready_at > now else None
        return QuotaStatus(
            snapshot=snapshot,
            windows=windows,
            server_today_left=_left(limits.daily, snapshot.server_today),
            server_month_left=_left(limits.monthly, snapshot.server_month),
            member_today_left=_left(limits.per_member_daily, snapshot.member_today),
            cooldown_ends=cooldown_ends,
            allowed=self._operator.allows(requester.guild_id),
        )

    async def limits(self, guild_id: int) -> GuildLimits:
        return await self._store.guild_limits(guild_id)

    async def set_limits(self, guild_id: int, changes: Mapping[str, int], *, actor_id: int) -> list[LimitChange]:
        for name, value in changes.items():
            floor = 0 if name == "cooldown_seconds" else UNLIMITED
            if value < floor:
                raise UserFacingError(f"`{name}` cannot be {value}; use {floor} or more.")
            refusal = ceiling_refusal(name, value, self._operator.ceiling(name))
            if refusal is not None:
                raise UserFacingError(refusal)
        return await self._store.set_limits(guild_id, changes, actor_id=actor_id, now=self._clock())

    async def block(self, guild_id: int, user_id: int, *, reason: str | None, actor_id: int) -> None:
        await self._store.block(guild_id, user_id, reason=reason, actor_id=actor_id, now=self._clock())

    async def unblock(self, guild_id: int, user_id: int, *, actor_id: int) -> None:
        if not await self._store.unblock(guild_id, user_id, actor_id=actor_id, now=self._clock()):
            raise UserFacingError("That member is not blocked.")

    async def usage(self, guild_id: int, period: UsagePeriod) -> UsageReport:
        """The server's usage in the period, with the bot-wide budget's figures for today and this month."""
        now = self._clock()
        report = await self._store.usage(guild_id, period.since(now))
        return replace(report, budget=await self.budget(now))

    async def budget(self, now: datetime | None = None) -> BudgetStatus:
        windows = Windows.at(now or self._clock())
        return await self._store.budget(day_start=windows.day_start, month_start=windows.month_start)
