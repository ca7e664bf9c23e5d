"""`/music` and `/music-custom`: parse, reserve and defer, then hand the job to the core."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.generation import MAX_DESCRIPTION_CHARS, MAX_LYRICS_CHARS, MAX_TAGS_CHARS, MAX_TITLE_CHARS, MODELS
from bot.models import FailureReason, GenerationMode, GenerationRequest, Requester
from bot.tree import answer_error
from cogs.delivery import InteractionDelivery

if TYPE_CHECKING:
    from bot.app import MusicBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction["MusicBot"]
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
        await self._cog.start_generation(interaction, request)

    async def on_error(self, interaction: Interaction, error: Exception) -> None:  # type: ignore[override]
        await answer_error(interaction, error)


class MusicCog(commands.Cog):
    def __init__(self, bot: MusicBot) -> None:
        self.bot = bot

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
        await self.start_generation(interaction, request)

    @app_commands.command(name="music-custom", description="Write your own lyrics, title and style")
    @app_commands.guild_only()
    @app_commands.describe(instrumental="No vocals (lyrics become optional)", model="Which Suno model to use")
    @app_commands.choices(model=MODEL_CHOICES)
    async def music_custom(
        self, interaction: Interaction, instrumental: bool = False, model: str | None = None
    ) -> None:
        await interaction.response.send_modal(CustomSongModal(self, instrumental=instrumental, model=model))

    async def start_generation(self, interaction: Interaction, request: GenerationRequest) -> None:
        """Reserve before deferring (so a refusal stays private), then defer publicly and start the job."""
        if interaction.guild_id is None or interaction.channel_id is None:
            raise app_commands.NoPrivateMessage()
        generation = self.bot.services.generation
        requester = Requester(interaction.guild_id, interaction.channel_id, interaction.user.id)
        job = await generation.accept(requester, request)
        try:
            response = await interaction.response.defer(thinking=True)
        except discord.HTTPException as error:
            log.warning("job %d: could not acknowledge the interaction (%s)", job.id, error)
            await generation.abandon(job, FailureReason.NOT_ACKNOWLEDGED)
            return
        target = InteractionDelivery(self.bot, interaction)
        message_id = response.message_id if response is not None else None
        if message_id is not None:
            target.remember_response_message(message_id)
            await generation.remember_response_message(job, message_id)
        generation.start(job, target)


async def setup(bot: MusicBot) -> None:
    await bot.add_cog(MusicCog(bot))
