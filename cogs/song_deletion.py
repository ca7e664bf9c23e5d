"""Moderators delete one of the bot's songs: the message's "Delete song" app command, and the shared flow behind it
and `/music-admin delete-song` (cogs/admin.py): the message, its votes and its record go."""

from __future__ import annotations

import logging
import re

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import MusicBot
from bot.privacy import PrivacyService
from cogs.i18n import refusal, t, tn
from cogs.render import quote_user_text

log = logging.getLogger(__name__)

Interaction = discord.Interaction[MusicBot]

# What Discord's "Copy Message Link" gives (and its older or test-client hosts), or a bare message id.
_MESSAGE_LINK = re.compile(
    r"https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/channels/(?P<guild>\d+)/\d+/(?P<message>\d+)/?"
)
_MESSAGE_ID = re.compile(r"\d{15,21}")


def message_reference(text: str) -> tuple[int | None, int] | None:
    """(the link's server, the message id) from a message link, (None, id) from a bare id, else None."""
    text = text.strip().strip("<>")
    if found := _MESSAGE_LINK.fullmatch(text):
        return int(found["guild"]), int(found["message"])
    if _MESSAGE_ID.fullmatch(text):
        return None, int(text)
    return None


def require_moderator(interaction: Interaction) -> int:
    """The server's id, once the member is known to have Manage Server here (checked again at run time:
    `default_permissions` is only a hint that servers can override)."""
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    if not interaction.permissions.manage_guild:
        raise app_commands.MissingPermissions(["manage_guild"])
    return interaction.guild_id


async def delete_song_by_reference(interaction: Interaction, privacy: PrivacyService, text: str) -> None:
    """`/music-admin delete-song message:<link or id>`."""
    require_moderator(interaction)
    reference = message_reference(text)
    if reference is None:
        raise refusal("delete.not_a_reference")
    linked_guild, message_id = reference
    if linked_guild not in (None, interaction.guild_id):
        raise refusal("delete.not_a_song")
    await delete_song(interaction, privacy, message_id)


async def delete_song(interaction: Interaction, privacy: PrivacyService, message_id: int) -> None:
    """Deletes the message first (a message Discord no longer has is fine), then its votes and its record; the
    request stays in the usage figures. Refused for anything but a song of this server's finished request."""
    guild_id = require_moderator(interaction)
    song = await privacy.song(guild_id, message_id)
    if song is None:
        raise refusal("delete.not_a_song")
    if not song.job_finished:
        raise refusal("delete.still_running")
    await interaction.response.defer(ephemeral=True, thinking=True)
    channel = interaction.client.get_partial_messageable(song.channel_id, guild_id=guild_id)
    try:
        await channel.get_partial_message(song.message_id).delete()
    except discord.NotFound:
        log.info("guild=%d message=%d was gone already; deleting its record", guild_id, song.message_id)
    except discord.HTTPException as error:
        raise refusal("delete.refused", status=error.status) from error
    votes = await privacy.delete_song(song, actor_id=interaction.user.id)
    log.info("guild=%d job=%d phase=song_deleted by=%d votes=%s", guild_id, song.job_id, interaction.user.id, votes)
    locale = interaction.locale
    counted = tn(locale, "delete.votes", votes) if votes is not None else t(locale, "delete.votes_unknown")
    words = t(locale, "delete.done", title=quote_user_text(song.title), votes=counted)
    await interaction.edit_original_response(content=words)


class SongDeletionCog(commands.Cog):
    """The "Delete song" command in a message's Apps menu. Context menus cannot live in a cog's body, so it is
    added to the tree when the cog loads."""

    def __init__(self, bot: MusicBot, privacy: PrivacyService) -> None:
        self.bot = bot
        self.privacy = privacy
        self.menu = app_commands.ContextMenu(name="Delete song", callback=self.delete_from_menu)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def delete_from_menu(self, interaction: Interaction, message: discord.Message) -> None:
        await delete_song(interaction, self.privacy, message.id)


async def setup(bot: MusicBot) -> None:
    await bot.add_cog(SongDeletionCog(bot, bot.services.privacy))
