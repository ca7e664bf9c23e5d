"""Fixtures for the fake aimlapi audio tests: a manual clock, the server and a keyed client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fake_aimlapi_audio.support import ManualClock
from tests.fakes.aimlapi_audio import FakeAimlAudioApi


@pytest.fixture
def monotonic() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def fake(monotonic: ManualClock) -> AsyncIterator[FakeAimlAudioApi]:
    async with FakeAimlAudioApi(clock=monotonic) as api:
        yield api


@pytest.fixture
async def session(fake: FakeAimlAudioApi) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {fake.api_key}"}) as client:
        yield client
