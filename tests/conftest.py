"""Shared fixtures: settings built from keyword arguments, a real SQLite file per test, a controllable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.storage import Database
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import FakeMusicApi


class FakeClock:
    """A clock the test moves by hand (day and month roll-overs without sleeping)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


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
