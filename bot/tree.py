"""The command tree: one place that answers every command, modal and button error the same way."""

from __future__ import annotations

import logging
import math
import secrets
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.errors import ChannelNotAllowedError, PromptRefusedError, QuotaExceededError, UserFacingError
from bot.storage import is_transient_storage_error
from cogs.i18n import Locale, has_key, t
from cogs.quota_render import render_quota_refusal
from cogs.rules_render import render_channel_refusal, render_prompt_refusal

if TYPE_CHECKING:
    from bot.app import MusicBot

log = logging.getLogger(__name__)


def _permission_names(names: list[str], locale: Locale) -> str:
    """As the member's Discord client names them ("Manage Server"); one without a catalogue entry as it is."""
    return ", ".join(
        t(locale, key) if has_key(key := f"permission.{name}") else name.replace("_", " ") for name in names
    )


def words_for_error(error: BaseException, locale: Locale = None) -> str:
    """The text the member sees, in their language; unexpected errors are logged with a short code the member
    can quote."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, QuotaExceededError):  # structured: the Discord layer words it
        return render_quota_refusal(error, locale)
    if isinstance(error, PromptRefusedError):
        return render_prompt_refusal(error, locale)
    if isinstance(error, ChannelNotAllowedError):
        return render_channel_refusal(error, locale)
    if isinstance(error, UserFacingError):
        return t(locale, error.key, **error.values) if error.key is not None else error.message
    if is_transient_storage_error(error):
        log.warning("the database failed during a command: %s", error)
        return t(locale, "error.database")
    if isinstance(error, app_commands.NoPrivateMessage):
        return t(locale, "error.guild_only")
    if isinstance(error, app_commands.MissingPermissions):
        return t(locale, "error.missing_permissions", permissions=_permission_names(error.missing_permissions, locale))
    if isinstance(error, app_commands.BotMissingPermissions):
        missing = _permission_names(error.missing_permissions, locale)
        return t(locale, "error.bot_missing_permissions", permissions=missing)
    if isinstance(error, app_commands.CommandOnCooldown):
        again = math.ceil(time.time() + error.retry_after)
        return t(locale, "error.cooldown", when=f"<t:{again}:R>")
    if isinstance(error, app_commands.CheckFailure):
        return t(locale, "error.not_allowed")
    code = secrets.token_hex(3)
    log.error("unhandled error %s", code, exc_info=error)
    return t(locale, "error.unexpected", code=code)


async def answer_error(interaction: discord.Interaction[MusicBot], error: BaseException) -> None:
    """Answers ephemerally, in the member's language; if the interaction was already deferred publicly, the
    deferred message says it."""
    text = words_for_error(error, interaction.locale)
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
        elif interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
            await interaction.edit_original_response(content=text)
        else:
            await interaction.followup.send(text, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not tell the member about an error (interaction %s)", interaction.id)


class MusicCommandTree(app_commands.CommandTree["MusicBot"]):
    async def interaction_check(self, interaction: discord.Interaction[MusicBot], /) -> bool:
        """Every command is claimed once, before anything is reserved: a second session that received the
        same interaction does nothing."""
        return await interaction.client.claim(interaction)

    async def on_error(self, interaction: discord.Interaction[MusicBot], error: app_commands.AppCommandError) -> None:
        await answer_error(interaction, error)
