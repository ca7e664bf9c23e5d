"""Fixtures for the download tests: a hostile file host and a client session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fakes.hostile_files import HostileFileServer


@pytest.fixture
async def host() -> AsyncIterator[HostileFileServer]:
    async with HostileFileServer() as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client
