"""MusicBot: the discord.py client holding the core services; loads the cogs and syncs commands when they change."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import discord
from discord.ext import commands

from bot.clock import Clock
from bot.models import Job
from bot.quota import QuotaService
from bot.runtime import DeliveryTarget, JobRuntime, TargetFactory
from bot.settings import Settings
from bot.storage import BotStateStore
from bot.tree import MusicCommandTree
from bot.voting import VotingService

log = logging.getLogger(__name__)

EXTENSIONS: tuple[str, ...] = ("cogs.music", "cogs.buttons", "cogs.voting", "cogs.admin")


@dataclass(frozen=True, slots=True)
class Services:
    """The core objects the cogs call, built by the composition root."""

    runtime: JobRuntime
    quota: QuotaService
    voting: VotingService
    state: BotStateStore
    clock: Clock


class MusicBot(commands.Bot):
    settings: Settings
    services: Services
    # How a job resumed without its interaction reaches its channel; the music extension sets it when it loads.
    channel_delivery: TargetFactory | None = None

    def __init__(self, *, settings: Settings, services: Services) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=MusicCommandTree,
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
        )
        self.settings = settings
        self.services = services

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands_if_changed()

    def resume_target(self, job: Job) -> DeliveryTarget:
        """Where the runtime posts a job it resumes: the job's channel, with the bot's own permissions."""
        if self.channel_delivery is None:
            raise RuntimeError("the music extension is not loaded")
        return self.channel_delivery(job)

    async def sync_commands_if_changed(self) -> None:
        """Syncs only when the definitions differ from the last sync: Discord allows 200 creates a day."""
        guild = discord.Object(self.settings.discord_dev_guild_id) if self.settings.discord_dev_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        key = f"commands_hash:{guild.id if guild else 'global'}"
        if await self.services.state.get(key) == digest:
            log.info("application commands unchanged; not syncing")
            return
        synced = await self.tree.sync(guild=guild)
        await self.services.state.set(key, digest)
        log.info("synced %d application commands (%s)", len(synced), "dev guild" if guild else "global")

    async def on_ready(self) -> None:
        log.info("connected as %s (%s) to %d servers", self.user, getattr(self.user, "id", "?"), len(self.guilds))
