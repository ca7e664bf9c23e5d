"""Shared fixtures: settings built from keyword arguments, a real SQLite file per test, a controllable clock."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# The suite starts dozens of Python processes (pytest-xdist workers, `python -m bot`, the doctor): with
# PYTHONDONTWRITEBYTECODE set (as in many containers) each one compiles every module it imports again, a second
# or more of CPU apiece. They share compiled bytecode instead, in a folder of their own outside the source tree
# (so the tree stays as clean as that setting keeps it): set in the environment every process started from
# here inherits, and for this process too, before it imports the bot below.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
    os.environ.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / f"musicbot-pycache-{os.getuid()}"))
    sys.pycache_prefix = os.environ["PYTHONPYCACHEPREFIX"]
    sys.dont_write_bytecode = False

from bot.storage import Database, SqliteDatabase
from bot.storage.postgres import PostgresDatabase
from tests.clock import FakeClock
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import FakeMusicApi
from tests.harness import RunningBot, running_bot


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


pytest_plugins = ["tests.postgres"]


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """The storage suite runs on both engines: a real SQLite file, and a fresh database on a real PostgreSQL."""
    if request.param == "sqlite":
        async with SqliteDatabase.open(tmp_path / "musicbot.sqlite3") as sqlite:
            yield sqlite
        return
    from tests.postgres import create_database, drop_database  # the plugin: imported once pytest loaded it

    admin_url = request.getfixturevalue("postgres_admin_url")
    url = await create_database(admin_url)
    try:
        async with PostgresDatabase.open(url) as postgres:
            yield postgres
    finally:
        await drop_database(admin_url, url)


@pytest.fixture
async def sqlite_database(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    """For what only SQLite has (its group commit, its read-only readers, its file)."""
    async with SqliteDatabase.open(tmp_path / "musicbot.sqlite3") as sqlite:
        yield sqlite


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


# Longest first, so pytest-xdist (`--dist load --maxschedchunk 1`: one test at a time to whichever worker is free)
# never starts a 10-second test when the others are nearly done. Whole modules move, in their own order.
_FIRST_MODULES = (
    "test_e2e_scale_out.py",  # two real bot processes on PostgreSQL, killed, stopped, started together
    "test_migrate_db.py",  # `musicbot migrate-db` as a process
    "test_e2e_restart.py",  # real bot processes, killed and started again
    "test_leaderboard_scale.py",  # 20,000 votes recounted
    "test_e2e_trust.py",
    "test_e2e_durability.py",
    "test_doctor.py",  # `musicbot doctor` as a process
)
_EARLY_MODULES = ("test_settings.py", "test_packaging.py")  # a few child processes each


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        if name in _FIRST_MODULES:
            return 0
        return 1 if name.startswith("test_e2e") or name in _EARLY_MODULES else 2

    items.sort(key=rank)
