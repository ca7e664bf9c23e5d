"""`/music` and `/music-custom`: parse the options (or the form), then start the generation."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import MusicBot
from bot.backends import Instrumental, ModelSpec
from bot.models import GenerationMode, GenerationRequest
from bot.runtime import JobRuntime, custom_mode_model
from bot.tree import answer_error
from cogs.delivery import ChannelDelivery, check_channel_allowed, start_generation
from cogs.i18n import Locale, refusal, t

log = logging.getLogger(__name__)

Interaction = discord.Interaction[MusicBot]
# Discord's own caps; the active backend's (smaller) limits are applied by the core, with a clear message.
PROMPT_MAX = 2000
TEXT_INPUT_MAX = 4000


class CustomSongModal(discord.ui.Modal):
    """Title, style and lyrics for the custom-lyrics mode; built for each member, in their language."""

    def __init__(
        self,
        cog: MusicCog,
        *,
        spec: ModelSpec,
        instrumental: bool,
        model: str | None,
        contest: bool = False,
        locale: Locale = None,
    ) -> None:
        super().__init__(title=t(locale, "form.title"))
        self._cog = cog
        self._contest = contest
        self._instrumental = instrumental
        self._model = model
        self._locale = locale
        # The form's limits are the chosen model's, so Discord stops over-long text as it is typed.
        lyrics_optional = not spec.lyrics_required and (instrumental or spec.instrumental is Instrumental.ALWAYS)
        self.song_title = self._field("title", "song_title", spec.max_title_chars)
        self.style = self._field("style", "style", spec.max_tags_chars)
        self.lyrics = self._field("lyrics", "lyrics", spec.max_lyrics_chars, paragraph=True, optional=lyrics_optional)

    def _field(
        self, name: str, custom_id: str, limit: int, *, paragraph: bool = False, optional: bool = False
    ) -> discord.ui.TextInput[CustomSongModal]:
        """One text input, labelled in the member's language (set at construction: discord.py 2.6 deprecates
        changing a label afterwards in favour of ui.Label)."""
        placeholder = "form.placeholder.optional_lyrics" if optional else f"form.placeholder.{name}"
        field: discord.ui.TextInput[CustomSongModal] = discord.ui.TextInput(
            label=t(self._locale, f"form.label.{name}"),
            custom_id=custom_id,
            style=discord.TextStyle.paragraph if paragraph else discord.TextStyle.short,
            placeholder=t(self._locale, placeholder),
            required=not optional,
            max_length=min(limit, TEXT_INPUT_MAX),
        )
        self.add_item(field)
        return field

    async def interaction_check(self, interaction: Interaction) -> bool:  # type: ignore[override]
        return await interaction.client.claim(interaction)

    async def on_submit(self, interaction: Interaction) -> None:  # type: ignore[override]
        request = GenerationRequest(
            mode=GenerationMode.CUSTOM,
            prompt=self.lyrics.value,
            instrumental=self._instrumental,
            model=self._model,
            title=self.song_title.value,
            tags=self.style.value,
        )
        await start_generation(self._cog.bot, self._cog.runtime, interaction, request, contest=self._contest)

    async def on_error(self, interaction: Interaction, error: Exception) -> None:  # type: ignore[override]
        await answer_error(interaction, error)


class MusicCog(commands.Cog):
    def __init__(self, bot: MusicBot, runtime: JobRuntime) -> None:
        self.bot = bot
        self.runtime = runtime

    async def cog_load(self) -> None:
        # Jobs the runtime resumes (after a restart, or while Discord was failing) go to their channel.
        self.bot.channel_delivery = lambda job: ChannelDelivery(self.bot, job)

    async def cog_unload(self) -> None:
        self.bot.channel_delivery = None

    async def again(self, interaction: Interaction, job_id: int) -> None:
        """The Again button: the same prompt and options, for (and charged to) whoever clicked."""
        job = await self.runtime.job(job_id)
        if job.erased:
            raise refusal("again.erased")
        await start_generation(self.bot, self.runtime, interaction, job.request)

    @app_commands.command(name="music", description="Turn a description into two songs")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What the song should be about and sound like",
        instrumental="No vocals",
        model="Which model (the list is this bot's music service's)",
        duration="Length in seconds, for models that let you choose it",
        contest="Enter these songs in the server's running contest",
    )
    async def music(
        self,
        interaction: Interaction,
        prompt: app_commands.Range[str, 1, PROMPT_MAX],
        instrumental: bool = False,
        model: str | None = None,
        duration: app_commands.Range[int, 1, 600] | None = None,
        contest: bool = False,
    ) -> None:
        request = GenerationRequest(GenerationMode.DESCRIPTION, prompt, instrumental, model, duration_seconds=duration)
        await start_generation(self.bot, self.runtime, interaction, request, contest=contest)

    @app_commands.command(name="music-custom", description="Write your own lyrics, title and style")
    @app_commands.guild_only()
    @app_commands.describe(
        instrumental="No vocals (lyrics become optional)",
        model="Which model to use",
        contest="Enter these songs in the server's running contest",
    )
    async def music_custom(
        self, interaction: Interaction, instrumental: bool = False, model: str | None = None, contest: bool = False
    ) -> None:
        await check_channel_allowed(self.bot, interaction)  # before the member writes a whole song in the form
        if contest and interaction.guild_id is not None:  # before the form, too
            await self.bot.services.contests.check_entry(interaction.guild_id, interaction.user.id)
        spec = custom_mode_model(self.runtime.capabilities, model)
        modal = CustomSongModal(
            self, spec=spec, instrumental=instrumental, model=model, contest=contest, locale=interaction.locale
        )
        await interaction.response.send_modal(modal)

    @music.autocomplete("model")
    @music_custom.autocomplete("model")
    async def model_names(self, interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The active backend's models: the options follow whatever MUSIC_BACKEND the operator chose."""
        names = self.runtime.capabilities.model_names
        return [app_commands.Choice(name=name, value=name) for name in names if current.lower() in name.lower()][:25]


async def setup(bot: MusicBot) -> None:
    await bot.add_cog(MusicCog(bot, bot.services.runtime))
