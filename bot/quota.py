"""Quota policy: whether a server may start another generation, reserved atomically in the database."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import Clock, start_of_utc_day
from bot.errors import QuotaExceededError
from bot.models import GenerationRequest, Requester
from bot.storage import QuotaStore


class QuotaService:
    """Reserves one generation against the server's UTC-day limit; refunds happen when a job ends empty."""

    def __init__(self, store: QuotaStore, *, clock: Clock, daily_limit: int) -> None:
        self._store = store
        self._clock = clock
        self._daily_limit = daily_limit

    async def reserve_generation(self, requester: Requester, request: GenerationRequest, *, backend: str) -> int:
        """Creates the job with its quota held and returns its id, or raises QuotaExceededError."""
        now = self._clock()
        day_start = start_of_utc_day(now)
        if self._daily_limit == 0:
            raise QuotaExceededError("Music generation is switched off on this server.", limit="daily")
        job_id = await self._store.reserve_job(
            requester,
            request,
            backend=backend,
            now=now,
            day_start=day_start,
            daily_limit=self._daily_limit,
        )
        if job_id is None:
            resets = int((day_start + timedelta(days=1)).timestamp())
            raise QuotaExceededError(
                f"This server has used all {self._daily_limit} of today's generations. "
                f"The daily limit resets <t:{resets}:R> (midnight UTC).",
                limit="daily",
            )
        return job_id
