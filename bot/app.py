"""MusicBot: the discord.py client holding the core services; loads the cogs and syncs commands when they change."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import discord
from discord.ext import commands

from bot.clock import Clock, utc_now
from bot.contests import CommunityTarget, ContestService
from bot.hall_of_fame import HallOfFameService
from bot.metrics import Metrics
from bot.models import Job
from bot.privacy import PrivacyService
from bot.quota import QuotaService
from bot.rules import ModerationRules
from bot.runtime import DeliveryTarget, JobRuntime, TargetFactory
from bot.settings import Settings
from bot.storage import BotStateStore
from bot.storage.coordination import CoordinationStore
from bot.tree import MusicCommandTree
from bot.voting import VotingService
from cogs.i18n import CatalogueTranslator

log = logging.getLogger(__name__)

# An IDENTIFY goes out at most this long after its booked slot began (the slots are 6 s apart for Discord's 5).
IDENTIFY_LATENESS = timedelta(seconds=0.5)
IDENTIFY_BOOKINGS = 5

EXTENSIONS: tuple[str, ...] = (
    "cogs.music",
    "cogs.buttons",
    "cogs.voting",
    "cogs.admin",
    "cogs.privacy",
    "cogs.song_deletion",
    "cogs.contests",
)


@dataclass(frozen=True, slots=True)
class Services:
    """The core objects the cogs call, built by the composition root."""

    runtime: JobRuntime
    quota: QuotaService
    voting: VotingService
    privacy: PrivacyService
    state: BotStateStore
    coordination: CoordinationStore
    rules: ModerationRules
    contests: ContestService
    hall_of_fame: HallOfFameService
    clock: Clock
    metrics: Metrics = field(default_factory=Metrics)


class MusicBot(commands.AutoShardedBot):
    """The bot runs SHARD_IDS of SHARD_COUNT shards (unset: as many as Discord recommends, all here). Other
    processes may run the other shards, or the same ones: IDENTIFYs are spaced through the database, every
    interaction is handled by the one process that claims it first, and only the holder of shard 0 syncs
    commands."""

    settings: Settings
    services: Services
    # How a job resumed without its interaction reaches its channel; the music extension sets it when it loads.
    channel_delivery: TargetFactory | None = None
    # What the community loop posts through (contest results, hall of fame); the contest extension sets it.
    community_target: CommunityTarget | None = None

    def __init__(self, *, settings: Settings, services: Services) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=MusicCommandTree,
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            shard_count=settings.shard_count,
            shard_ids=settings.shard_ids,  # type: ignore[arg-type]  # None: every shard, discord.py's default
        )
        self.settings = settings
        self.services = services
        self._identify_concurrency = 1

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        # Before syncing: the synced definitions carry every catalogue's names and descriptions.
        await self.tree.set_translator(CatalogueTranslator())
        try:
            _, _, session_start = await self.http.get_bot_gateway()
            self._identify_concurrency = max(1, int(session_start.get("max_concurrency", 1)))
        except discord.DiscordException as error:  # connecting will say what is wrong; identify one at a time
            log.warning("could not read Discord's IDENTIFY concurrency (%s); assuming 1", error)
        if self.shard_ids is None or 0 in self.shard_ids:
            await self.sync_commands_if_changed()
        else:
            log.info("not syncing application commands: the process running shard 0 does")

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Discord allows one IDENTIFY per bucket (shard id % max_concurrency) every 5 s for the whole token:
        the slot is booked in the database, so processes starting together wait their turn instead of being
        refused (and the 1,000 IDENTIFYs a day are not wasted on refusals)."""
        bucket = (shard_id or 0) % self._identify_concurrency
        coordination = self.services.coordination
        start = await coordination.book_identify(bucket, utc_now)
        for _ in range(IDENTIFY_BOOKINGS):
            # A booking that took long to commit (a busy database) may leave too little of its slot's margin
            # before the next process's: book the next free one instead.
            if utc_now() - start <= IDENTIFY_LATENESS:
                break
            log.info("shard %s: booking the IDENTIFY slot took long; taking the next one", shard_id)
            start = await coordination.book_identify(bucket, utc_now)
        wait = (start - utc_now()).total_seconds()
        if wait > 0:
            log.info("shard %s waits %.1fs for its IDENTIFY slot (bucket %d)", shard_id, wait, bucket)
            await asyncio.sleep(wait)

    async def claim(self, interaction: discord.Interaction[MusicBot]) -> bool:
        """Whether this process handles the interaction: the first to claim it in the database does; another
        session that received the same interaction stays silent."""
        if await self.services.coordination.claim_interaction(interaction.id, utc_now()):
            return True
        log.info("interaction %s is handled by another session", interaction.id)
        return False

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
        payload = await self.command_payload(guild)
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        key = f"commands_hash:{guild.id if guild else 'global'}"
        if await self.services.state.get(key) == digest:
            log.info("application commands unchanged; not syncing")
            return
        synced = await self.tree.sync(guild=guild)
        await self.services.state.set(key, digest)
        log.info("synced %d application commands (%s)", len(synced), "dev guild" if guild else "global")

    async def command_payload(self, guild: discord.abc.Snowflake | None = None) -> list[dict[str, Any]]:
        """The definitions `tree.sync` sends, localisations included: a changed translation changes them too."""
        translator = self.tree.translator
        commands = self.tree.get_commands(guild=guild)
        if translator is None:
            return [command.to_dict(self.tree) for command in commands]
        return [await command.get_translated_payload(self.tree, translator) for command in commands]

    def gateway_problem(self) -> str | None:
        """None while this process is connected to Discord on every shard it runs."""
        if self.is_closed() or not self.is_ready():
            return "gateway: not connected to Discord"
        down = sorted(shard_id for shard_id, shard in self.shards.items() if shard.is_closed())
        if down:
            return f"gateway: shard(s) {', '.join(map(str, down))} disconnected"
        return None

    async def on_ready(self) -> None:
        log.info("connected as %s (%s) to %d servers", self.user, getattr(self.user, "id", "?"), len(self.guilds))
