"""Quota reservations on PostgreSQL from two real processes at once: throughput and grants past the limit, on one
server (every reservation waits for the server's lock) and spread over 50 servers."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier

from bot.clock import utc_now
from bot.errors import QuotaExceededError
from bot.models import GenerationMode, GenerationRequest, QuotaLimits, Requester
from bot.quota import QuotaService
from bot.settings import Settings
from bot.storage import QuotaStore
from bot.storage.postgres import PostgresDatabase

PROCESSES = 2
CONCURRENCY = 100  # reservations in flight per process
POOL_SIZE = Settings.model_fields["database_pool_size"].default  # the bot's own


@dataclass(frozen=True, slots=True)
class Measured:
    per_second: float
    attempts: int
    granted: int
    limit: int  # all servers' limits together
    over: int  # grants past a server's limit, summed over the servers


async def _reserve_all(url: str, attempts: list[tuple[int, int]], limits: QuotaLimits, start: Barrier) -> float:
    async with PostgresDatabase.open(url, pool_size=POOL_SIZE) as database:
        quota = QuotaService(QuotaStore(database, defaults=limits), clock=utc_now)
        request = GenerationRequest(GenerationMode.DESCRIPTION, "bench")
        queue = list(attempts)

        async def worker() -> None:
            while queue:
                guild, user = queue.pop()
                with contextlib.suppress(QuotaExceededError):  # refusals past the limit are expected
                    await quota.reserve_generation(Requester(guild, 1, user), request, backend="bench")

        await asyncio.to_thread(start.wait)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return time.perf_counter() - started


def _process(url: str, attempts: list[tuple[int, int]], limits: QuotaLimits, start: Barrier) -> float:
    return asyncio.run(_reserve_all(url, attempts, limits, start))


async def measure(url: str, *, attempts: int, guilds: int) -> Measured:
    """`attempts` reservations over `guilds` servers, split between two processes, against a daily limit of
    three quarters of each server's share; `url` names an empty database (migrated here first)."""
    per_guild = attempts // guilds
    limit = per_guild * 3 // 4
    limits = QuotaLimits(daily=limit, monthly=-1, per_member_daily=-1, cooldown_seconds=0, max_concurrent=-1)
    async with PostgresDatabase.open(url, pool_size=1):
        pass  # migrated once, before the clock starts
    work = [(1 + n % guilds, n) for n in range(per_guild * guilds)]
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Barrier(PROCESSES)
        with context.Pool(PROCESSES) as pool:
            shares = [work[n::PROCESSES] for n in range(PROCESSES)]
            pending = [pool.apply_async(_process, (url, share, limits, start)) for share in shares]
            elapsed = await asyncio.to_thread(lambda: max(result.get(timeout=600) for result in pending))
    async with PostgresDatabase.open(url, pool_size=1) as database:
        rows = await database.fetch_all("SELECT guild_id, count(*) AS granted FROM jobs GROUP BY guild_id")
    granted = sum(row["granted"] for row in rows)
    over = sum(max(0, row["granted"] - limit) for row in rows)
    return Measured(len(work) / elapsed, len(work), granted, limit * guilds, over)
