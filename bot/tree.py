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
from cogs.quota_render import render_quota_refusal
from cogs.rules_render import render_channel_refusal, render_prompt_refusal

if TYPE_CHECKING:
    from bot.app import MusicBot

log = logging.getLogger(__name__)

_PERMISSION_NAMES = {"manage_guild": "Manage Server"}


def words_for_error(error: BaseException) -> str:
    """The text the member sees; unexpected errors are logged with a short code the member can quote."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, QuotaExceededError):  # structured: the Discord layer words it
        return render_quota_refusal(error)
    if isinstance(error, PromptRefusedError):
        return render_prompt_refusal(error)
    if isinstance(error, ChannelNotAllowedError):
        return render_channel_refusal(error)
    if isinstance(error, UserFacingError):
        return error.message
    if is_transient_storage_error(error):
        log.warning("the database failed during a command: %s", error)
        return (
            "The bot's database is not answering right now, so this was not done (and does not count against any "
            "limit). Please try again in a minute."
        )
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command only works inside a server."
    if isinstance(error, app_commands.MissingPermissions):
        needed = ", ".join(_PERMISSION_NAMES.get(name, name.replace("_", " ")) for name in error.missing_permissions)
        return f"You need the {needed} permission to use this."
    if isinstance(error, app_commands.BotMissingPermissions):
        missing = ", ".join(error.missing_permissions).replace("_", " ")
        return f"I am missing the {missing} permission in this channel. Please ask a moderator to grant it."
    if isinstance(error, app_commands.CommandOnCooldown):
        again = math.ceil(time.time() + error.retry_after)
        return f"You're using this command too quickly; try again <t:{again}:R>."
    if isinstance(error, app_commands.CheckFailure):
        return "You are not allowed to use this command here."
    code = secrets.token_hex(3)
    log.error("unhandled error %s", code, exc_info=error)
    return f"Something went wrong on the bot's side (error code `{code}`). Please try again later."


async def answer_error(interaction: discord.Interaction[MusicBot], error: BaseException) -> None:
    """Answers ephemerally; if the interaction was already deferred publicly, the deferred message says it."""
    text = words_for_error(error)
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
