"""Fixtures for the fake ACE-Step server tests: a manual clock, the server (keyless, as ACE-Step starts) and a
client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fake_sunoapi.support import ManualClock
from tests.fakes.acestep import FakeAceStepApi, TaskTimings


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def ace(clock: ManualClock) -> AsyncIterator[FakeAceStepApi]:
    async with FakeAceStepApi(clock=clock, timings=TaskTimings(run_seconds=10)) as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client
