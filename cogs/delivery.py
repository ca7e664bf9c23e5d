"""Delivery to Discord: progress, clips and the final word, through the interaction token while it lives,
then through the channel with the bot's own permissions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import discord
from discord import app_commands

from bot.app import MusicBot
from bot.generation import JobOutcome, Phase, too_large_note
from bot.models import Clip, FailureReason, GenerationRequest, Job, Requester, VoteTally
from cogs.render import clip_filename, render_clip_embed, render_outcome, render_progress

log = logging.getLogger(__name__)

# Builds the buttons under a clip message (job id, position, current votes).
ClipViewFactory = Callable[[int, int, VoteTally], discord.ui.View]

# Discord voids interaction tokens after 15 minutes; stop using them a minute early.
TOKEN_SAFE_LIFETIME = timedelta(minutes=14)
DEAD_TOKEN_CODES = {(401, 50027), (404, 10015)}


class InteractionDelivery:
    """A DeliveryTarget bound to the `/music` interaction that started the job."""

    def __init__(self, bot: MusicBot, interaction: discord.Interaction[MusicBot], clip_view: ClipViewFactory) -> None:
        self._bot = bot
        self._interaction = interaction
        self._clip_view = clip_view
        self._token_dead = False
        self._response_message_id: int | None = None

    @property
    def upload_limit(self) -> int:
        """The interaction's attachment limit (guild boosts and the invoker's Nitro), never below 10 MiB."""
        return max(self._interaction.filesize_limit, discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES)

    def remember_response_message(self, message_id: int | None) -> None:
        self._response_message_id = message_id

    def _token_usable(self) -> bool:
        return not self._token_dead and discord.utils.utcnow() < self._interaction.created_at + TOKEN_SAFE_LIFETIME

    def _note_token_failure(self, error: discord.HTTPException) -> bool:
        """True when the error means the token is gone for good; it is then never used again."""
        if (error.status, error.code) in DEAD_TOKEN_CODES:
            log.info(
                "interaction %s token is dead (%s/%s); using the channel",
                self._interaction.id,
                error.status,
                error.code,
            )
            self._token_dead = True
        return self._token_dead

    async def show_progress(self, job: Job, phase: Phase) -> None:
        await self._edit_response(content=render_progress(job, phase))

    async def show_outcome(self, outcome: JobOutcome) -> None:
        await self._edit_response(content=render_outcome(outcome))

    async def post_clip(self, job: Job, clip: Clip, position: int, audio: Path | None, link_note: str) -> int:
        if audio is not None:
            try:
                return await self._send(
                    job,
                    position,
                    embed=render_clip_embed(job, clip, position),
                    audio=audio,
                    filename=clip_filename(job, clip, position),
                )
            except discord.HTTPException as error:
                if error.status != 413:
                    raise
                log.info("job %d: Discord refused the upload as too large; posting a link", job.id)
                size = (await asyncio.to_thread(audio.stat)).st_size
                link_note = too_large_note(size, self.upload_limit)
        embed = render_clip_embed(job, clip, position, link_reason=link_note)
        return await self._send(job, position, embed=embed, audio=None, filename="")

    async def _send(self, job: Job, position: int, *, embed: discord.Embed, audio: Path | None, filename: str) -> int:
        # discord.File objects are single-use: build a new one for every attempt.
        def files() -> dict[str, Any]:
            return {"file": discord.File(audio, filename=filename)} if audio is not None else {}

        view = self._clip_view(job.id, position, VoteTally())
        if self._token_usable():
            try:
                message = await self._interaction.followup.send(embed=embed, view=view, wait=True, **files())
                return message.id
            except discord.HTTPException as error:
                if not self._note_token_failure(error):
                    raise
        channel = self._channel(job)
        sent = await channel.send(
            content=f"<@{job.requester.user_id}>",
            embed=embed,
            view=view,
            allowed_mentions=discord.AllowedMentions(users=[discord.Object(job.requester.user_id)]),
            **files(),
        )
        return sent.id

    async def _edit_response(self, *, content: str) -> None:
        if self._token_usable():
            try:
                await self._interaction.edit_original_response(content=content)
                return
            except discord.HTTPException as error:
                if not self._note_token_failure(error):
                    raise
        if self._response_message_id is not None:
            channel = self._bot.get_partial_messageable(self._interaction.channel_id or 0)
            await channel.get_partial_message(self._response_message_id).edit(content=content)

    def _channel(self, job: Job) -> discord.abc.Messageable:
        return self._bot.get_partial_messageable(job.requester.channel_id, guild_id=job.requester.guild_id)


async def start_generation(
    bot: MusicBot, interaction: discord.Interaction[MusicBot], request: GenerationRequest, clip_view: ClipViewFactory
) -> None:
    """Reserve before deferring (so a refusal stays private), then defer publicly and start the job.

    Shared by `/music`, the `/music-custom` form and the `Again` button: all go through the same quota.
    """
    if interaction.guild_id is None or interaction.channel_id is None:
        raise app_commands.NoPrivateMessage()
    generation = bot.services.generation
    requester = Requester(interaction.guild_id, interaction.channel_id, interaction.user.id)
    job = await generation.accept(requester, request)
    try:
        response = await interaction.response.defer(thinking=True)
    except discord.HTTPException as error:
        log.warning("job %d: could not acknowledge the interaction (%s)", job.id, error)
        await generation.abandon(job, FailureReason.NOT_ACKNOWLEDGED)
        return
    target = InteractionDelivery(bot, interaction, clip_view)
    message_id = response.message_id if response is not None else None
    if message_id is not None:
        target.remember_response_message(message_id)
        await generation.remember_response_message(job, message_id)
    generation.start(job, target)
