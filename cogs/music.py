"""`/music` and `/music-custom`: parse the options (or the form), then start the generation."""

from __future__ import annotations

import asyncio
import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import MusicBot
from bot.generation import MAX_DESCRIPTION_CHARS, MAX_LYRICS_CHARS, MAX_TAGS_CHARS, MAX_TITLE_CHARS, MODELS
from bot.models import GenerationMode, GenerationRequest
from bot.tree import answer_error
from cogs.buttons import clip_view
from cogs.delivery import ChannelDelivery, start_generation

log = logging.getLogger(__name__)

Interaction = discord.Interaction[MusicBot]
MODEL_CHOICES = [app_commands.Choice(name=model, value=model) for model in MODELS]


class CustomSongModal(discord.ui.Modal, title="Custom song"):
    """Title, style and lyrics for the custom-lyrics mode."""

    song_title: discord.ui.TextInput[CustomSongModal] = discord.ui.TextInput(
        label="Title", custom_id="song_title", max_length=MAX_TITLE_CHARS, placeholder="Neon Rain"
    )
    style: discord.ui.TextInput[CustomSongModal] = discord.ui.TextInput(
        label="Style tags", custom_id="style", max_length=MAX_TAGS_CHARS, placeholder="synthwave, dreamy, female vocals"
    )
    lyrics: discord.ui.TextInput[CustomSongModal] = discord.ui.TextInput(
        label="Lyrics",
        custom_id="lyrics",
        style=discord.TextStyle.paragraph,
        max_length=MAX_LYRICS_CHARS,
        placeholder="[Verse]\n...\n[Chorus]\n...",
    )

    def __init__(self, cog: MusicCog, *, instrumental: bool, model: str | None) -> None:
        super().__init__()
        self._cog = cog
        self._instrumental = instrumental
        self._model = model
        if instrumental:
            self.lyrics.required = False
            self.lyrics.placeholder = "Optional for an instrumental"

    async def on_submit(self, interaction: Interaction) -> None:  # type: ignore[override]
        request = GenerationRequest(
            mode=GenerationMode.CUSTOM,
            prompt=self.lyrics.value,
            instrumental=self._instrumental,
            model=self._model,
            title=self.song_title.value,
            tags=self.style.value,
        )
        await start_generation(self._cog.bot, interaction, request, clip_view)

    async def on_error(self, interaction: Interaction, error: Exception) -> None:  # type: ignore[override]
        await answer_error(interaction, error)


class MusicCog(commands.Cog):
    def __init__(self, bot: MusicBot) -> None:
        self.bot = bot
        self._redelivery: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        self._redelivery = asyncio.create_task(self._keep_jobs_moving(), name="redelivery")

    async def cog_unload(self) -> None:
        if self._redelivery is not None:
            self._redelivery.cancel()

    async def _keep_jobs_moving(self) -> None:
        """At start-up, and then every REDELIVERY_INTERVAL_SECONDS, resume every unfinished job no task is
        running: those interrupted by a restart, and those waiting because Discord was failing."""
        await self.bot.wait_until_ready()
        generation = self.bot.services.generation
        while True:
            try:
                resumed = await generation.resume_orphans(lambda job: ChannelDelivery(self.bot, job, clip_view))
                if resumed:
                    log.info("resumed %d unfinished jobs", len(resumed))
            except Exception:
                log.exception("resuming unfinished jobs failed; will try again")
            await asyncio.sleep(self.bot.settings.redelivery_interval_seconds)

    @app_commands.command(name="music", description="Turn a description into two songs")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What the song should be about and sound like",
        instrumental="No vocals",
        model="Which Suno model to use",
    )
    @app_commands.choices(model=MODEL_CHOICES)
    async def music(
        self,
        interaction: Interaction,
        prompt: app_commands.Range[str, 1, MAX_DESCRIPTION_CHARS],
        instrumental: bool = False,
        model: str | None = None,
    ) -> None:
        request = GenerationRequest(GenerationMode.DESCRIPTION, prompt, instrumental, model)
        await start_generation(self.bot, interaction, request, clip_view)

    @app_commands.command(name="music-custom", description="Write your own lyrics, title and style")
    @app_commands.guild_only()
    @app_commands.describe(instrumental="No vocals (lyrics become optional)", model="Which Suno model to use")
    @app_commands.choices(model=MODEL_CHOICES)
    async def music_custom(
        self, interaction: Interaction, instrumental: bool = False, model: str | None = None
    ) -> None:
        await interaction.response.send_modal(CustomSongModal(self, instrumental=instrumental, model=model))


async def setup(bot: MusicBot) -> None:
    await bot.add_cog(MusicCog(bot))
