"""The throwaway PostgreSQL server and the per-test database fixture in tests/postgres.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
import pytest_asyncio

from tests.postgres import (
    REQUIRE_ENV,
    create_database,
    drop_database,
    find_pg_bin,
    required,
    throwaway_postgres,
)


@pytest_asyncio.fixture
async def other_postgres_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """A second database for the same test, made with the helpers the fixture uses."""
    url = await create_database(postgres_admin_url)
    yield url
    await drop_database(postgres_admin_url, url)


@pytest.mark.parametrize("run", [1, 2])
async def test_fixture_gives_an_empty_connectable_database(postgres_url: str, run: int) -> None:
    connection = await asyncpg.connect(postgres_url)
    try:
        assert "PostgreSQL" in await connection.fetchval("SELECT version()")
        assert await connection.fetchval("SELECT current_database()") == urlsplit(postgres_url).path[1:]
        tables = await connection.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
        assert tables == 0
        # Left behind on purpose: the other run would see it, were databases shared or reused.
        await connection.execute(f"CREATE TABLE left_by_run_{run} (id integer)")
    finally:
        await connection.close()


async def test_two_databases_are_distinct(postgres_url: str, other_postgres_url: str) -> None:
    assert postgres_url != other_postgres_url
    first = await asyncpg.connect(postgres_url)
    second = await asyncpg.connect(other_postgres_url)
    try:
        await first.execute("CREATE TABLE only_here (id integer)")
        assert await second.fetchval("SELECT to_regclass('only_here')") is None
    finally:
        await first.close()
        await second.close()


async def test_drop_database_removes_it_even_with_a_connection_open(postgres_admin_url: str) -> None:
    url = await create_database(postgres_admin_url)
    name = urlsplit(url).path[1:]
    still_open = await asyncpg.connect(url)
    await drop_database(postgres_admin_url, url)
    admin = await asyncpg.connect(postgres_admin_url)
    try:
        assert await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name) is None
    finally:
        await admin.close()
        still_open.terminate()


def test_throwaway_postgres_stops_and_removes_its_folder_even_if_the_body_fails() -> None:
    if find_pg_bin() is None:
        if required():
            pytest.fail(f"{REQUIRE_ENV}=1 but no PostgreSQL installation found")
        pytest.skip("PostgreSQL not installed")
    seen: list[Path] = []
    with pytest.raises(ZeroDivisionError):
        _start_then_fail(seen)
    data, process = seen
    assert not data.parent.exists()
    assert not _running(process)


def _start_then_fail(seen: list[Path]) -> None:
    """Start a server, note its data folder and process, then fail inside the `with` body."""
    with throwaway_postgres() as url:
        data = Path(asyncio.run(_show(url, "data_directory")))
        process = Path(f"/proc/{(data / 'postmaster.pid').read_text().split()[0]}")
        assert _running(process)
        seen += [data, process]
        raise ZeroDivisionError


def _running(process: Path) -> bool:
    """Whether the process is alive: not gone, and not a zombie its new parent has yet to reap."""
    try:
        return (process / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def _show(url: str, setting: str) -> str:
    connection = await asyncpg.connect(url)
    try:
        value: str = await connection.fetchval(f"SHOW {setting}")
        return value
    finally:
        await connection.close()


def test_missing_postgres_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSICBOT_PG_BIN", str(tmp_path))
    assert find_pg_bin() is None
    with pytest.raises(RuntimeError, match="has no initdb"), throwaway_postgres():
        pass
