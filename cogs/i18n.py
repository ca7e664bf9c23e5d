"""Localisation: one gettext catalogue per language (cogs/locales/*.po), the words in a reader's locale, and the
command tree's Translator for command names, descriptions, options and choices."""

from __future__ import annotations

import functools
import gettext
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import babel
import discord
from babel.messages.pofile import read_po
from discord import app_commands
from discord.app_commands import TranslationContextLocation, TranslationContextTypes, locale_str

from bot.errors import UserFacingError

LOCALES_DIR = Path(__file__).with_name("locales")
DEFAULT_LANGUAGE = "en"
# Each catalogue, and the Discord locales it serves. Every other Discord locale reads English.
LANGUAGES: Mapping[str, tuple[discord.Locale, ...]] = {
    "en": (discord.Locale.american_english, discord.Locale.british_english),
    "fr": (discord.Locale.french,),
    "de": (discord.Locale.german,),
    "es": (discord.Locale.spain_spanish, discord.Locale.latin_american_spanish),
    "pt_BR": (discord.Locale.brazil_portuguese,),
    "ja": (discord.Locale.japanese,),
}
_LANGUAGE_OF_LOCALE = {locale.value: language for language, locales in LANGUAGES.items() for locale in locales}

Locale = discord.Locale | str | None
"""A reader's locale: `interaction.locale`, `guild.preferred_locale`, a Discord code such as "pt-BR", or None."""


@dataclass(frozen=True, slots=True)
class Catalogue:
    """One language's messages: key -> text, and key -> its plural forms with the language's plural rule."""

    language: str
    messages: Mapping[str, str]
    plurals: Mapping[str, tuple[str, ...]]
    plural_index: Callable[[int], int]


def guild_locale(client: discord.Client, guild_id: int) -> Locale:
    """A post for everyone in a server's channel speaks the server's preferred language."""
    guild = client.get_guild(guild_id)
    return guild.preferred_locale if guild is not None else None


def public_locale(interaction: discord.Interaction[Any]) -> Locale:
    """A post a command makes for the whole channel: the server's language, as the interaction gave it, else as
    the bot knows the server."""
    if interaction.guild_locale is not None:
        return interaction.guild_locale
    return guild_locale(interaction.client, interaction.guild_id) if interaction.guild_id is not None else None


@functools.cache
def catalogue(language: str) -> Catalogue:
    """Read once from the .po file itself: `uv run` on a fresh clone needs no compile step."""
    with (LOCALES_DIR / f"{language}.po").open("rb") as po_file:
        parsed = read_po(po_file, locale=language)
    messages: dict[str, str] = {}
    plurals: dict[str, tuple[str, ...]] = {}
    for message in parsed:
        if not message.id:
            continue  # the header
        if isinstance(message.id, tuple):
            forms = tuple(message.string) if isinstance(message.string, tuple) else ()
            if all(forms):
                plurals[message.id[0]] = forms
        elif isinstance(message.id, str) and isinstance(message.string, str) and message.string:
            messages[message.id] = message.string
    return Catalogue(language, messages, plurals, gettext.c2py(parsed.plural_expr))


def language_of(locale: Locale) -> str:
    """The catalogue for a Discord locale: its own, else its language's ("es-419" reads "es"), else English."""
    if locale is None:
        return DEFAULT_LANGUAGE
    code = locale.value if isinstance(locale, discord.Locale) else str(locale)
    for candidate in (code, code.replace("_", "-"), code.replace("_", "-").split("-")[0]):
        if candidate in _LANGUAGE_OF_LOCALE:
            return _LANGUAGE_OF_LOCALE[candidate]
        if candidate.replace("-", "_") in LANGUAGES:
            return candidate.replace("-", "_")
    return DEFAULT_LANGUAGE


def t(locale: Locale, key: str, /, **values: object) -> str:
    """The message `key` in the reader's language (English where a catalogue lacks it), placeholders filled."""
    text = catalogue(language_of(locale)).messages.get(key) or catalogue(DEFAULT_LANGUAGE).messages[key]
    return text.format(**values)


def has_key(key: str) -> bool:
    """Whether the English catalogue (the one every key is in) holds `key`."""
    return key in catalogue(DEFAULT_LANGUAGE).messages or key in catalogue(DEFAULT_LANGUAGE).plurals


def tn(locale: Locale, key: str, count: int, /, **values: object) -> str:
    """The plural message `key` for `count` items, by the language's own rule (French says "0 chanson");
    `{count}` is one of its placeholders."""
    language = catalogue(language_of(locale))
    if key not in language.plurals:
        language = catalogue(DEFAULT_LANGUAGE)
    forms = language.plurals[key]
    return forms[min(language.plural_index(count), len(forms) - 1)].format(count=count, **values)


def refusal(key: str, /, count: int | None = None, **values: str | int) -> UserFacingError:
    """A refusal to raise, worded from the catalogue: its English text for logs, and the key and values the
    command tree words it with in the member's language (`count`: a counted phrase)."""
    message = t(None, key, **values) if count is None else tn(None, key, count, **values)
    return UserFacingError(message, key=key, values=values, count=count)


def ordinal_form(locale: Locale, number: int) -> str:
    """The CLDR ordinal category of `number` in the reader's language: "one", "two", "few" or "other"."""
    form = _babel_locale(language_of(locale)).ordinal_form(number)
    return form if form in ORDINAL_FORMS else "other"


ORDINAL_FORMS = ("one", "two", "few", "other")


@functools.cache
def _babel_locale(language: str) -> babel.Locale:
    return babel.Locale.parse(language)


def command_key(context: TranslationContextTypes) -> str | None:
    """The catalogue key of a command's name, description, option or choice, from where the string sits:
    "command.music-admin.quota.description", "command.music.option.prompt.name", "choice.week",
    "menu.delete-song.name". discord.py marks every such string for translation by itself."""
    location, data = context.location, context.data
    if isinstance(data, app_commands.ContextMenu):
        return f"menu.{data.name.lower().replace(' ', '-')}.name"
    if isinstance(data, app_commands.Command | app_commands.Group):
        part = "name" if location in (_NAME, TranslationContextLocation.group_name) else "description"
        return f"command.{_dotted(data.qualified_name)}.{part}"
    if isinstance(data, app_commands.Parameter):
        part = "name" if location is TranslationContextLocation.parameter_name else "description"
        return f"command.{_dotted(data.command.qualified_name)}.option.{data.name}.{part}"
    if isinstance(data, app_commands.Choice):
        return f"choice.{data.value}"
    return None


_NAME = TranslationContextLocation.command_name


def _dotted(qualified_name: str) -> str:
    return qualified_name.replace(" ", ".")


class CatalogueTranslator(app_commands.Translator):
    """Gives the synced commands their `name_localizations` and `description_localizations` from the
    catalogues. English is the commands' own text, so it is never returned as a localisation."""

    async def translate(
        self, string: locale_str, locale: discord.Locale, context: TranslationContextTypes
    ) -> str | None:
        language = language_of(locale)
        key = command_key(context)
        if language == DEFAULT_LANGUAGE or key is None or locale.value not in _LANGUAGE_OF_LOCALE:
            return None
        return catalogue(language).messages.get(key)
