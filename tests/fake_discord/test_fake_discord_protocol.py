"""Fake Discord: protocol errors for raw requests, the env redirect and message history."""

from __future__ import annotations

import io
from typing import Any

import aiohttp
import discord
import pytest
from discord.ext import commands

from tests.fake_discord.support import World, no_commands, running, text_channel
from tests.fakes.discord_redirect import install_from_env


async def test_protocol_errors_for_raw_requests(world: World) -> None:
    """What discord.py guards against client-side: double acks, early follow-ups, bad bodies."""

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="quiet", description="Never answers")
        async def quiet(interaction: discord.Interaction) -> None:
            return None

    fake = world.fake
    async with running(world, setup), aiohttp.ClientSession() as http:
        interaction = await world.invoke("quiet")
        api = f"{fake.base_url}/api/v10"
        callback = f"{api}/interactions/{interaction.id}/{interaction.token}/callback"
        followup = f"{api}/webhooks/{fake.application_id}/{interaction.token}"

        async def post(url: str, body: Any) -> tuple[int, Any]:
            async with http.post(url, json=body) as response:
                return response.status, await response.json() if response.status != 204 else None

        assert (await post(followup, {"content": "too early"}))[1]["code"] == 10015
        bad_button = {"type": 2, "style": 1, "label": "x", "custom_id": "c" * 101}
        status, body = await post(
            callback, {"type": 4, "data": {"components": [{"type": 1, "components": [bad_button]}]}}
        )
        assert (status, body["code"]) == (400, 50035)
        assert (await post(callback, {"type": 4, "data": {"content": 42}}))[0] == 400
        assert (await post(callback, {"type": 4, "data": {}}))[1]["code"] == 50006
        assert (await post(callback, {"type": 4, "data": {"content": "hi"}}))[0] == 204
        assert (await post(callback, {"type": 5}))[1] == {
            "message": "Interaction has already been acknowledged.",
            "code": 40060,
        }
        async with http.post(f"{api}/channels/1/messages", json={"content": "x"}) as response:
            assert response.status == 401
    assert interaction.errors[0] == (404, 10015)
    assert interaction.errors[-1] == (400, 40060)


async def test_redirect_from_env(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in world.fake.env().items():
        monkeypatch.setenv(name, value)
    discord.http.Route.BASE = "https://discord.com/api/v10"
    assert install_from_env()
    patched = (discord.http.Route.BASE, str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY))
    assert patched == (f"{world.fake.base_url}/api/v10", world.fake.gateway_url)


async def test_history_returns_own_messages_newest_first(world: World) -> None:
    fake = world.fake
    async with running(world, no_commands) as bot:
        channel = text_channel(bot, world.channel_id)
        view = discord.ui.View().add_item(discord.ui.Button(label="Vote", custom_id="vote:1"))
        embed = discord.Embed(title="Sea shanty", description="3:12").set_footer(text="job 1 · done")
        first = await channel.send(embed=embed, view=view)
        song = discord.File(io.BytesIO(b"mp3"), "song.mp3")
        second = await channel.send("Here it is", file=song, embed=discord.Embed(title="x").set_footer(text="job 2"))
        sent = [first, second, *[await channel.send(f"note {n}") for n in range(3)]]

        history = [m async for m in channel.history(limit=50)]
        assert [m.id for m in history] == [m.id for m in reversed(sent)]
        found = next(
            m for m in history if m.author == bot.user and m.embeds and m.embeds[0].footer.text == "job 1 · done"
        )
        assert found.id == first.id
        assert (found.embeds[0].title, found.embeds[0].footer.text) == ("Sea shanty", "job 1 · done")
        assert bot.user is not None
        assert found.author.id == bot.user.id
        row = found.components[0]
        assert isinstance(row, discord.ActionRow)
        button = row.children[0]
        assert isinstance(button, discord.Button)
        assert button.custom_id == "vote:1"
        with_file = history[-2]
        assert with_file.attachments[0].filename == "song.mp3"
        assert await with_file.attachments[0].read() == b"mp3"
        assert with_file.embeds[0].footer.text == "job 2"

        ids = [m.id for m in sent]
        assert [m.id async for m in channel.history(limit=2)] == ids[:-3:-1]
        assert [m.id async for m in channel.history(limit=3, before=second)] == [ids[0]]
        assert [m.id async for m in channel.history(limit=2, after=first)] == ids[1:3]  # oldest first
        assert [m.id async for m in channel.history(limit=3, around=sent[2])] == ids[3:0:-1]
        assert [m.id async for m in channel.history(limit=None, oldest_first=True)] == ids
        with pytest.raises(discord.HTTPException) as too_many:
            await bot.http.logs_from(world.channel_id, 101)
        with pytest.raises(discord.HTTPException) as two_anchors:
            await bot.http.request(
                discord.http.Route("GET", "/channels/{channel_id}/messages", channel_id=world.channel_id),
                params={"before": ids[-1], "after": ids[0]},
            )
    assert (too_many.value.code, too_many.value.text) == (
        50035,
        "Invalid Form Body\nIn limit: int value should be less than or equal to 100.",
    )
    assert (two_anchors.value.status, two_anchors.value.code) == (400, 50035)

    pages = [r for r in fake.requests if r.method == "GET" and r.path.endswith("/messages")]
    assert pages[0].query == {"limit": "50"}
    assert {key for page in pages for key in page.query} == {"limit", "before", "after", "around"}
