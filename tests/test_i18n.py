"""The catalogues: every language has every English key with the same placeholders, and the localised
commands keep within Discord's limits."""

from __future__ import annotations

import ast
import re
import string
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from discord import app_commands

from bot.__main__ import build_bot
from bot.app import EXTENSIONS, MusicBot
from bot.settings import Settings
from cogs.i18n import DEFAULT_LANGUAGE, LANGUAGES, LOCALES_DIR, CatalogueTranslator, catalogue, command_key, t, tn

OTHER_LANGUAGES = sorted(set(LANGUAGES) - {DEFAULT_LANGUAGE})


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def test_every_catalogue_file_is_a_language_and_every_language_has_one() -> None:
    assert {path.stem for path in LOCALES_DIR.glob("*.po")} == set(LANGUAGES)
    assert {"en", "fr", "de", "es", "pt_BR", "ja"} <= set(LANGUAGES)


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_a_catalogue_has_every_english_key_with_the_same_placeholders(language: str) -> None:
    english, other = catalogue(DEFAULT_LANGUAGE), catalogue(language)
    assert set(other.messages) == set(english.messages), "keys missing (-) or unknown (+) in " + language
    assert set(other.plurals) == set(english.plurals)
    for key, text in english.messages.items():
        assert placeholders(other.messages[key]) == placeholders(text), f"{language}: {key}"
    for key, forms in english.plurals.items():
        wanted = set().union(*map(placeholders, forms))
        for form in other.plurals[key]:
            assert placeholders(form) == wanted, f"{language}: {key}"


def test_a_missing_key_or_placeholder_is_caught(tmp_path: Path) -> None:
    """The checker itself: a placeholder renamed in a translation is a difference."""
    assert placeholders("Done: {count} songs, {when}") != placeholders("Fertig: {anzahl} Songs, {when}")


def test_english_is_the_default_and_the_fallback() -> None:
    english = t(None, "error.guild_only")
    assert english == "This command only works inside a server."
    assert t("ko", "error.guild_only") == english  # a Discord locale without a catalogue
    assert t("en-GB", "error.guild_only") == english
    assert t("fr", "error.guild_only") == "Cette commande ne fonctionne que sur un serveur."
    assert t("es-419", "error.guild_only") == t("es-ES", "error.guild_only") != english


def test_plurals_follow_each_language_rule() -> None:
    assert tn("en", "outcome.done", 1) == "Done: 1 song below."
    assert tn("en", "outcome.done", 0) == "Done: 0 songs below."
    assert tn("fr", "outcome.done", 0) == "Terminé : 0 chanson ci-dessous."  # French counts 0 as one
    assert tn("fr", "outcome.done", 2) == "Terminé : 2 chansons ci-dessous."
    assert tn("ja", "outcome.done", 2) == "完了\uff1a下に2曲あります。"  # a full-width colon, as Japanese writes it


@pytest.fixture
async def offline_bot(tmp_path: Path) -> AsyncIterator[MusicBot]:
    """The bot with every extension loaded and the translator set, never connected."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, discord_token="offline", aiml_api_key="offline", database_url=f"sqlite:///{tmp_path}/db.sqlite3"
    )
    async with build_bot(settings) as bot:
        for extension in EXTENSIONS:
            await bot.load_extension(extension)
        await bot.tree.set_translator(CatalogueTranslator())
        yield bot


def _is_name_character(character: str) -> bool:
    """Discord's `^[-_\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$`."""
    name = unicodedata.name(character, "")
    return character in "-_" or unicodedata.category(character)[0] in "LN" or name.startswith(("DEVANAGARI", "THAI"))


def _check_name(name: str, where: str) -> None:
    assert 1 <= len(name) <= 32, f"{where}: {name!r} is not 1-32 characters"
    assert name == name.lower(), f"{where}: {name!r} is not lower case"
    assert all(_is_name_character(c) for c in name), f"{where}: {name!r} holds a character Discord refuses"


def _walk(payload: dict[str, Any], where: str) -> None:
    """A command or option: its localised names and descriptions, its choices, its options."""
    chat_input = payload.get("type", 1) == 1 or "description" in payload
    for locale, name in (payload.get("name_localizations") or {}).items():
        if chat_input:
            _check_name(name, f"{where} [{locale}]")
        else:
            assert 1 <= len(name) <= 32, f"{where} [{locale}]"
    for locale, description in (payload.get("description_localizations") or {}).items():
        assert 1 <= len(description) <= 100, f"{where} [{locale}]: {len(description)} characters"
    for choice in payload.get("choices") or []:
        for locale, name in (choice.get("name_localizations") or {}).items():
            assert 1 <= len(name) <= 100, f"{where} choice {choice['value']} [{locale}]"
    options = payload.get("options") or []
    for locale in {locale for option in options for locale in option.get("name_localizations") or {}}:
        names = [(option.get("name_localizations") or {}).get(locale, option["name"]) for option in options]
        assert len(names) == len(set(names)), f"{where} [{locale}]: two options share a name: {names}"
    for option in options:
        _walk(option, f"{where} {option['name']}")


async def test_localised_commands_keep_within_discords_limits(offline_bot: MusicBot) -> None:
    payload = await offline_bot.command_payload()
    for command in payload:
        _walk(command, command["name"])
    music = next(command for command in payload if command["name"] == "music")
    assert music["name_localizations"]["fr"] == "musique"
    assert set(music["name_localizations"]) >= {"fr", "de", "es-ES", "es-419", "pt-BR", "ja"}
    assert "en-US" not in music["name_localizations"]  # English is the command's own name
    for locale in {locale for command in payload for locale in command.get("name_localizations") or {}}:
        names = [(command.get("name_localizations") or {}).get(locale, command["name"]) for command in payload]
        assert len(names) == len(set(names)), f"[{locale}] two commands share a name"


async def test_every_command_string_is_in_the_english_catalogue_as_written(offline_bot: MusicBot) -> None:
    """The English catalogue lists every command string with the code's own text, so a translator sees what
    each key means, and every other catalogue translates all of them."""
    seen: dict[str, str] = {}

    class Recorder(app_commands.Translator):
        async def translate(self, string: app_commands.locale_str, locale: Any, context: Any) -> str | None:
            key = command_key(context)
            assert key is not None
            seen[key] = string.message
            return None

    await offline_bot.tree.set_translator(Recorder())
    await offline_bot.command_payload()
    english = catalogue(DEFAULT_LANGUAGE).messages
    assert seen, "no command string reached the translator"
    for key, text in seen.items():
        assert english.get(key) == text, f"{key}: the code says {text!r}, en.po says {english.get(key)!r}"
    command_keys = {key for key in english if key.startswith(("command.", "choice.", "menu."))}
    assert command_keys == set(seen), "en.po holds command keys no command uses"


# Discord's limits for a modal: its title and each text input's label at most 45 characters, a placeholder 100.
FORM_LIMITS = {"form.title": 45, "form.label.": 45, "form.placeholder.": 100}


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_the_custom_song_form_keeps_within_discords_limits_in_every_language(language: str) -> None:
    messages = catalogue(language).messages
    form_keys = [key for key in catalogue(DEFAULT_LANGUAGE).messages if key.startswith("form.")]
    assert {"form.title", "form.label.title", "form.label.lyrics", "form.placeholder.optional_lyrics"} <= set(form_keys)
    for key in form_keys:
        limit = next(limit for prefix, limit in FORM_LIMITS.items() if key.startswith(prefix))
        assert 1 <= len(messages[key]) <= limit, f"{language}: {key} is {len(messages[key])} characters"


KEYED_ERRORS = {"UserFacingError", "InvalidRequestError"}


def unnamed(text: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", text)


def test_a_core_refusal_with_a_key_says_in_english_what_its_message_says() -> None:
    """`UserFacingError(message, key=...)` in bot/: the member reads the catalogue's words, so the English entry
    must be the message itself (its f-string fields as placeholders)."""
    root = Path(__file__).resolve().parent.parent / "bot"
    found = 0
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {  # module-level NAME = "text", for a message passed by name
            target.id: node.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) in KEYED_ERRORS):
                continue
            key = next((kw.value for kw in node.keywords if kw.arg == "key"), None)
            if not isinstance(key, ast.Constant) or not node.args or "count" in {kw.arg for kw in node.keywords}:
                continue  # a counted phrase's English has two forms: checked by the plural tests
            message = node.args[0]
            if isinstance(message, ast.Name):
                message = constants[message.id]
            if isinstance(message, ast.JoinedStr):
                english = "".join(
                    part.value if isinstance(part, ast.Constant) else "{" + ast.unparse(part.value) + "}"
                    for part in message.values
                )
            else:
                assert isinstance(message, ast.Constant)
                english = message.value
            written = catalogue(DEFAULT_LANGUAGE).messages.get(key.value)
            assert isinstance(written, str), f"{path.name}: {key.value} is not in en.po"
            # The same words; a placeholder may be named apart from the f-string's expression (values= maps it).
            assert re.sub(r"\{[^}]*\}", "{}", written) == re.sub(r"\{[^}]*\}", "{}", english), (
                f"{path.name}: {key.value}"
            )
            found += 1
    assert found
