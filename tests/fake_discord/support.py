"""Shared world and bot helpers for the fake Discord tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import discord
from discord.ext import commands

from tests.fakes.discord_server import FakeDiscord, FakeInteraction


@dataclass
class World:
    """A fake Discord with one guild, one text channel and one member, and discord.py pointed at it."""

    fake: FakeDiscord
    guild_id: int
    channel_id: int
    user_id: int

    async def invoke(self, name: str, options: dict[str, Any] | None = None, **kwargs: Any) -> FakeInteraction:
        place = {"guild_id": self.guild_id, "channel_id": self.channel_id, "user_id": self.user_id}
        return await self.fake.invoke_command(name, options, **(place | kwargs))


def make_bot() -> commands.Bot:
    intents = discord.Intents.none()
    intents.guilds = True
    return commands.Bot(command_prefix=commands.when_mentioned, intents=intents, guild_ready_timeout=0.05)


@asynccontextmanager
async def running(world: World, setup: Callable[[commands.Bot], None]) -> AsyncIterator[commands.Bot]:
    """Start a bot with the commands `setup` adds, sync them, and stop it afterwards."""
    bot = make_bot()
    setup(bot)
    async with world.fake.run_client(bot):
        await bot.tree.sync()
        yield bot


def text_channel(bot: commands.Bot, channel_id: int) -> discord.TextChannel:
    channel = bot.get_channel(channel_id)
    assert isinstance(channel, discord.TextChannel)
    return channel


def no_commands(bot: commands.Bot) -> None:
    pass
