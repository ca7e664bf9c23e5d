"""`GET /healthz` (HTTP_PORT): 200 while the bot can work, 503 naming what cannot (a locked database, the
gateway, a stale heartbeat)."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from pathlib import Path

import aiohttp

from bot.health import HealthChecks, serving
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import FakeMusicApi
from tests.harness import running_bot


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def get(port: int) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/healthz") as response:
        return response.status, await response.json()


async def test_healthy_then_503_naming_a_locked_database(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    port = free_port()
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3", http_port=port) as harness:
        await harness.bot.wait_until_ready()  # before that, /healthz says the gateway is not connected yet
        status, body = await get(port)
        assert (status, body["status"]) == (200, "ok"), body
        shell = sqlite3.connect(harness.settings.database_path, timeout=0, isolation_level=None)
        try:
            shell.execute("BEGIN IMMEDIATE")  # an operator's shell holds the write lock
            status, body = await get(port)
            shell.execute("ROLLBACK")
        finally:
            shell.close()
        assert status == 503
        assert body["status"] == "unhealthy"
        assert any(str(problem).startswith("database:") for problem in body["problems"])  # type: ignore[attr-defined]
        await asyncio.sleep(0.1)
        status, _ = await get(port)
        assert status == 200  # the lock is gone: healthy again


async def test_503_while_the_gateway_is_down_and_200_once_the_bot_is_back(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    port = free_port()
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3", http_port=port) as harness:
        await harness.bot.wait_until_ready()
        assert (await get(port))[0] == 200
        discord_fake.gateway.down = True  # the connection drops and Discord cannot be reached again for now
        await discord_fake.disconnect_bot(1006)
        _, body = await poll_until(port, 503)
        assert any(str(problem).startswith("gateway:") for problem in body["problems"]), body  # type: ignore[attr-defined]
        discord_fake.gateway.down = False
        _, body = await poll_until(port, 200, timeout=30)  # discord.py reconnects with its own back-off
        assert body["status"] == "ok"


async def poll_until(port: int, wanted: int, timeout: float = 10) -> tuple[int, dict[str, object]]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status, body = await get(port)
        if status == wanted or asyncio.get_running_loop().time() > deadline:
            assert status == wanted, body
            return status, body
        await asyncio.sleep(0.1)


async def test_the_gateway_and_the_heartbeat_are_named_when_they_fail() -> None:
    async def write() -> None:
        return None

    port = free_port()
    checks = HealthChecks(
        gateway=lambda: "gateway: shard(s) 1 disconnected",
        database=write,
        heartbeat=lambda: "job runtime: no heartbeat for 95 s (leases of 30 s)",
    )
    async with serving(checks, host="127.0.0.1", port=port):
        status, body = await get(port)
    assert status == 503
    assert body["problems"] == [
        "gateway: shard(s) 1 disconnected",
        "job runtime: no heartbeat for 95 s (leases of 30 s)",
    ]
