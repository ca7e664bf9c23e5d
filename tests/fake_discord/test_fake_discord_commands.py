"""Fake Discord: gateway connection, slash commands, responses, limits and permissions."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import discord
import pytest
from discord.ext import commands

from tests.fake_discord.support import World, running
from tests.fakes.discord_models import READ_MESSAGE_HISTORY, USE_APPLICATION_COMMANDS, VIEW_CHANNEL, UserOption


async def test_bot_connects_syncs_and_reconnects(world: World) -> None:
    fake = world.fake

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="ping", description="Answer pong")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong")

    async with running(world, setup) as bot:
        await asyncio.wait_for(bot.wait_until_ready(), 5)
        channel = bot.get_channel(world.channel_id)
        assert isinstance(channel, discord.TextChannel)
        assert channel.guild.me.guild_permissions.send_messages
        assert fake.identifies[-1]["intents"] == bot.intents.value
        fetched = await bot.tree.fetch_commands()
        assert [(c.name, c.id) for c in fetched] == [("ping", int(fake.synced_commands[None][0]["id"]))]

    async with running(world, setup) as bot:  # a restarted bot gets a fresh session; command ids are kept
        await fake.disconnect_bot()  # a dropped connection: discord.py RESUMEs the session
        await fake.wait_until_ready()
        interaction = await world.invoke("ping")
        await fake.wait_for(lambda: interaction.original is not None)
        assert bot.get_channel(world.channel_id) is not None
    assert len(fake.identifies) == 2
    dropped, resumed = fake.gateway.sessions[1:3]
    assert (dropped.close_code, resumed.session_id, resumed.identified) == (4000, dropped.session_id, True)
    assert interaction.original is not None
    assert interaction.original.content == "pong"
    assert interaction.data["id"] == str(fetched[0].id)


async def test_command_options_reach_the_handler(world: World) -> None:
    received: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="generate", description="Make a song")
        async def generate(
            interaction: discord.Interaction,
            prompt: str,
            count: int = 1,
            instrumental: bool = False,
            listener: discord.Member | None = None,
        ) -> None:
            received.set_result((prompt, count, instrumental, listener, interaction.filesize_limit))
            await interaction.response.send_message("queued", ephemeral=True)

    async with running(world, setup):
        options = {"prompt": "sea shanty", "count": 2, "instrumental": True, "listener": UserOption(world.user_id)}
        interaction = await world.invoke("generate", options)
        prompt, count, instrumental, listener, limit = await asyncio.wait_for(received, 5)
        await interaction.wait_responded()
    assert (prompt, count, instrumental, limit) == ("sea shanty", 2, True, 10 * 1024 * 1024)
    assert isinstance(listener, discord.Member)
    assert listener.id == world.user_id
    assert interaction.ephemeral
    assert interaction.original is not None
    assert interaction.original.ephemeral
    with pytest.raises(ValueError, match="required"):
        await world.invoke("generate", {"count": 1})


async def test_defer_edit_and_followup_with_file(world: World) -> None:
    results: dict[str, Any] = {}
    song = bytes(range(256)) * 40

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="song", description="Send a song")
        async def send_song(interaction: discord.Interaction) -> None:
            deferred = await interaction.response.defer(thinking=True)
            results["deferred_id"] = deferred.message_id if deferred else None
            await interaction.edit_original_response(content="Rendering…")
            song_file = discord.File(io.BytesIO(song), "song.mp3")
            sent = await interaction.followup.send("Here it is", file=song_file, wait=True)
            results["downloaded"] = await sent.attachments[0].read()
            # Discord's edit rule: listed attachments are kept, new files appended, unlisted ones dropped.
            cover = discord.File(io.BytesIO(b"png"), "cover.png")
            kept = await sent.edit(attachments=[sent.attachments[0], cover])
            results["after_append"] = [a.filename for a in kept.attachments]
            replaced = await kept.edit(attachments=[kept.attachments[1]])
            results["after_drop"] = [a.filename for a in replaced.attachments]

    async with running(world, setup):
        interaction = await world.invoke("song")
        await world.fake.wait_for(lambda: "after_drop" in results)
    original, followup = interaction.original, interaction.followups[0]
    assert original is not None
    assert results["deferred_id"] == original.id
    assert (original.content, original.edits, original.loading) == ("Rendering…", 1, False)
    assert results["downloaded"] == song
    assert results["after_append"] == ["song.mp3", "cover.png"]
    assert results["after_drop"] == ["cover.png"]
    followup_post = next(r for r in world.fake.requests if r.method == "POST" and r.path.startswith("/webhooks/"))
    song_upload = followup_post.files[0]  # the multipart part as the fake received it
    assert (song_upload.filename, song_upload.data) == ("song.mp3", song)
    assert followup.attachments[0].content_type == "image/png"
    assert world.fake.messages(world.channel_id) == [original, followup]


async def test_late_first_response_is_unknown_interaction(world: World) -> None:
    world.fake.ack_deadline = 0.2
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="slow", description="Too slow")
        async def slow(interaction: discord.Interaction) -> None:
            await asyncio.sleep(0.3)
            try:
                await interaction.response.defer()
            except discord.HTTPException as error:
                outcome.set_result(error)
            else:
                outcome.set_result(None)

    async with running(world, setup):
        interaction = await world.invoke("slow")
        error = await asyncio.wait_for(outcome, 5)
    assert isinstance(error, discord.NotFound)
    assert error.code == 10062
    assert interaction.errors == [(404, 10062)]
    assert not interaction.callbacks


async def test_expired_token_is_rejected_with_50027(world: World) -> None:
    deferred: asyncio.Future[discord.Interaction] = asyncio.get_running_loop().create_future()

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="long", description="Long job")
        async def long_job(interaction: discord.Interaction) -> None:
            await interaction.response.defer()
            deferred.set_result(interaction)

    async with running(world, setup):
        fake_interaction = await world.invoke("long")
        interaction = await asyncio.wait_for(deferred, 5)
        world.fake.advance(901)
        with pytest.raises(discord.HTTPException) as caught:
            await interaction.edit_original_response(content="finally")
        with pytest.raises(discord.HTTPException) as caught_followup:
            await interaction.followup.send("late")
    assert (caught.value.status, caught.value.code) == (401, 50027)
    assert (caught_followup.value.status, caught_followup.value.code) == (401, 50027)
    assert fake_interaction.errors == [(401, 50027), (401, 50027)]


async def test_upload_and_embed_limits(world: World) -> None:
    errors: dict[str, discord.HTTPException] = {}

    async def capture(name: str, attempt: Any) -> None:
        try:
            await attempt
        except discord.HTTPException as error:
            errors[name] = error

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="limits", description="Break limits")
        async def limits(interaction: discord.Interaction) -> None:
            await interaction.response.defer()
            big = discord.File(io.BytesIO(b"x" * 2048), "big.mp3")
            await capture("file", interaction.followup.send(file=big))
            await capture("title", interaction.followup.send(embed=discord.Embed(title="t" * 257)))
            embeds = [discord.Embed(description="d" * 4000), discord.Embed(description="d" * 2001)]
            await capture("total", interaction.followup.send(embeds=embeds))
            await capture("content", interaction.edit_original_response(content="c" * 2001))
            channel = bot.get_channel(world.channel_id)
            assert isinstance(channel, discord.TextChannel)
            over_guild_limit = discord.File(io.BytesIO(b"x" * (10 * 1024 * 1024 + 1)), "huge.mp3")
            await capture("channel file", channel.send(file=over_guild_limit))
            await interaction.edit_original_response(content="done")

    async with running(world, setup):
        interaction = await world.invoke("limits", attachment_size_limit=1024)
        await world.fake.wait_for(lambda: interaction.original is not None and interaction.original.edits == 1)
    assert {name: (e.status, e.code) for name, e in errors.items()} == {
        "file": (413, 40005),
        "title": (400, 50035),
        "total": (400, 50035),
        "content": (400, 50035),
        "channel file": (413, 40005),
    }
    assert "embeds.0.title" in str(errors["title"])
    assert world.fake.messages(world.channel_id) == [interaction.original]


async def test_pinged_follows_allowed_mentions(world: World) -> None:
    def setup(bot: commands.Bot) -> None:
        pass

    async with running(world, setup) as bot:
        channel = bot.get_channel(world.channel_id)
        assert isinstance(channel, discord.TextChannel)
        silenced = await channel.send("@everyone new song", allowed_mentions=discord.AllowedMentions.none())
        loud = await channel.send(f"@here <@{world.user_id}> new song")
        only_user = await channel.send(
            f"@everyone <@{world.user_id}>", allowed_mentions=discord.AllowedMentions(everyone=False, users=True)
        )
        embed_only = await channel.send(embed=discord.Embed(description=f"@everyone <@{world.user_id}>"))
    fake = world.fake
    assert fake.message(silenced.id).pinged() == set()
    assert fake.message(loud.id).pinged() == {"everyone", f"user:{world.user_id}"}
    assert loud.mention_everyone
    assert fake.message(only_user.id).pinged() == {f"user:{world.user_id}"}
    assert fake.message(embed_only.id).pinged() == set()


async def test_channel_routes_check_the_bots_permissions(world: World) -> None:
    def setup(bot: commands.Bot) -> None:
        pass

    fake = world.fake
    async with running(world, setup) as bot:
        channel = bot.get_channel(world.channel_id)
        assert isinstance(channel, discord.TextChannel)
        status = await channel.send("Rendering your song…")
        fake.set_bot_permissions(world.guild_id, VIEW_CHANNEL | READ_MESSAGE_HISTORY | USE_APPLICATION_COMMANDS)
        with pytest.raises(discord.Forbidden) as refused:
            await channel.send("again")
        edited = await channel.get_partial_message(status.id).edit(content="Done")  # own messages stay editable
        with pytest.raises(discord.NotFound) as unknown:
            await bot.http.send_message(12345, params=discord.http.handle_message_parameters(content="x"))
    assert refused.value.code == 50013
    assert unknown.value.code == 10003
    assert edited.content == fake.message(status.id).content == "Done"
