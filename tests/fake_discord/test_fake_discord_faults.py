"""Fake Discord: injected server and client errors, rate limits, delays and discord.py's retries."""

from __future__ import annotations

import asyncio
import io
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import discord
import pytest
from discord.ext import commands

from tests.fake_discord.support import World, no_commands, running, text_channel
from tests.fakes.discord_server import FAULT_ROUTES, FakeDiscord


@dataclass
class RetrySleeps:
    """Stands in for the asyncio module in discord.py's HTTP clients: records their non-zero sleeps, skips them."""

    slept: list[float] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float, result: Any = None) -> Any:
        if delay:
            self.slept.append(delay)
        await asyncio.sleep(0)
        return result


@pytest.fixture
def retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> RetrySleeps:
    """discord.py sleeps 1 + 2 * attempt seconds between 5xx retries (25 s for a final failure); skip that."""
    sleeps = RetrySleeps()
    monkeypatch.setattr(discord.http, "asyncio", sleeps)
    monkeypatch.setattr(discord.webhook.async_, "asyncio", sleeps)
    return sleeps


async def test_injected_server_errors_and_discord_py_retries(world: World, retry_sleeps: RetrySleeps) -> None:
    fake = world.fake

    def posts() -> list[Any]:
        return [r for r in fake.requests if r.method == "POST" and r.path == f"/channels/{world.channel_id}/messages"]

    async with running(world, no_commands) as bot:
        channel = text_channel(bot, world.channel_id)
        fake.fail_next("create_message", status=500, times=6)
        with pytest.raises(discord.DiscordServerError) as failed:
            await channel.send("lost")
        assert retry_sleeps.slept == [1, 3, 5, 7, 9]  # five attempts, a sleep after each
        assert [(r.status, r.injected, r.json["content"]) for r in posts()] == [(500, True, "lost")] * 5
        assert (failed.value.status, failed.value.code, failed.value.text) == (500, 0, "500: Internal Server Error")
        assert fake.messages(world.channel_id) == []

        retry_sleeps.slept.clear()
        fake.fail_next("create_message", status=502)  # queued behind the sixth 500, which is still armed
        sent = await channel.send("made it")
        assert retry_sleeps.slept == [1, 3]
        assert [r.status for r in posts()[5:]] == [500, 502, 200]
        assert [m.content for m in fake.messages(world.channel_id)] == ["made it"] == [sent.content]

        retry_sleeps.slept.clear()
        fake.fail_next("create_message", status=503)  # not in discord.py's retry set {500, 502, 504, 524}
        with pytest.raises(discord.DiscordServerError) as unavailable:
            await channel.send("not retried")
        assert (unavailable.value.status, unavailable.value.text) == (503, "503: Service Unavailable")
        assert retry_sleeps.slept == []
        assert len(posts()) == 9
        assert fake.describe().count("armed fault") == 0


async def test_interaction_routes_retry_every_5xx(world: World, retry_sleeps: RetrySleeps) -> None:
    done: asyncio.Future[discord.WebhookMessage] = asyncio.get_running_loop().create_future()

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="slowdown", description="Defer, then follow up")
        async def slowdown(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            done.set_result(await interaction.followup.send("finally", wait=True))

    fake = world.fake
    async with running(world, setup):
        fake.fail_next("callback", status=503)
        fake.fail_next("followup", status=500, times=2)
        interaction = await world.invoke("slowdown")
        followup = await asyncio.wait_for(done, 5)
    assert retry_sleeps.slept == [1, 1, 3]  # the webhook adapter retries 503 too
    assert interaction.errors == [(503, 0), (500, 0), (500, 0)]
    assert interaction.callbacks == [{"type": 5}]
    assert interaction.original is not None
    assert interaction.original.content == followup.content == "finally"


async def test_injected_client_errors_change_nothing(world: World) -> None:
    results: dict[str, Any] = {}

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="post", description="Post and edit")
        async def post(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("first")
            try:
                await interaction.edit_original_response(content="second")
            except discord.HTTPException as error:
                results["edit_original"] = error
            try:
                await interaction.followup.send(file=discord.File(io.BytesIO(b"song"), "song.mp3"))
            except discord.HTTPException as error:
                results["followup"] = error
            results["done"] = True

    fake = world.fake
    async with running(world, setup) as bot:
        channel = text_channel(bot, world.channel_id)
        status = await channel.send("Rendering…")
        fake.fail_next("create_message", status=403, code=50013)
        fake.fail_next("edit_message", status=403, code=50001)
        with pytest.raises(discord.Forbidden) as refused:
            await channel.send("again")
        with pytest.raises(discord.Forbidden) as no_access:
            await status.edit(content="Done")
        fake.fail_next("edit_original", status=404, code=10015)
        fake.fail_next("followup", status=413, code=40005)
        interaction = await world.invoke("post")
        await fake.wait_for(lambda: "done" in results)
    assert (refused.value.status, refused.value.code, refused.value.text) == (403, 50013, "Missing Permissions")
    assert (no_access.value.code, no_access.value.text) == (50001, "Missing Access")
    assert isinstance(results["edit_original"], discord.NotFound)
    assert (results["followup"].status, results["followup"].code) == (413, 40005)
    assert str(results["followup"]) == "413 Request Entity Too Large (error code: 40005): Request entity too large"
    assert interaction.errors == [(404, 10015), (413, 40005)]
    assert [(m.content, m.edits) for m in fake.messages(world.channel_id)] == [("Rendering…", 0), ("first", 0)]
    assert fake.requests[-1].files[0].filename == "song.mp3"  # what the bot tried to send is recorded
    with pytest.raises(ValueError, match="unknown route 'delete_message'"):
        fake.fail_next("delete_message", status=500)
    with pytest.raises(ValueError, match="unknown route"):
        fake.delay_next("edit", seconds=1)
    assert set(FAULT_ROUTES) == {
        "callback",
        "followup",
        "edit_original",
        "edit_webhook_message",
        "create_message",
        "edit_message",
        "list_messages",
    }


async def test_injected_rate_limit_is_retried_after_retry_after(world: World) -> None:
    async with running(world, no_commands) as bot:
        world.fake.fail_next("create_message", status=429, retry_after=0.05)
        started = time.monotonic()
        sent = await text_channel(bot, world.channel_id).send("eventually")
        elapsed = time.monotonic() - started
    limited = next(r for r in world.fake.requests if r.status == 429)
    assert limited.response == {
        "message": "You are being rate limited.",
        "code": 0,
        "retry_after": 0.05,
        "global": False,
    }
    assert 0.05 <= elapsed < 1
    assert world.fake.message(sent.id).content == "eventually"


async def test_delay_next_holds_a_request(world: World) -> None:
    fake = world.fake
    async with running(world, no_commands) as bot:
        channel = text_channel(bot, world.channel_id)
        status = await channel.send("Rendering…")
        fake.delay_next("edit_message", seconds=0.3)
        started = time.monotonic()
        editing = asyncio.create_task(status.edit(content="Done"))
        await fake.wait_for(lambda: fake.requests[-1].method == "PATCH")
        held = fake.requests[-1]
        await asyncio.sleep(0.1)
        assert (held.status, fake.message(status.id).content) == (0, "Rendering…")  # still in flight
        await editing
        assert time.monotonic() - started >= 0.3
        assert (held.status, fake.message(status.id).content) == (200, "Done")
        started = time.monotonic()
        await status.edit(content="Done again")  # only the next request was held
        assert time.monotonic() - started < 0.3


async def test_stop_ends_every_held_request_at_once() -> None:
    """A hold armed with delay_next never keeps stop() (a test's teardown) waiting: a request still held is
    answered 503 without being handled, and a held answer goes out as it is."""
    async with FakeDiscord() as fake:
        guild_id = fake.add_guild()
        channel_id = fake.add_channel(guild_id)
        url = f"{fake.base_url}/api/v10/channels/{channel_id}/messages"
        fake.delay_next("create_message", seconds=60)
        fake.delay_next("list_messages", seconds=60, response_only=True)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bot {fake.bot_token}"}) as session:

            async def status_of(method: str, **kwargs: Any) -> int:
                async with session.request(method, url, **kwargs) as response:
                    return response.status

            held = asyncio.create_task(status_of("POST", json={"content": "never posted"}))
            listed = asyncio.create_task(status_of("GET"))
            await fake.wait_for(lambda: len(fake.requests) == 2)
            started = time.monotonic()
            await fake.stop()
            assert time.monotonic() - started < 5  # not the 60 s armed
            assert (await held, await listed) == (503, 200)
        assert fake.messages(channel_id) == []
