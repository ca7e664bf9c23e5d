"""Quota policy: reserving a generation against every limit, what a server and a member have left, and limits."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from bot.clock import Clock
from bot.errors import QuotaExceededError, UserFacingError
from bot.metrics import Metrics
from bot.models import (
    UNLIMITED,
    BudgetStatus,
    GenerationRequest,
    GuildLimits,
    LimitChange,
    QuotaSnapshot,
    Requester,
    UsageReport,
    Windows,
)
from bot.storage import QuotaStore

log = logging.getLogger(__name__)


def ceiling_refusal(name: str, value: int, ceiling: int) -> UserFacingError | None:
    """Why a moderator may not set `name` to `value` under the bot's ceiling (-1 = none), or None."""
    if ceiling == UNLIMITED or value <= ceiling:
        return None
    values: dict[str, str | int] = {"name": name, "value": value, "ceiling": ceiling}
    if ceiling == 0:
        return UserFacingError(
            f"`{name}` cannot be {value}: this bot's operator allows no generations here (the bot's ceiling is 0).",
            key="limits.over_ceiling_off",
            values=values,
        )
    return UserFacingError(
        f"`{name}` cannot be {value}: this bot's operator allows at most {ceiling} (the bot's ceiling). "
        f'Use {ceiling} or less, or -1 for "up to {ceiling}".',
        key="limits.over_ceiling",
        values=values,
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
    """What `/music-quota` shows a member: their standing, and the UTC day and month it is counted in."""

    snapshot: QuotaSnapshot
    windows: Windows
    allowed: bool = True
    """False when the operator's allow-list leaves this server out."""

    @property
    def budget(self) -> BudgetStatus:
        return self.snapshot.budget


class QuotaService:
    """Reserves generations atomically against every limit, and lets moderators set limits and block members.

    The operator's limits come with the store (`QuotaStore(..., operator=...)`): the bot-wide budget and the
    ceilings are enforced in its SQL, the allow-list here, before anything is reserved."""

    def __init__(self, store: QuotaStore, *, clock: Clock, metrics: Metrics | None = None) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics or Metrics()
        self._operator = store.operator
        self._refused_guilds: set[int] = set()

    async def reserve_generation(
        self,
        requester: Requester,
        request: GenerationRequest,
        *,
        backend: str,
        owner: str | None = None,
        lease: timedelta | None = None,
    ) -> int:
        """Creates the job with its quota held (by `owner`, for `lease`) and returns its id, or raises the
        QuotaExceededError of the first limit that refuses: the allow-list here, every other limit in the store's
        one reserving statement."""
        if not self._operator.allows(requester.guild_id):
            if requester.guild_id not in self._refused_guilds:
                self._refused_guilds.add(requester.guild_id)
                log.warning(
                    "guild=%d is not in ALLOWED_GUILD_IDS: generation refused there (logged once per server)",
                    requester.guild_id,
                )
            self._metrics.quota_refused("allowed_guilds")
            raise QuotaExceededError("allowed_guilds")
        now = self._clock()
        windows = Windows.at(now)
        try:
            return await self._store.reserve_job(
                requester,
                request,
                backend=backend,
                now=now,
                day_start=windows.day_start,
                month_start=windows.month_start,
                owner=owner,
                lease_until=now + lease if lease else None,
            )
        except QuotaExceededError as refusal:
            self._metrics.quota_refused(refusal.limit)
            raise

    async def start_queued(self, job_id: int, guild_id: int, owner: str) -> int | None:
        """A job waiting in its server's line takes a free slot if it is first: None once started, else its
        place in line."""
        return await self._store.start_queued(job_id, guild_id, owner)

    async def status(self, requester: Requester) -> QuotaStatus:
        now = self._clock()
        windows = Windows.at(now)
        snapshot = await self._store.snapshot(
            requester, now=now, day_start=windows.day_start, month_start=windows.month_start
        )
        return QuotaStatus(snapshot=snapshot, windows=windows, allowed=self._operator.allows(requester.guild_id))

    async def limits(self, guild_id: int) -> GuildLimits:
        return await self._store.guild_limits(guild_id)

    async def set_limits(self, guild_id: int, changes: Mapping[str, int], *, actor_id: int) -> list[LimitChange]:
        for name, value in changes.items():
            floor = 0 if name == "cooldown_seconds" else UNLIMITED
            if value < floor:
                raise UserFacingError(
                    f"`{name}` cannot be {value}; use {floor} or more.",
                    key="limits.below_floor",
                    values={"name": name, "value": value, "floor": floor},
                )
            refusal = ceiling_refusal(name, value, self._operator.ceiling(name))
            if refusal is not None:
                raise refusal
        return await self._store.set_limits(guild_id, changes, actor_id=actor_id, now=self._clock())

    async def block(self, guild_id: int, user_id: int, *, reason: str | None, actor_id: int) -> None:
        await self._store.block(guild_id, user_id, reason=reason, actor_id=actor_id, now=self._clock())

    async def unblock(self, guild_id: int, user_id: int, *, actor_id: int) -> None:
        if not await self._store.unblock(guild_id, user_id, actor_id=actor_id, now=self._clock()):
            raise UserFacingError("That member is not blocked.", key="admin.not_blocked")

    async def usage(self, guild_id: int, period: UsagePeriod) -> UsageReport:
        """The server's usage in the period, with the bot-wide budget's figures for today and this month."""
        now = self._clock()
        report = await self._store.usage(guild_id, period.since(now))
        return replace(report, budget=await self.budget(now))

    async def budget(self, now: datetime | None = None) -> BudgetStatus:
        windows = Windows.at(now or self._clock())
        return await self._store.budget(day_start=windows.day_start, month_start=windows.month_start)
