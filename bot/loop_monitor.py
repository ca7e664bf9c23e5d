"""Event-loop health: how late the loop wakes up. A stall delays Discord heartbeats and the 3-second
acknowledgement, so stalls are logged as they happen (and each wake-up's lateness given to `observe`, the
metrics) and the longest one at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class LoopStallMonitor:
    def __init__(
        self, *, interval: float = 0.05, warn_after: float = 0.1, observe: Callable[[float], None] | None = None
    ) -> None:
        self._interval = interval
        self._warn_after = warn_after
        self._observe = observe
        self.longest = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self._interval)
            stall = loop.time() - started - self._interval
            self.longest = max(self.longest, stall)
            if self._observe is not None:
                self._observe(stall)
            if stall > self._warn_after:
                log.warning("event loop stalled for %.0f ms", stall * 1000)

    def report(self) -> None:
        log.info("longest event-loop stall: %.1f ms", self.longest * 1000)
