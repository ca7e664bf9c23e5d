"""Delivery to Discord: progress, clips and the final word, through the interaction token while it lives,
then (and after a restart) through the channel with the bot's own permissions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import discord
from discord import app_commands

from bot.app import MusicBot
from bot.backends import ServerProgress
from bot.errors import DeliveryError, UserFacingError
from bot.metrics import DeliveryRoute
from bot.models import Clip, FailureReason, GenerationRequest, Job, JobStatus, Requester, VoteTally
from bot.runtime import AsLink, JobOutcome, JobRuntime, LinkReason, ListenLink, Phase
from cogs.buttons import clip_view, progress_view
from cogs.i18n import Locale, guild_locale, public_locale, t, tn
from cogs.render import (
    HANDED_OVER_KEY,
    clip_filename,
    clip_footer,
    render_clip_embed,
    render_outcome,
    render_progress,
)

log = logging.getLogger(__name__)

Interaction = discord.Interaction[MusicBot]


# Discord voids interaction tokens after 15 minutes; stop using them a minute early.
TOKEN_SAFE_LIFETIME = timedelta(minutes=14)
DEAD_TOKEN_CODES = {(401, 50027), (404, 10015)}
# What the bot needs in a channel to deliver there, with or without the interaction token.
# Named to the member as their client names them ("permission.<name>" in the catalogues).
REQUIRED_PERMISSIONS = ("view_channel", "send_messages", "attach_files", "embed_links", "read_message_history")
HISTORY_SEARCH_LIMIT = 100


def as_delivery_error(error: Exception) -> DeliveryError:
    """Discord's failures, sorted into worth retrying (5xx, rate limits, network) or not."""
    if isinstance(error, discord.HTTPException):
        transient = error.status >= 500 or error.status == 429
        return DeliveryError(f"HTTP {error.status} code {error.code}: {error.text}", transient=transient)
    return DeliveryError(f"{type(error).__name__}: {error}", transient=True)


class ChannelDelivery:
    """A DeliveryTarget posting with the bot's own token in the job's channel, mentioning the requester
    (the only ping the bot sends). Used after a restart, and by InteractionDelivery once its token is gone."""

    def __init__(self, bot: MusicBot, job: Job) -> None:
        self._bot = bot
        self._job = job
        self._response_message_id = job.response_message_id

    @property
    def upload_limit(self) -> int:
        guild = self._bot.get_guild(self._job.requester.guild_id)
        return guild.filesize_limit if guild is not None else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES

    @property
    def locale(self) -> Locale:
        """Everyone in the channel reads these posts: they speak the server's preferred language."""
        return guild_locale(self._bot, self._job.requester.guild_id)

    def remember_response_message(self, message_id: int | None) -> None:
        self._response_message_id = message_id

    async def show_progress(
        self,
        job: Job,
        phase: Phase,
        listen: Sequence[ListenLink] = (),
        line: int | None = None,
        server: ServerProgress | None = None,
    ) -> None:
        content = render_progress(job, phase, listen, line, server, locale=self.locale)
        await self._edit_response(content=content, view=progress_view(job.id, self.locale))

    async def show_outcome(self, outcome: JobOutcome) -> None:
        text = render_outcome(outcome, locale=self.locale)
        await self._edit_response(content=text, view=None)
        if outcome.job.status is not JobStatus.DELIVERED:
            # The edited message pings nobody; a requester who is no longer watching must hear the news.
            await self._channel().send(
                content=f"<@{outcome.job.requester.user_id}> {text}",
                allowed_mentions=self._requester_mention(),
            )

    async def post_clip(self, job: Job, clip: Clip, position: int, audio: Path | None, link: AsLink | None) -> int:
        if audio is not None:
            try:
                embed = render_clip_embed(job, clip, position, locale=self.locale)
                return await self._send_clip(job, position, embed, audio, clip_filename(job, clip, position, audio))
            except discord.HTTPException as error:
                if error.status != 413:
                    raise as_delivery_error(error) from error
                log.info("job=%d Discord refused the upload as too large; posting a link", job.id)
                size = (await asyncio.to_thread(audio.stat)).st_size
                link = AsLink(LinkReason.TOO_LARGE, size, self.upload_limit)
            except (OSError, TimeoutError) as error:
                raise as_delivery_error(error) from error
        embed = render_clip_embed(job, clip, position, link=link, locale=self.locale)
        try:
            return await self._send_clip(job, position, embed, None, "")
        except (discord.HTTPException, OSError, TimeoutError) as error:
            raise as_delivery_error(error) from error

    async def find_posted_clip(self, job: Job, position: int) -> int | None:
        """Looks through the channel since the job began for the bot's own message carrying this clip."""
        footer = clip_footer(job.id, position)
        me = self._bot.user
        try:
            async for message in self._channel().history(limit=HISTORY_SEARCH_LIMIT, after=job.created_at):
                ours = me is not None and message.author.id == me.id
                if ours and message.embeds and message.embeds[0].footer.text == footer:
                    return message.id
        except discord.HTTPException as error:
            log.warning("job=%d could not read the channel history: %s", job.id, error)
        return None

    async def _send_clip(self, job: Job, position: int, embed: discord.Embed, audio: Path | None, filename: str) -> int:
        sent = await self._channel().send(
            content=f"<@{job.requester.user_id}>",
            embed=embed,
            view=clip_view(job.id, position, VoteTally(), self.locale),
            allowed_mentions=self._requester_mention(),
            # Discord returns the message already sent with this nonce (a few minutes back) instead of posting
            # it twice, should two processes ever post the same clip; find_posted_clip covers anything older.
            nonce=clip_nonce(job.id, position),
            **_file(audio, filename),
        )
        self._bot.services.metrics.clip_delivered("link" if audio is None else "attachment", self._channel_route())
        return sent.id

    def _channel_route(self) -> DeliveryRoute:
        """How the metrics name a post in the channel."""
        return "channel"

    async def _edit_response(self, *, content: str, view: discord.ui.View | None) -> None:
        """The command's message: its text, and the Cancel button while the job runs (None removes it)."""
        if self._response_message_id is not None:
            message = self._channel().get_partial_message(self._response_message_id)
            await message.edit(content=content, view=view)

    def _channel(self) -> discord.PartialMessageable:
        return self._bot.get_partial_messageable(self._job.requester.channel_id, guild_id=self._job.requester.guild_id)

    def _requester_mention(self) -> discord.AllowedMentions:
        return discord.AllowedMentions(users=[discord.Object(self._job.requester.user_id)])


def clip_nonce(job_id: int, position: int) -> str:
    """The channel post's nonce for one clip (Discord allows 25 characters)."""
    return f"j{job_id}c{position}"


def _file(audio: Path | None, filename: str) -> dict[str, Any]:
    """discord.File objects are single-use: every attempt builds a new one."""
    return {"file": discord.File(audio, filename=filename)} if audio is not None else {}


class InteractionDelivery(ChannelDelivery):
    """Delivers through the `/music` interaction's token while it lives (no ping needed: the requester is
    watching), then falls back to the channel. A dead token is never used again."""

    def __init__(self, bot: MusicBot, job: Job, interaction: Interaction) -> None:
        super().__init__(bot, job)
        self._interaction = interaction
        self._token_dead = False
        # Timed on the bot's clock from when the command arrived (within 3 s of Discord creating it).
        self._token_expires = bot.services.clock() + TOKEN_SAFE_LIFETIME

    @property
    def locale(self) -> Locale:
        """The command's message is public: the server's language, as Discord gave it with the interaction."""
        return public_locale(self._interaction)

    @property
    def upload_limit(self) -> int:
        """The interaction's attachment limit (guild boosts and the invoker's Nitro), never below 10 MiB."""
        if not self._token_usable():
            return super().upload_limit
        return max(self._interaction.filesize_limit, discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES)

    def _token_usable(self) -> bool:
        return not self._token_dead and self._bot.services.clock() < self._token_expires

    def _channel_route(self) -> DeliveryRoute:
        return "channel" if self._token_usable() else "channel_fallback"  # usable: shared PostgreSQL posts there

    def _token_died(self, error: discord.HTTPException) -> bool:
        """True when the error means the token is gone for good; it is then never used again."""
        if (error.status, error.code) in DEAD_TOKEN_CODES:
            log.info(
                "job=%d interaction token is dead (%s/%s); using the channel", self._job.id, error.status, error.code
            )
            self._token_dead = True
        return self._token_dead

    async def show_outcome(self, outcome: JobOutcome) -> None:
        if self._token_usable():
            try:
                text = render_outcome(outcome, locale=self.locale)
                await self._interaction.edit_original_response(content=text, view=None)
                return
            except discord.HTTPException as error:
                if not self._token_died(error):
                    raise
        await super().show_outcome(outcome)

    async def _send_clip(self, job: Job, position: int, embed: discord.Embed, audio: Path | None, filename: str) -> int:
        # With several processes sharing the jobs (PostgreSQL), clips always go to the channel: only a channel
        # post carries a nonce, so a post still on its way from a stalled process and the post of the process
        # that took the job over make one message, not two. One process alone answers through the token.
        if self._token_usable() and not self._bot.settings.uses_postgres:
            try:
                message = await self._interaction.followup.send(
                    embed=embed,
                    view=clip_view(job.id, position, VoteTally(), self.locale),
                    wait=True,
                    **_file(audio, filename),
                )
                self._bot.services.metrics.clip_delivered("link" if audio is None else "attachment", "interaction")
                return message.id
            except discord.HTTPException as error:
                if not self._token_died(error):
                    raise
        return await super()._send_clip(job, position, embed, audio, filename)

    async def _edit_response(self, *, content: str, view: discord.ui.View | None) -> None:
        if self._token_usable():
            try:
                await self._interaction.edit_original_response(content=content, view=view)
                return
            except discord.HTTPException as error:
                if not self._token_died(error):
                    raise
        await super()._edit_response(content=content, view=view)


def check_bot_can_deliver(interaction: Interaction) -> None:
    """Refuses before anything is reserved when the bot could not post the songs in this channel."""
    permissions = interaction.app_permissions
    missing = [name for name in REQUIRED_PERMISSIONS if not getattr(permissions, name)]
    if missing:
        names = ", ".join(t(interaction.locale, f"permission.{name}") for name in missing)
        raise UserFacingError(tn(interaction.locale, "delivery.missing_permissions", len(missing), permissions=names))


async def check_channel_allowed(bot: MusicBot, interaction: Interaction) -> None:
    """Refuses when the server lists the channels music is made in and this is not one (nor a thread of one)."""
    if interaction.guild_id is None or interaction.channel_id is None:
        raise app_commands.NoPrivateMessage()
    parent_id = getattr(interaction.channel, "parent_id", None)
    here = {interaction.channel_id} | ({parent_id} if isinstance(parent_id, int) else set())
    await bot.services.rules.check_channel(interaction.guild_id, here)


async def start_generation(
    bot: MusicBot, runtime: JobRuntime, interaction: Interaction, request: GenerationRequest, *, contest: bool = False
) -> None:
    """Check, reserve before deferring (so a refusal stays private), then defer publicly and start the job.

    Shared by `/music`, the `/music-custom` form and the `Again` button: all go through the same quota. With
    `contest`, the job enters the server's running contest: refused before reserving when none runs or the member
    reached its cap, and marked as an entry right after the reservation, exactly within the cap (a simultaneous
    entry that took the last place gives this reservation back, still before the public answer).
    """
    if interaction.guild_id is None or interaction.channel_id is None:
        raise app_commands.NoPrivateMessage()
    await check_channel_allowed(bot, interaction)
    check_bot_can_deliver(interaction)
    requester = Requester(interaction.guild_id, interaction.channel_id, interaction.user.id)
    contests = bot.services.contests
    entering = await contests.check_entry(interaction.guild_id, interaction.user.id) if contest else None
    async with runtime.admit(requester, request) as reservation:
        if entering is not None:
            await contests.enter(entering, reservation.job.id, interaction.user.id)
        try:
            response = await interaction.response.defer(thinking=True)
        except discord.HTTPException as error:
            log.warning("job=%d could not acknowledge the interaction (%s)", reservation.job.id, error)
            reservation.abandon_reason = FailureReason.NOT_ACKNOWLEDGED
            return
        message_id = response.message_id if response is not None else None
        if message_id is not None and not await reservation.remember_response_message(message_id):
            with contextlib.suppress(discord.HTTPException):
                await interaction.edit_original_response(content=t(public_locale(interaction), HANDED_OVER_KEY))
            return
        reservation.start(InteractionDelivery(bot, reservation.job, interaction))
