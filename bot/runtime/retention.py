"""The runtime's retention loop: past DATA_RETENTION_DAYS it erases the words of finished jobs and the data of
servers the bot left, and it drops forgotten members' cooldown marks once no cooldown can need them."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from bot.clock import Clock
from bot.storage import is_transient_storage_error
from bot.storage.erasure import ErasureStore

log = logging.getLogger(__name__)

DEPARTED_PER_ROUND = 10


@dataclass(frozen=True, slots=True)
class RetentionReport:
    jobs: int = 0
    guilds: int = 0
    cooldown_marks: int = 0


class DataRetention:
    """Every `interval` seconds, one round of bounded batches (each its own transaction, so votes, reservations
    and the other processes' rounds go on between them). `days` None keeps everything for ever."""

    def __init__(
        self,
        store: ErasureStore,
        *,
        clock: Clock,
        days: int | None,
        cooldown_horizon: timedelta,
        interval: float,
        batch: int = 200,
    ) -> None:
        self._store = store
        self._clock = clock
        self._keep = timedelta(days=days) if days is not None else None
        self._cooldown_horizon = cooldown_horizon
        self._interval = interval
        self._batch = batch

    async def run_round(self) -> RetentionReport:
        now = self._clock()
        marks = await self._store.forget_expired_requests(before=now - self._cooldown_horizon)
        if self._keep is None:
            return RetentionReport(cooldown_marks=marks)
        cutoff = now - self._keep
        jobs = 0
        while erased := await self._store.erase_old_jobs(created_before=cutoff, now=now, batch=self._batch):
            jobs += erased
            await asyncio.sleep(0)
        guilds = 0
        for guild_id in await self._store.departed_before(cutoff, DEPARTED_PER_ROUND):
            if await self._store.erase_departed_guild(guild_id, left_before=cutoff, now=now, batch=self._batch):
                guilds += 1
                log.info("guild=%d phase=erased (left more than %d days ago)", guild_id, self._keep.days)
        return RetentionReport(jobs=jobs, guilds=guilds, cooldown_marks=marks)

    async def run(self) -> None:
        while True:
            try:
                report = await self.run_round()
                if report.jobs or report.guilds:
                    log.info("retention erased %d jobs' words and %d servers' data", report.jobs, report.guilds)
            except Exception as error:
                if not is_transient_storage_error(error):
                    log.exception("the retention round failed; will try again")
                else:
                    log.warning("the retention round met a busy database (%s); will try again", error)
            await asyncio.sleep(self._interval)
