"""Fixtures for the fake Suno task API tests: a manual clock, the server and a keyed client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fake_sunoapi.support import ManualClock
from tests.fakes.sunoapi import FakeSunoTaskApi, TaskTimings


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def api(clock: ManualClock) -> AsyncIterator[FakeSunoTaskApi]:
    async with FakeSunoTaskApi(
        clock=clock, timings=TaskTimings(text_after=10, first_after=20, success_after=30)
    ) as fake:
        yield fake


@pytest.fixture
async def session(api: FakeSunoTaskApi) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {api.api_key}"}) as client:
        yield client
