"""Sharding in the fake Discord: a guild's shard, ids placed on a chosen shard, and the IDENTIFY limits.

Discord's rules (developers/events/gateway.mdx, "Sharding", "Session Start Limit" and "Rate limiting"):
a guild lives on shard `(guild_id >> 22) % shard_count`, events without a guild go to shard 0; IDENTIFY is
limited to 1,000 per 24 h and to one per 5 s in each of `max_concurrency` buckets (`shard_id %
max_concurrency`), a refused one gets opcode 9 INVALID_SESSION. A bad `shard` closes with 4010, a missing one
(when the bot must shard) with 4011.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes.discord_constants import DISCORD_EPOCH_MS

IDENTIFY_WINDOW = 5.0  # seconds per IDENTIFY and bucket
SESSION_START_TOTAL = 1000
SESSION_START_RESET = 86_400.0  # seconds: the daily IDENTIFY budget's window

CLOSE_INVALID_SHARD = 4010
CLOSE_SHARDING_REQUIRED = 4011
CLOSE_AUTHENTICATION_FAILED = 4004


def shard_for(guild_id: int | None, shard_count: int) -> int:
    """The shard a guild's events go to; shard 0 for events without a guild (e.g. DMs)."""
    return 0 if guild_id is None else (guild_id >> 22) % shard_count


class Snowflakes:
    """Discord-style ids whose timestamp part (bits 22+) comes from the fake clock, strictly increasing."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._increment = itertools.count()
        self._last = 0

    def __call__(self) -> int:
        milliseconds = int(self._clock() * 1000) - DISCORD_EPOCH_MS
        self._last = max((milliseconds << 22) | (next(self._increment) % 4096), self._last + 1)
        return self._last

    def on_shard(self, shard_id: int, shard_count: int) -> int:
        """The next id whose `(id >> 22) % shard_count == shard_id`: at most shard_count - 1 ms ahead of now."""
        candidate = self()
        while (candidate >> 22) % shard_count != shard_id:
            candidate = ((candidate >> 22) + 1) << 22
        self._last = candidate
        return candidate


class GatewayClose(Exception):
    """IDENTIFY refused by closing the websocket with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


def parse_shard(identify: dict[str, Any], shard_count: int) -> tuple[int, int]:
    """The [shard_id, shard_count] an IDENTIFY asks for, or GatewayClose 4010/4011 as Discord would."""
    shard = identify.get("shard")
    if shard is None:
        if shard_count > 1:
            raise GatewayClose(CLOSE_SHARDING_REQUIRED, "Sharding required")
        return 0, 1
    valid = (
        isinstance(shard, list)
        and len(shard) == 2
        and all(isinstance(part, int) and not isinstance(part, bool) for part in shard)
    )
    if not valid or shard[1] != shard_count or not 0 <= shard[0] < shard[1]:
        raise GatewayClose(CLOSE_INVALID_SHARD, "Invalid shard")
    return shard[0], shard[1]


@dataclass(frozen=True)
class InvalidSession:
    """One opcode 9 INVALID_SESSION the fake sent, with why."""

    at: float  # fake clock
    session_id: str
    shard: tuple[int, int] | None  # None for a refused RESUME
    reason: str  # "identify rate limit" or "resume refused"


class IdentifyBudget:
    """The token's session start limit: 1,000 IDENTIFYs a day, one per IDENTIFY_WINDOW in each bucket."""

    def __init__(self, *, max_concurrency: int, clock: Callable[[], float], window: float = IDENTIFY_WINDOW) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.max_concurrency = max_concurrency
        self.window = window
        self.total = SESSION_START_TOTAL
        self.remaining = SESSION_START_TOTAL
        self._clock = clock
        self._day_started: float | None = None
        self._last_in_bucket: dict[int, float] = {}

    def bucket(self, shard_id: int) -> int:
        return shard_id % self.max_concurrency

    def _roll_day(self, now: float) -> None:
        if self._day_started is not None and now - self._day_started >= SESSION_START_RESET:
            self._day_started, self.remaining = None, self.total

    def exhausted(self) -> bool:
        self._roll_day(self._clock())
        return self.remaining <= 0

    def try_start(self, shard_id: int) -> bool:
        """Spend one IDENTIFY for `shard_id`; False if its bucket had one less than `window` seconds ago."""
        now = self._clock()
        self._roll_day(now)
        bucket = self.bucket(shard_id)
        last = self._last_in_bucket.get(bucket)
        if last is not None and now - last < self.window:
            return False
        self._last_in_bucket[bucket] = now
        if self._day_started is None:
            self._day_started = now
        self.remaining -= 1
        return True

    def session_start_limit(self) -> dict[str, int]:
        """GET /gateway/bot's `session_start_limit`; `reset_after` in milliseconds."""
        now = self._clock()
        self._roll_day(now)
        elapsed = 0.0 if self._day_started is None else now - self._day_started
        return {
            "total": self.total,
            "remaining": max(self.remaining, 0),
            "reset_after": int((SESSION_START_RESET - elapsed) * 1000),
            "max_concurrency": self.max_concurrency,
        }
