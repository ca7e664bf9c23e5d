"""Retrying idempotent work: exponential backoff with full jitter, for the calls that are safe to repeat."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """`attempts` tries in all; before try n+1 sleep a random time up to base_delay * 2**n (capped)."""

    attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 30.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


async def retry(
    operation: Callable[[], Awaitable[T]],
    *,
    backoff: Backoff,
    should_retry: Callable[[Exception], bool],
    what: str,
) -> T:
    """Runs `operation` until it succeeds, fails with an error not worth retrying, or runs out of tries."""
    for attempt in range(backoff.attempts):
        try:
            return await operation()
        except Exception as error:
            if attempt + 1 >= backoff.attempts or not should_retry(error):
                raise
            pause = backoff.delay(attempt)
            log.warning("%s failed (%s); retry %d/%d in %.1fs", what, error, attempt + 1, backoff.attempts - 1, pause)
            await asyncio.sleep(pause)
    raise AssertionError("unreachable: the last attempt returns or raises")
