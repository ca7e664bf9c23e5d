"""The daily limit on a real SQLite file: exact under concurrency, refunded when nothing was delivered, UTC days."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import QuotaExceededError
from bot.models import FailureReason, GenerationMode, GenerationRequest, Requester
from bot.quota import QuotaService
from bot.storage import Database, JobStore, QuotaStore
from tests.conftest import FakeClock

REQUEST = GenerationRequest(GenerationMode.DESCRIPTION, "lofi beats")


def requester(user_id: int, guild_id: int = 1) -> Requester:
    return Requester(guild_id=guild_id, channel_id=10, user_id=user_id)


async def test_concurrent_reservations_never_pass_the_limit(database: Database, clock: FakeClock) -> None:
    quota = QuotaService(QuotaStore(database), clock=clock, daily_limit=5)
    results = await asyncio.gather(
        *(quota.reserve_generation(requester(user), REQUEST, backend="t") for user in range(50)),
        return_exceptions=True,
    )
    granted = [result for result in results if isinstance(result, int)]
    refused = [result for result in results if isinstance(result, QuotaExceededError)]
    assert len(granted) == 5
    assert len(set(granted)) == 5
    assert len(refused) == 45
    assert "used all 5 of today's generations" in refused[0].message
    assert "<t:" in refused[0].message  # when it resets, as a Discord timestamp


async def test_limit_is_per_server(database: Database, clock: FakeClock) -> None:
    quota = QuotaService(QuotaStore(database), clock=clock, daily_limit=1)
    await quota.reserve_generation(requester(1, guild_id=1), REQUEST, backend="t")
    await quota.reserve_generation(requester(1, guild_id=2), REQUEST, backend="t")
    with pytest.raises(QuotaExceededError):
        await quota.reserve_generation(requester(2, guild_id=1), REQUEST, backend="t")


async def test_refund_frees_a_slot(database: Database, clock: FakeClock) -> None:
    quota = QuotaService(QuotaStore(database), clock=clock, daily_limit=1)
    job_id = await quota.reserve_generation(requester(1), REQUEST, backend="t")
    with pytest.raises(QuotaExceededError):
        await quota.reserve_generation(requester(2), REQUEST, backend="t")
    await JobStore(database).finish(job_id, now=clock(), reason=FailureReason.API_UNAVAILABLE)
    await quota.reserve_generation(requester(2), REQUEST, backend="t")


async def test_day_rolls_over_at_utc_midnight(database: Database, clock: FakeClock) -> None:
    clock.now = clock.now.replace(hour=23, minute=59, second=59)
    quota = QuotaService(QuotaStore(database), clock=clock, daily_limit=1)
    await quota.reserve_generation(requester(1), REQUEST, backend="t")
    with pytest.raises(QuotaExceededError):
        await quota.reserve_generation(requester(1), REQUEST, backend="t")
    clock.advance(seconds=1)
    await quota.reserve_generation(requester(1), REQUEST, backend="t")


async def test_zero_disables_and_minus_one_is_unlimited(database: Database, clock: FakeClock) -> None:
    disabled = QuotaService(QuotaStore(database), clock=clock, daily_limit=0)
    with pytest.raises(QuotaExceededError, match="switched off"):
        await disabled.reserve_generation(requester(1), REQUEST, backend="t")
    unlimited = QuotaService(QuotaStore(database), clock=clock, daily_limit=-1)
    for user in range(30):
        await unlimited.reserve_generation(requester(user), REQUEST, backend="t")
