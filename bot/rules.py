"""Moderators' rules: blocked phrases (a server's and the operator's file) and the channels where /music works.

A phrase matches whole words, ignoring case and accents: "Cafe" blocks "café" and "CAFÉ!" but not "cafeteria".
Text is compared as words (letters and digits, split on anything else) after NFKD, so full-width letters,
ligatures and zero-width characters hidden inside a word do not get past it. Phrases in scripts written without
spaces (Chinese, Japanese, Thai) cannot be split into words and match anywhere in the text.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bot.clock import Clock
from bot.errors import ChannelNotAllowedError, InvalidRequestError, PromptRefusedError
from bot.metrics import Metrics
from bot.models import BlockedPhrase, GenerationMode, GenerationRequest
from bot.storage.rules import RuleStore

log = logging.getLogger(__name__)

PHRASE_MAX_CHARS = 100
MAX_PHRASES_PER_SERVER = 200
MAX_CHANNELS_PER_SERVER = 25
BLOCKLIST_FILE_MAX_BYTES = 1_048_576

_WORD = re.compile(r"[^\W_]+")
_UNSPACED_SCRIPTS = ("CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR", "TIBETAN")


def _folded(text: str) -> str:
    """Case-folded, compatibility-decomposed, without combining marks or invisible format characters."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    kept = "".join(char for char in decomposed if unicodedata.category(char) not in ("Mn", "Me", "Cf"))
    return unicodedata.normalize("NFKC", kept)


def words_of(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(_folded(text)))


def normalise_phrase(phrase: str) -> str:
    """The words of a phrase joined by one space: how it is stored and compared. Empty when it has none."""
    return " ".join(words_of(phrase))


def _unspaced(words: str) -> bool:
    return any(unicodedata.name(char, "").startswith(_UNSPACED_SCRIPTS) for char in words)


@dataclass(frozen=True, slots=True)
class Rule:
    phrase: str  # as written, to name it in a refusal
    words: str  # normalised


class PhraseSet:
    """Phrases looked up by their word count: a text of W words costs W lookups per distinct phrase length,
    however many phrases there are."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._by_words: dict[tuple[str, ...], Rule] = {}
        self._substrings: list[Rule] = []
        for rule in rules:
            if not rule.words:
                continue
            if _unspaced(rule.words):
                self._substrings.append(rule)
            else:
                self._by_words.setdefault(tuple(rule.words.split(" ")), rule)
        self._lengths = sorted({len(key) for key in self._by_words})

    def __len__(self) -> int:
        return len(self._by_words) + len(self._substrings)

    def first_match(self, text: str) -> Rule | None:
        words = words_of(text)
        for length in self._lengths:
            for start in range(len(words) - length + 1):
                rule = self._by_words.get(words[start : start + length])
                if rule is not None:
                    return rule
        if self._substrings:
            joined = "".join(words)
            for rule in self._substrings:
                if rule.words.replace(" ", "") in joined:
                    return rule
        return None


def _parse_blocklist(text: str) -> list[Rule]:
    rules = []
    for line in text.splitlines():
        phrase = line.strip()
        if phrase and not phrase.startswith("#"):
            rules.append(Rule(phrase[:PHRASE_MAX_CHARS], normalise_phrase(phrase[:PHRASE_MAX_CHARS])))
    return rules


class BlocklistFileError(RuntimeError):
    """BLOCKLIST_FILE cannot be read at start (too big, not UTF-8, unreadable)."""


class OperatorBlocklist:
    """BLOCKLIST_FILE's phrases. Re-read when the file changes (its size or modification time); if it cannot be
    read later, the phrases already loaded stay in force and the problem is logged."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._signature: tuple[int, int] | None = None
        self.phrases = PhraseSet(())
        if path is not None:
            try:
                self._load(path)
            except (OSError, UnicodeDecodeError, BlocklistFileError) as error:
                raise BlocklistFileError(f"cannot use BLOCKLIST_FILE {path}: {error}") from error

    def _load(self, path: Path) -> None:
        status = path.stat()
        if status.st_size > BLOCKLIST_FILE_MAX_BYTES:
            raise BlocklistFileError(f"it is over {BLOCKLIST_FILE_MAX_BYTES // 1024} KiB")
        self.phrases = PhraseSet(_parse_blocklist(path.read_text(encoding="utf-8")))
        self._signature = (status.st_size, status.st_mtime_ns)
        log.info("blocklist: %d phrase(s) from %s", len(self.phrases), path)

    async def current(self) -> PhraseSet:
        path = self._path
        if path is None:
            return self.phrases
        try:
            status = await asyncio.to_thread(os.stat, path)
            if (status.st_size, status.st_mtime_ns) != self._signature:
                await asyncio.to_thread(self._load, path)
        except (OSError, UnicodeDecodeError, BlocklistFileError) as error:
            log.warning(
                "blocklist: cannot re-read %s (%s); keeping the %d phrase(s) loaded", path, error, len(self.phrases)
            )
        return self.phrases


def _fields(request: GenerationRequest) -> Iterator[tuple[str, str]]:
    """What the member wrote, each part with the name it is given in a refusal."""
    yield ("description" if request.mode is GenerationMode.DESCRIPTION else "lyrics"), request.prompt
    if request.title:
        yield "title", request.title
    if request.tags:
        yield "style", request.tags


class ModerationRules:
    """The prompt rules checked before anything is reserved, and the channel rule; the moderators' changes."""

    def __init__(
        self, store: RuleStore, operator: OperatorBlocklist, *, clock: Clock, metrics: Metrics | None = None
    ) -> None:
        self._store = store
        self._operator = operator
        self._clock = clock
        self._metrics = metrics or Metrics()

    async def check_request(self, guild_id: int, request: GenerationRequest) -> None:
        """Raises PromptRefusedError naming the first blocked phrase found (the operator's first)."""
        operator = await self._operator.current()
        server = PhraseSet(Rule(row.phrase, row.words) for row in await self._store.phrases(guild_id))
        for field, text in _fields(request):
            for phrases, by_operator in ((operator, True), (server, False)):
                rule = phrases.first_match(text)
                if rule is not None:
                    self._metrics.rule_refused("operator_phrase" if by_operator else "server_phrase")
                    raise PromptRefusedError(rule.phrase, field, by_operator=by_operator)

    async def check_channel(self, guild_id: int, channel_ids: Iterable[int]) -> None:
        """`channel_ids`: where the command was used (a thread's own id and its parent's)."""
        allowed = await self._store.channels(guild_id)
        if allowed and not set(allowed) & set(channel_ids):
            self._metrics.rule_refused("channel")
            raise ChannelNotAllowedError(tuple(allowed))

    async def phrases(self, guild_id: int) -> list[BlockedPhrase]:
        return await self._store.phrases(guild_id)

    async def add_phrase(self, guild_id: int, phrase: str, *, actor_id: int) -> bool:
        words = self._checked(phrase)
        return await self._store.add_phrase(
            guild_id, phrase.strip(), words, actor_id=actor_id, now=self._clock(), limit=MAX_PHRASES_PER_SERVER
        )

    async def remove_phrase(self, guild_id: int, phrase: str, *, actor_id: int) -> str | None:
        return await self._store.remove_phrase(guild_id, self._checked(phrase), actor_id=actor_id, now=self._clock())

    async def channels(self, guild_id: int) -> list[int]:
        return await self._store.channels(guild_id)

    async def add_channel(self, guild_id: int, channel_id: int, *, actor_id: int) -> bool:
        return await self._store.add_channel(
            guild_id, channel_id, actor_id=actor_id, now=self._clock(), limit=MAX_CHANNELS_PER_SERVER
        )

    async def remove_channel(self, guild_id: int, channel_id: int, *, actor_id: int | None) -> bool:
        return await self._store.remove_channel(guild_id, channel_id, actor_id=actor_id, now=self._clock())

    @staticmethod
    def _checked(phrase: str) -> str:
        words = normalise_phrase(phrase)
        if not words:
            raise InvalidRequestError(
                "A blocked phrase needs at least one letter or digit.", key="rules.phrase_needs_letters"
            )
        if len(phrase) > PHRASE_MAX_CHARS:
            raise InvalidRequestError(
                f"A blocked phrase can be at most {PHRASE_MAX_CHARS} characters.",
                key="rules.phrase_too_long",
                values={"limit": PHRASE_MAX_CHARS},
            )
        return words
