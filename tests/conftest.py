"""Shared fixtures: settings built from keyword arguments, a real SQLite file per test, a controllable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.storage import Database
from tests.clock import FakeClock
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import FakeMusicApi
from tests.harness import RunningBot, running_bot


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    async with Database.open(tmp_path / "musicbot.sqlite3") as db:
        yield db


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        yield fake


@pytest.fixture
async def api() -> AsyncIterator[FakeMusicApi]:
    async with FakeMusicApi() as fake:
        yield fake


@pytest.fixture
async def harness(discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path) -> AsyncIterator[RunningBot]:
    """The real bot, started against both fakes on a fresh database."""
    async with running_bot(discord_fake, api, tmp_path / "musicbot.sqlite3") as running:
        yield running
