"""Fake Discord: message commands from a message's Apps menu, deleting a message, and the bot leaving a guild."""

from __future__ import annotations

import asyncio

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fake_discord.support import World, no_commands, running, text_channel


async def test_a_message_command_gets_its_target_message_and_the_bot_deletes_it(world: World) -> None:
    fake = world.fake
    targets: asyncio.Queue[discord.Message] = asyncio.Queue()

    def setup(bot: commands.Bot) -> None:
        async def remove(interaction: discord.Interaction, message: discord.Message) -> None:
            await targets.put(message)
            await message.delete()
            await interaction.response.send_message("removed", ephemeral=True)

        bot.tree.add_command(app_commands.ContextMenu(name="Remove it", callback=remove))

    async with running(world, setup) as bot:
        synced = fake.find_command("Remove it", world.guild_id, command_type=3)
        assert synced is not None
        assert fake.find_command("Remove it", world.guild_id) is None  # not a chat-input command
        posted = await text_channel(bot, world.channel_id).send("a song")
        interaction = await fake.invoke_message_command("Remove it", posted.id, user_id=world.user_id)
        target = await asyncio.wait_for(targets.get(), 5)
        await interaction.wait_responded()
        assert interaction.data["type"] == 3
        assert interaction.data["target_id"] == str(posted.id)
        assert interaction.data["id"] == synced["id"]
        assert (target.id, target.content, target.channel.id) == (posted.id, "a song", world.channel_id)
        assert interaction.ephemeral
        assert [message.id for message in fake.messages(world.channel_id)] == [interaction.original.id]  # type: ignore[union-attr]
        with pytest.raises(LookupError):
            await fake.invoke_message_command("Remove it", posted.id, user_id=world.user_id)  # it is gone
        deletes = [r for r in fake.requests if r.method == "DELETE" and r.path.endswith(f"/messages/{posted.id}")]
        assert [request.status for request in deletes] == [204]


async def test_removing_the_bot_from_a_guild_and_adding_it_back(world: World) -> None:
    fake = world.fake
    events: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    async with running(world, no_commands) as bot:
        await asyncio.wait_for(bot.wait_until_ready(), 5)  # a guild arriving before READY is not a join

        @bot.event
        async def on_guild_remove(guild: discord.Guild) -> None:
            await events.put(("remove", guild.id))

        @bot.event
        async def on_guild_join(guild: discord.Guild) -> None:
            await events.put(("join", guild.id))

        fake.remove_bot(world.guild_id)
        assert await asyncio.wait_for(events.get(), 5) == ("remove", world.guild_id)
        assert bot.get_guild(world.guild_id) is None
        with pytest.raises(discord.Forbidden) as refused:
            await bot.http.send_message(world.channel_id, params=discord.http.handle_message_parameters("hi"))
        assert refused.value.code == 50001
        fake.add_bot_back(world.guild_id)
        assert await asyncio.wait_for(events.get(), 5) == ("join", world.guild_id)
        await text_channel(bot, world.channel_id).send("back again")
