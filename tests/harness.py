"""End-to-end harness: the real bot (composition root and all) against the fake Discord and fake music API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.__main__ import build_bot
from bot.app import MusicBot
from bot.settings import Settings
from bot.storage import SqliteDatabase
from tests.clock import FakeClock
from tests.fakes.discord_models import DEFAULT_MEMBER_PERMISSIONS, MANAGE_GUILD
from tests.fakes.discord_server import FakeDiscord, FakeInteraction, FakeMessage
from tests.fakes.music_api import FakeMusicApi

FINAL_MARKS = ("✅", "⚠️", "❌")


@dataclass
class RunningBot:
    """Everything a test needs: both fakes, the bot, and one server with a channel and a member."""

    discord: FakeDiscord
    api: FakeMusicApi
    bot: MusicBot
    settings: Settings
    guild_id: int
    channel_id: int
    member_id: int

    async def command(self, name: str, user_id: int | None = None, **options: Any) -> FakeInteraction:
        return await self.discord.invoke_command(
            name, options, guild_id=self.guild_id, channel_id=self.channel_id, user_id=user_id or self.member_id
        )

    async def music(self, prompt: str, user_id: int | None = None, **options: Any) -> FakeInteraction:
        return await self.command("music", user_id, prompt=prompt, **options)

    async def custom_song(self, fields: dict[str, str], **options: Any) -> FakeInteraction:
        """`/music-custom` with these options, then its form sent with these fields (song_title, style, lyrics)."""
        opened = await self.command("music-custom", **options)
        await self.discord.wait_for(lambda: opened.modal is not None)
        assert opened.modal is not None
        return await self.discord.submit_modal(
            opened.modal["custom_id"],
            fields,
            guild_id=self.guild_id,
            channel_id=self.channel_id,
            user_id=self.member_id,
        )

    async def finished(self, interaction: FakeInteraction, timeout: float = 15) -> FakeMessage:
        """Waits until the command's message shows the job's final word, and returns it."""

        def done() -> bool:
            original = interaction.original
            return original is not None and original.content.startswith(FINAL_MARKS)

        await self.discord.wait_for(done, timeout=timeout)
        assert interaction.original is not None
        return interaction.original

    async def songs(self, prompt: str, user_id: int | None = None) -> list[FakeMessage]:
        """Runs `/music` to the end and returns the song messages it posted."""
        interaction = await self.music(prompt, user_id=user_id)
        await self.finished(interaction)
        return interaction.followups

    def moderator(self, name: str = "mod", guild_id: int | None = None) -> int:
        """A new member with Manage Server (in the test's server unless `guild_id` says another)."""
        permissions = DEFAULT_MEMBER_PERMISSIONS | MANAGE_GUILD
        return self.discord.add_member(guild_id or self.guild_id, name=name, permissions=permissions)

    async def click(self, message: FakeMessage, button: str, user_id: int) -> FakeInteraction:
        """Clicks one of a clip's buttons ("up", "down", "lyrics" or "again") and waits for the answer."""
        custom_id = next(
            custom_id
            for custom_id in buttons(message)
            if custom_id.endswith(f":{button}") or custom_id.startswith(f"{button}:")
        )
        interaction = await self.discord.click_button(message.id, custom_id, user_id=user_id)
        await self.discord.wait_for(lambda: bool(interaction.callbacks), timeout=10)
        return interaction

    async def query(self, sql: str, *parameters: object) -> list[dict[str, Any]]:
        """Reads the bot's own database file, through a separate connection, as an operator would."""
        async with SqliteDatabase.open(self.settings.database_path) as db:
            return [dict(row) for row in await db.fetch_all(sql, parameters)]


def buttons(message: FakeMessage) -> dict[str, str]:
    """custom_id -> label of every button on the message, as Discord currently shows it."""
    return {
        component["custom_id"]: component.get("label", "")
        for row in message.components
        for component in row.get("components", [])
        if "custom_id" in component
    }


def make_settings(discord: FakeDiscord, api: FakeMusicApi, database: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "discord_token": discord.bot_token,
        "aiml_api_key": api.api_key,
        "aiml_api_base_url": api.base_url,
        "database_url": f"sqlite:///{database}",
        "poll_interval_seconds": 0.05,
        "progress_edit_interval_seconds": 0,
        "generation_deadline_seconds": 10,
        "wait_audio_timeout_seconds": 5,
        "http_timeout_seconds": 2,
        "retry_base_delay_seconds": 0.01,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass(frozen=True)
class World:
    """The server the tests play in; kept across bot restarts."""

    guild_id: int
    channel_id: int
    member_id: int

    @classmethod
    def create(cls, discord: FakeDiscord) -> World:
        guild_id = discord.add_guild()
        return cls(guild_id, discord.add_channel(guild_id), discord.add_member(guild_id, name="member"))


@contextlib.asynccontextmanager
async def running_bot(
    discord: FakeDiscord,
    api: FakeMusicApi,
    database: Path,
    *,
    clock: FakeClock | None = None,
    world: World | None = None,
    **overrides: Any,
) -> AsyncIterator[RunningBot]:
    world = world or World.create(discord)
    guild_id, channel_id, member_id = world.guild_id, world.channel_id, world.member_id
    settings = make_settings(discord, api, database, **overrides)
    build = build_bot(settings, clock=clock) if clock else build_bot(settings)
    with discord.patch_discord_py():
        async with build as bot:
            task = asyncio.create_task(bot.start(settings.discord_token.get_secret_value()))
            try:
                await discord.wait_until_ready()
                yield RunningBot(discord, api, bot, settings, guild_id, channel_id, member_id)
            finally:
                await bot.close()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
