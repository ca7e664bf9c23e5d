"""Fixtures for the fake music API tests: the server, a keyed client and an anonymous one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fakes.music_api import FakeMusicApi


@pytest.fixture
async def api() -> AsyncIterator[FakeMusicApi]:
    async with FakeMusicApi() as fake:
        yield fake


@pytest.fixture
async def session(api: FakeMusicApi) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {api.api_key}"}) as client:
        yield client
