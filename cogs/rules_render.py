"""Rendering for the moderators' rules: a refused prompt, a channel that is not allowed, the lists."""

from __future__ import annotations

import io
from collections.abc import Sequence

import discord

from bot.errors import ChannelNotAllowedError, PromptRefusedError
from bot.models import BlockedPhrase
from cogs.i18n import Locale, t
from cogs.render import quote_user_text

# An embed's description holds 4,096 characters; a longer list goes out as a text file.
LIST_CHARS = 4000


def render_prompt_refusal(refusal: PromptRefusedError, locale: Locale = None) -> str:
    key = "rules.refused_by_operator" if refusal.by_operator else "rules.refused_by_server"
    field = t(locale, f"rules.field.{refusal.field}")
    return t(locale, key, field=field, phrase=quote_user_text(refusal.phrase, 100))


def render_channel_refusal(refusal: ChannelNotAllowedError, locale: Locale = None) -> str:
    places = ", ".join(f"<#{channel_id}>" for channel_id in refusal.allowed)
    return t(locale, "rules.channel_not_allowed", channels=places)


def render_channels(channel_ids: Sequence[int], locale: Locale = None) -> str:
    if not channel_ids:
        return t(locale, "rules.channels.none")
    return t(locale, "rules.channels.only", channels=", ".join(f"<#{channel_id}>" for channel_id in channel_ids))


def render_phrases(
    phrases: Sequence[BlockedPhrase], locale: Locale = None
) -> tuple[discord.Embed, discord.File | None]:
    """The server's blocked phrases, oldest first; as an attached text file when they do not fit."""
    embed = discord.Embed(title=t(locale, "rules.phrases.title", count=len(phrases)), colour=discord.Colour.dark_red())
    if not phrases:
        embed.description = t(locale, "rules.phrases.none")
        return embed, None
    lines = "\n".join(
        t(locale, "rules.phrases.line", phrase=quote_user_text(entry.phrase, 100), member=f"<@{entry.added_by}>")
        for entry in phrases
    )
    if len(lines) <= LIST_CHARS:
        embed.description = lines
        return embed, None
    embed.description = t(locale, "rules.phrases.attached")
    text = "\n".join(entry.phrase for entry in phrases) + "\n"
    return embed, discord.File(io.BytesIO(text.encode("utf-8")), filename="blocked-phrases.txt")
