"""End to end: voting buttons, Lyrics and Again, /music-top and /music-history, through the real bot."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.clock import FakeClock
from tests.fakes.discord_server import FakeDiscord, FakeMessage
from tests.fakes.music_api import FakeMusicApi
from tests.harness import RunningBot, World, buttons, running_bot

UPDATE_MESSAGE = 7
DEFERRED = 5
# Discord's masked-link rule (simple-markdown's `link`): [text](target), brackets nested at most once in text.
MASKED_LINK = re.compile(
    r"\[((?:\[[^\]]*\]|[^\[\]]|\](?=[^\[]*\]))*)\]"
    r"\(\s*<?((?:\([^)]*\)|[^\s\\]|\\.)*?)>?(?:\s+['\"]([\s\S]*?)['\"])?\s*\)"
)


@pytest.fixture
async def harness(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[RunningBot]:
    async with running_bot(discord_fake, api, tmp_path / "musicbot.sqlite3", clock=clock) as running:
        yield running


async def make_songs(
    harness: RunningBot, prompt: str = "a song to vote on", user_id: int | None = None
) -> list[FakeMessage]:
    interaction = await harness.music(prompt, user_id=user_id)
    await harness.finished(interaction)
    assert len(interaction.followups) == 2
    return interaction.followups


def labels(message: FakeMessage) -> list[str]:
    return list(buttons(message).values())


async def test_every_clip_carries_vote_lyrics_and_again_buttons(harness: RunningBot) -> None:
    first, second = await make_songs(harness)
    assert labels(first) == ["👍 0", "👎 0", "Lyrics", "Again"]
    for message in (first, second):
        assert all(len(custom_id) <= 100 for custom_id in buttons(message))


async def test_vote_again_removes_and_other_switches(harness: RunningBot) -> None:
    song, _ = await make_songs(harness)
    voter = harness.discord.add_member(harness.guild_id, name="voter")

    first = await harness.click(song, "up", voter)
    assert first.callbacks[0]["type"] == UPDATE_MESSAGE  # answered by editing the clip message itself
    assert labels(song)[:2] == ["👍 1", "👎 0"]
    await harness.click(song, "up", voter)
    assert labels(song)[:2] == ["👍 0", "👎 0"]
    await harness.click(song, "up", voter)
    await harness.click(song, "down", voter)
    assert labels(song)[:2] == ["👍 0", "👎 1"]
    assert song.attachments, "editing the buttons must keep the mp3"
    votes = await harness.query("SELECT user_id, value FROM votes")
    assert votes == [{"user_id": voter, "value": -1}]


async def test_thirty_members_voting_at_once_are_counted_exactly(harness: RunningBot) -> None:
    song, _ = await make_songs(harness)
    voters = [harness.discord.add_member(harness.guild_id, name=f"v{i}") for i in range(30)]
    clicks = await asyncio.gather(
        *(harness.click(song, "up" if i % 3 else "down", voter) for i, voter in enumerate(voters))
    )
    assert all(click.callbacks[0]["type"] == UPDATE_MESSAGE for click in clicks)
    assert all(not click.errors for click in clicks)
    tally = await harness.query("SELECT sum(value = 1) AS up, sum(value = -1) AS down, count(*) AS n FROM votes")
    assert tally == [{"up": 20, "down": 10, "n": 30}]
    assert labels(song)[:2] == ["👍 20", "👎 10"]


async def test_requester_and_bots_cannot_vote(harness: RunningBot) -> None:
    song, _ = await make_songs(harness)
    own = await harness.click(song, "up", harness.member_id)
    assert own.ephemeral
    assert "can't vote on a song you requested" in own.callbacks[0]["data"]["content"]
    robot = harness.discord.add_member(harness.guild_id, name="robot", bot=True)
    by_bot = await harness.click(song, "up", robot)
    assert by_bot.ephemeral
    assert "Bots cannot vote" in by_bot.callbacks[0]["data"]["content"]
    assert labels(song)[:2] == ["👍 0", "👎 0"]
    assert await harness.query("SELECT * FROM votes") == []


async def test_buttons_keep_working_after_a_restart(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    database = tmp_path / "musicbot.sqlite3"
    world = World.create(discord_fake)
    async with running_bot(discord_fake, api, database, world=world) as first_run:
        song, _ = await make_songs(first_run)
        voter = discord_fake.add_member(world.guild_id, name="voter")
        await first_run.click(song, "up", voter)
    async with running_bot(discord_fake, api, database, world=world) as second_run:
        late_voter = discord_fake.add_member(world.guild_id, name="late")
        click = await second_run.click(song, "up", late_voter)
        assert click.callbacks[0]["type"] == UPDATE_MESSAGE
        assert labels(song)[:2] == ["👍 2", "👎 0"]
        lyrics = await second_run.click(song, "lyrics", late_voter)
        assert lyrics.ephemeral


async def test_lyrics_button_shows_the_full_lyrics_privately(harness: RunningBot) -> None:
    song, _ = await make_songs(harness)
    listener = harness.discord.add_member(harness.guild_id, name="listener")
    answer = await harness.click(song, "lyrics", listener)
    assert answer.ephemeral
    stored = await harness.query("SELECT lyrics FROM clips ORDER BY position LIMIT 1")
    assert answer.callbacks[0]["data"]["embeds"][0]["description"] == stored[0]["lyrics"]


async def test_lyrics_longer_than_an_embed_come_as_a_file(harness: RunningBot) -> None:
    long_lyrics = "\n".join(f"[Verse {n}]\n" + "la " * 40 for n in range(60))
    assert len(long_lyrics) > 4096

    async def lengthen() -> None:
        await harness.discord.wait_for(lambda: bool(harness.api.clips), timeout=10)
        for clip in harness.api.clips.values():
            clip.lyrics = long_lyrics

    lengthening = asyncio.create_task(lengthen())
    song, _ = await make_songs(harness)
    await lengthening
    listener = harness.discord.add_member(harness.guild_id, name="listener")
    answer = await harness.click(song, "lyrics", listener)
    assert answer.ephemeral
    reply = answer.original
    assert reply is not None
    assert [attachment.filename for attachment in reply.attachments] == ["lyrics.txt"]
    stored = await harness.query("SELECT lyrics FROM clips ORDER BY position LIMIT 1")
    assert reply.attachments[0].data.decode() == stored[0]["lyrics"]
    assert len(stored[0]["lyrics"]) > 4096


async def test_again_runs_the_same_request_charged_to_the_clicker(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3", default_daily_limit=2) as harness:
        song, _ = await make_songs(harness, prompt="a waltz for robots")
        fan = discord_fake.add_member(harness.guild_id, name="fan")
        again = await harness.click(song, "again", fan)
        assert again.callbacks[0]["type"] == DEFERRED
        await harness.finished(again)
        assert len(again.followups) == 2
        jobs = await harness.query("SELECT requester_id, prompt, charged FROM jobs ORDER BY id")
        assert jobs == [
            {"requester_id": harness.member_id, "prompt": "a waltz for robots", "charged": 1},
            {"requester_id": fan, "prompt": "a waltz for robots", "charged": 1},
        ]
        refused = await harness.click(song, "again", fan)  # the daily limit of 2 is used up
        assert refused.ephemeral
        assert "used all 2 of today's generations" in refused.callbacks[0]["data"]["content"]


async def test_leaderboard_orders_by_score_breaks_ties_by_age_and_honours_periods(
    harness: RunningBot, clock: FakeClock
) -> None:
    old_a, old_b = await make_songs(harness, prompt="old favourite")
    new_a, new_b = await make_songs(harness, prompt="new hit")
    voters = [harness.discord.add_member(harness.guild_id, name=f"v{i}") for i in range(3)]

    for voter in voters:  # forty days ago: old_a +3, old_b -1
        await harness.click(old_a, "up", voter)
    await harness.click(old_b, "down", voters[0])
    clock.advance(days=40)
    await harness.click(new_a, "up", voters[0])  # today: new_a +1, new_b +1 (tie: new_a is earlier)
    await harness.click(new_b, "up", voters[1])

    async def top(period: str | None) -> list[str]:
        options = {"period": period} if period else {}
        viewer = harness.discord.add_member(harness.guild_id, name="viewer")  # one each: /music-top has a cooldown
        interaction = await harness.command("music-top", user_id=viewer, **options)
        await harness.discord.wait_for(lambda: bool(interaction.callbacks))
        embed = interaction.callbacks[0]["data"]["embeds"][0]
        return [line for line in embed["description"].splitlines() if line.startswith("**")]

    week = await top(None)
    assert len(week) == 2
    assert f"/{new_a.id})" in week[0]
    assert f"/{new_b.id})" in week[1]
    assert "+1" in week[0]
    everything = await top("all")
    assert all(
        f"/{message.id})" in line for message, line in zip([old_a, new_a, new_b, old_b], everything, strict=True)
    )
    assert "+3" in everything[0]
    assert "-1" in everything[3]
    assert len(await top("month")) == 2
    clock.advance(days=2)
    empty = await harness.command("music-top", harness.discord.add_member(harness.guild_id), period="day")
    await harness.discord.wait_for(lambda: bool(empty.callbacks))
    assert "No votes in the last 24 hours yet" in empty.callbacks[0]["data"]["embeds"][0]["description"]


async def test_history_lists_a_members_songs_with_links(harness: RunningBot) -> None:
    first, second = await make_songs(harness, prompt="my first song")
    other = harness.discord.add_member(harness.guild_id, name="other")
    interaction = await harness.command("music-history", user_id=other, member={"user": harness.member_id})
    await harness.discord.wait_for(lambda: bool(interaction.callbacks))
    description = interaction.callbacks[0]["data"]["embeds"][0]["description"]
    assert f"/{first.id})" in description
    assert f"/{second.id})" in description
    mine = await harness.command("music-history", user_id=other)
    await harness.discord.wait_for(lambda: bool(mine.callbacks))
    assert "has no songs in this server yet" in mine.callbacks[0]["data"]["embeds"][0]["description"]


async def test_a_vote_counts_before_the_bot_has_recorded_the_message_it_posted(harness: RunningBot) -> None:
    # Discord shows the song (buttons and all) as soon as it has it; the bot learns the message id only when
    # Discord's answer to its post comes back, here 3 s later. A member clicking in between is counted.
    harness.discord.delay_next("followup", seconds=3, response_only=True)
    voter = harness.discord.add_member(harness.guild_id, name="quick")
    interaction = await harness.music("a song to vote on at once")
    await harness.discord.wait_for(lambda: bool(interaction.followups), timeout=10)
    song = interaction.followups[0]
    click = await harness.click(song, "up", voter)
    lyrics = await harness.click(song, "lyrics", voter)
    unrecorded = await harness.query("SELECT message_id FROM clips WHERE position = 0")
    assert unrecorded == [{"message_id": None}], "the click must land while the bot still waits for Discord"
    assert click.callbacks[0]["type"] == UPDATE_MESSAGE
    assert not click.ephemeral
    assert labels(song)[:2] == ["👍 1", "👎 0"]
    assert lyrics.ephemeral
    assert lyrics.callbacks[0]["data"]["embeds"][0]["description"]
    await harness.finished(interaction)
    assert await harness.query("SELECT user_id, value FROM votes") == [{"user_id": voter, "value": 1}]
    recorded = await harness.query("SELECT message_id FROM clips WHERE position = 0")
    assert recorded == [{"message_id": song.id}]


async def test_a_title_cannot_break_out_of_its_link_in_top_or_history(harness: RunningBot) -> None:
    evil = "x](https://evil.example/login) [Vote"

    async def retitle() -> None:
        await harness.discord.wait_for(lambda: bool(harness.api.clips), timeout=10)
        for clip in harness.api.clips.values():
            clip.title = evil

    retitling = asyncio.create_task(retitle())
    first, second = await make_songs(harness)
    await retitling
    assert await harness.query("SELECT DISTINCT title FROM clips") == [{"title": evil}]
    voter = harness.discord.add_member(harness.guild_id, name="voter")
    await harness.click(first, "up", voter)
    await harness.click(second, "down", voter)

    cases: dict[str, tuple[dict[str, Any], list[FakeMessage]]] = {
        "music-top": ({"period": "all"}, [first, second]),  # +1, then -1
        "music-history": ({"member": {"user": harness.member_id}}, [second, first]),  # newest first
    }
    for command, (options, listed) in cases.items():
        interaction = await harness.command(command, user_id=voter, **options)
        await harness.discord.wait_for(lambda: bool(interaction.callbacks))  # noqa: B023
        lines = interaction.callbacks[0]["data"]["embeds"][0]["description"].splitlines()
        for line, message in zip(lines, listed, strict=True):
            links = [match[2] for match in MASKED_LINK.finditer(line)]
            assert links == [f"https://discord.com/channels/{harness.guild_id}/{harness.channel_id}/{message.id}"]
            outside_links = MASKED_LINK.sub("", line)
            assert not re.search(r"https?://", outside_links), f"a bare URL would be linked: {line}"
            assert "evil.example/login" in line  # the title is still shown, as text


async def test_music_top_has_a_short_per_member_cooldown(harness: RunningBot) -> None:
    impatient = harness.discord.add_member(harness.guild_id, name="impatient")
    answers = []
    for _ in range(3):
        interaction = await harness.command("music-top", user_id=impatient)
        await harness.discord.wait_for(lambda: bool(interaction.callbacks))  # noqa: B023
        answers.append(interaction)
    assert [answer.ephemeral for answer in answers] == [False, False, True]
    refusal = answers[2].callbacks[0]["data"]["content"]
    assert re.fullmatch(r"You're using this command too quickly; try again <t:\d+:R>\.", refusal)
    someone_else = await harness.command("music-top", user_id=harness.discord.add_member(harness.guild_id))
    await harness.discord.wait_for(lambda: bool(someone_else.callbacks))
    assert not someone_else.ephemeral
