"""Blocked phrases: whole words, case and accents ignored, tricks that hide a word, the operator's file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.errors import ChannelNotAllowedError, InvalidRequestError, PromptRefusedError, RuleLimitError
from bot.models import GenerationMode, GenerationRequest
from bot.rules import (
    MAX_PHRASES_PER_SERVER,
    BlocklistFileError,
    ModerationRules,
    OperatorBlocklist,
    PhraseSet,
    Rule,
    normalise_phrase,
)
from bot.storage import Database
from bot.storage.rules import RuleStore
from tests.clock import FakeClock

GUILD = 10


def phrases(*written: str) -> PhraseSet:
    return PhraseSet(Rule(phrase, normalise_phrase(phrase)) for phrase in written)


@pytest.mark.parametrize(
    ("text", "blocked"),
    [
        ("a song about a CAFÉ at night", True),
        ("a song about a cafe", True),
        ("Café!", True),
        ("\uff43\uff41\uff46\uff45 in full-width letters", True),  # NFKD folds compatibility forms
        ("ca\u200bfe with a zero-width space inside", True),
        ("ca\u0301fe", True),  # the accent on another letter is dropped too: "cafe"
        ("cafe_au_lait", True),  # underscores separate words
        ("a cafeteria song", False),
        ("decafe", False),
    ],
)
def test_one_word_matches_whole_words_without_case_or_accents(text: str, blocked: bool) -> None:
    assert (phrases("Café").first_match(text) is not None) is blocked, text


def test_a_phrase_matches_its_words_in_order_and_nothing_else() -> None:
    rules = phrases("red  Wine", "Blue")
    assert rules.first_match("I love RED wine, really") == Rule("red  Wine", "red wine")
    assert rules.first_match("red, wine") is not None  # punctuation between words is not a word
    assert rules.first_match("wine red") is None
    assert rules.first_match("red whine") is None
    assert rules.first_match("blueberry") is None
    assert rules.first_match("feeling blue") == Rule("Blue", "blue")


def test_unspaced_scripts_match_inside_the_text() -> None:
    rules = phrases("禁止")
    assert rules.first_match("これは禁止された歌") is not None
    assert rules.first_match("これは歌") is None


def test_many_phrases_are_looked_up_not_scanned() -> None:
    rules = phrases(*(f"word{number}" for number in range(50_000)), "the end of it")
    assert len(rules) == 50_001
    assert rules.first_match("x " * 2000 + "the end of it") == Rule("the end of it", "the end of it")
    assert rules.first_match("nothing to see " * 300) is None


def test_operator_file_comments_blank_lines_and_reload(tmp_path: Path) -> None:
    path = tmp_path / "blocklist.txt"
    path.write_text("# the operator's rules\n\nbadword\n  Two Words  \n", encoding="utf-8")
    blocklist = OperatorBlocklist(path)
    assert blocklist.phrases.first_match("two words here") == Rule("Two Words", "two words")
    assert blocklist.phrases.first_match("the operator's rules") is None  # a comment is not a rule


async def test_operator_file_is_reread_when_it_changes_and_kept_when_it_breaks(tmp_path: Path) -> None:
    path = tmp_path / "blocklist.txt"
    path.write_text("first\n", encoding="utf-8")
    blocklist = OperatorBlocklist(path)
    path.write_text("second phrase\n", encoding="utf-8")
    os.utime(path, ns=(1, 1))  # a different modification time, whatever the clock's resolution
    current = await blocklist.current()
    assert current.first_match("second phrase") is not None
    assert current.first_match("first") is None
    path.write_bytes(b"\xff\xfe not utf-8")
    os.utime(path, ns=(2, 2))
    kept = await blocklist.current()  # unreadable now: the phrases loaded stay in force
    assert kept.first_match("second phrase") is not None


def test_an_unusable_operator_file_is_refused_at_start(tmp_path: Path) -> None:
    path = tmp_path / "blocklist.txt"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(BlocklistFileError, match="BLOCKLIST_FILE"):
        OperatorBlocklist(path)


def _request(prompt: str, *, title: str | None = None, tags: str | None = None) -> GenerationRequest:
    mode = GenerationMode.CUSTOM if title is not None else GenerationMode.DESCRIPTION
    return GenerationRequest(mode, prompt, title=title, tags=tags)


async def test_the_service_names_the_field_and_the_rule(database: Database, tmp_path: Path) -> None:
    path = tmp_path / "blocklist.txt"
    path.write_text("operatorword\n", encoding="utf-8")
    rules = ModerationRules(RuleStore(database), OperatorBlocklist(path), clock=FakeClock())
    assert await rules.add_phrase(GUILD, "Sérver Word", actor_id=1)
    assert not await rules.add_phrase(GUILD, "server   WORD", actor_id=1)  # the same words: listed once
    await rules.check_request(GUILD, _request("fine lyrics", title="fine", tags="pop"))
    await rules.check_request(GUILD + 1, _request("server word"))  # another server's rule does not apply
    cases = [
        (_request("some SERVER word here"), "description", False),
        (_request("lyrics with server word", title="t", tags="pop"), "lyrics", False),
        (_request("lyrics", title="The Server Word", tags="pop"), "title", False),
        (_request("lyrics", title="t", tags="pop, operatorword"), "style", True),
    ]
    for request, field, by_operator in cases:
        with pytest.raises(PromptRefusedError) as refused:
            await rules.check_request(GUILD, request)
        assert (refused.value.field, refused.value.by_operator) == (field, by_operator)
        assert refused.value.phrase == ("operatorword" if by_operator else "Sérver Word")
    assert await rules.remove_phrase(GUILD, "SERVER word", actor_id=2) == "Sérver Word"
    assert await rules.remove_phrase(GUILD, "server word", actor_id=2) is None
    await rules.check_request(GUILD, _request("server word"))
    log = await database.fetch_all("SELECT action, actor_id FROM moderation_log ORDER BY id")
    assert [(row["action"], row["actor_id"]) for row in log] == [("blocklist_add", 1), ("blocklist_remove", 2)]


async def test_phrases_need_a_word_and_are_capped(database: Database) -> None:
    rules = ModerationRules(RuleStore(database), OperatorBlocklist(None), clock=FakeClock())
    with pytest.raises(InvalidRequestError, match="letter or digit"):
        await rules.add_phrase(GUILD, "!!! ...", actor_id=1)
    for number in range(MAX_PHRASES_PER_SERVER):
        assert await rules.add_phrase(GUILD, f"word {number}", actor_id=1)
    with pytest.raises(RuleLimitError):
        await rules.add_phrase(GUILD, "one too many", actor_id=1)
    assert len(await rules.phrases(GUILD)) == MAX_PHRASES_PER_SERVER


async def test_channels_none_listed_means_everywhere(database: Database) -> None:
    rules = ModerationRules(RuleStore(database), OperatorBlocklist(None), clock=FakeClock())
    await rules.check_channel(GUILD, {5})
    assert await rules.add_channel(GUILD, 7, actor_id=1)
    assert not await rules.add_channel(GUILD, 7, actor_id=1)
    await rules.check_channel(GUILD, {7})
    await rules.check_channel(GUILD, {99, 7})  # a thread of a listed channel
    with pytest.raises(ChannelNotAllowedError) as refused:
        await rules.check_channel(GUILD, {5})
    assert refused.value.allowed == (7,)
    await rules.check_channel(GUILD + 1, {5})
    assert await rules.remove_channel(GUILD, 7, actor_id=None)
    await rules.check_channel(GUILD, {5})
