"""End to end: contests (start, capped entries, votes counted in the window, results posted once across restarts)
and the hall of fame (forwarded once, never taken back), through the real bot and the fake Discord."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.contests import ContestService
from bot.storage import SqliteDatabase
from bot.storage.contests import ContestStore
from tests.clock import FakeClock
from tests.fakes.discord_server import FakeDiscord, FakeInteraction, FakeMessage
from tests.fakes.music_api import FakeMusicApi
from tests.harness import RunningBot, World, running_bot

QUICK = {"community_interval_seconds": 0.05}
SLOW = {"community_interval_seconds": 3600.0}  # one round when ready, then none during the test


@pytest.fixture
async def harness(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[RunningBot]:
    async with running_bot(discord_fake, api, tmp_path / "musicbot.sqlite3", clock=clock, **QUICK) as running:
        yield running


async def answer(harness: RunningBot, interaction: FakeInteraction) -> dict[str, Any]:
    await harness.discord.wait_for(lambda: bool(interaction.callbacks))
    data: dict[str, Any] = interaction.callbacks[0].get("data", {})
    return data


async def invoke(harness: RunningBot, name: str, subcommand: str, user_id: int, **options: Any) -> FakeInteraction:
    return await harness.discord.invoke_command(
        name,
        options,
        subcommand=subcommand,
        guild_id=harness.guild_id,
        channel_id=harness.channel_id,
        user_id=user_id,
    )


async def admin(harness: RunningBot, subcommand: str, user_id: int, **options: Any) -> dict[str, Any]:
    interaction = await invoke(harness, "music-admin", subcommand, user_id, **options)
    data = await answer(harness, interaction)
    assert interaction.ephemeral, data
    return data


async def contest_command(harness: RunningBot, subcommand: str, user_id: int, **options: Any) -> dict[str, Any]:
    return await answer(harness, await invoke(harness, "music-contest", subcommand, user_id, **options))


async def enter(harness: RunningBot, prompt: str, user_id: int | None = None) -> list[FakeMessage]:
    interaction = await harness.music(prompt, user_id=user_id, contest=True)
    await harness.finished(interaction)
    assert len(interaction.followups) == 2
    return interaction.followups


def results_messages(discord: FakeDiscord, channel_id: int) -> list[FakeMessage]:
    shown = [message for message in discord.messages(channel_id) if not message.ephemeral]
    return [message for message in shown if message.content.startswith("🏁")]


def forwards(discord: FakeDiscord, channel_id: int) -> list[FakeMessage]:
    return [message for message in discord.messages(channel_id) if message.forward_of is not None]


def joined_before(discord: FakeDiscord, guild_id: int, user_id: int, clock: FakeClock, days: float) -> None:
    discord.guilds[guild_id].members[user_id].joined_at = clock.now.timestamp() - days * 86400


async def test_contest_from_start_to_results_across_restarts_posts_once(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path, clock: FakeClock
) -> None:
    database = tmp_path / "musicbot.sqlite3"
    world = World.create(discord_fake)
    async with running_bot(discord_fake, api, database, clock=clock, world=world, **SLOW) as first:
        moderator = first.moderator()
        started = await admin(first, "contest start", moderator, theme="Songs about rain", ends="3d")
        assert "<t:" in started["content"]
        (announcement,) = [message for message in discord_fake.messages(world.channel_id) if message.embeds]
        assert "Songs about rain" in announcement.embeds[0]["title"]
        assert f"<t:{int(clock.now.timestamp()) + 3 * 86400}:R>" in announcement.embeds[0]["description"]
        first_song, second_song = await enter(first, "rain on the roof")
        other = discord_fake.add_member(world.guild_id, name="other")
        rival, _ = await enter(first, "thunder", user_id=other)
        voters = [discord_fake.add_member(world.guild_id, name=f"voter{n}") for n in range(3)]
        for voter in voters[:2]:
            await first.click(second_song, "up", voter)
        await first.click(rival, "up", voters[2])
        await first.click(first_song, "down", voters[2])
        status = await contest_command(first, "now", world.member_id)
        assert "Your entries (1)" in str(status["embeds"][0]["fields"])
        clock.advance(days=3, seconds=1)
        for voter in voters[:2]:  # after the end: not counted
            await first.click(rival, "up", voter)
        assert results_messages(discord_fake, world.channel_id) == []
    async with running_bot(discord_fake, api, database, clock=clock, world=world, **QUICK) as second:
        await discord_fake.wait_for(lambda: bool(forwards(discord_fake, world.channel_id)))
        (results,) = results_messages(discord_fake, world.channel_id)
        lines = results.content.splitlines()
        assert f"/{second_song.id})" in lines[1]
        assert "+2" in lines[1]
        assert f"/{rival.id})" in lines[2]
        assert "+1" in lines[2]  # the votes after the end are not counted
        assert results.allowed_mentions == {"parse": []} or not results.pinged()
        (forward,) = forwards(discord_fake, world.channel_id)
        assert forward.forward_of is not None
        assert forward.forward_of.id == second_song.id
        past = await contest_command(second, "past", world.member_id)
        assert "Songs about rain" in str(past["embeds"][0])
    async with running_bot(discord_fake, api, database, clock=clock, world=world, **QUICK) as third:
        await asyncio.sleep(0.5)  # several rounds of the loop
        assert len(results_messages(discord_fake, world.channel_id)) == 1
        assert len(forwards(discord_fake, world.channel_id)) == 1
        rows = await third.query("SELECT status, results_message_id FROM contests")
        assert rows == [{"status": "ended", "results_message_id": results.id}]


async def test_entries_are_capped_even_when_asked_at_once(harness: RunningBot) -> None:
    moderator = harness.moderator()
    await admin(harness, "contest start", moderator, theme="One shot", ends="12h", max_entries_per_member=1)
    attempts = await asyncio.gather(*(harness.music(f"try {n}", contest=True) for n in range(3)))
    await asyncio.gather(*(answer(harness, attempt) for attempt in attempts))
    accepted = [attempt for attempt in attempts if not attempt.ephemeral]
    refused = [attempt for attempt in attempts if attempt.ephemeral]
    assert len(accepted) == 1
    assert len(refused) == 2
    for attempt in accepted:
        await harness.finished(attempt)
    entries = await harness.query("SELECT count(*) AS n FROM contest_entries")
    charged = await harness.query("SELECT count(*) AS n FROM jobs WHERE charged = 1")
    assert entries == [{"n": 1}]
    assert charged == [{"n": 1}]  # a refused entry spent nothing
    again = await harness.music("once more", contest=True)
    data = await answer(harness, again)
    assert again.ephemeral
    assert "the most each member may" in data["content"]
    plain = await harness.music("not an entry")  # still free to make ordinary songs
    await harness.finished(plain)


async def test_entering_without_a_running_contest_is_refused_privately(harness: RunningBot) -> None:
    attempt = await harness.music("hello", contest=True)
    data = await answer(harness, attempt)
    assert attempt.ephemeral
    assert "No contest is running" in data["content"]
    assert await harness.query("SELECT count(*) AS n FROM jobs") == [{"n": 0}]


async def test_excluded_new_members_votes_do_not_count(harness: RunningBot, clock: FakeClock) -> None:
    discord = harness.discord
    old_timer = discord.add_member(harness.guild_id, name="old")
    joined_before(discord, harness.guild_id, old_timer, clock, days=30)
    await admin(harness, "contest start", harness.moderator(), theme="Old ears", ends="1d", exclude_new_members=True)
    clock.advance(minutes=1)
    first, second = await enter(harness, "vintage")
    newcomers = [discord.add_member(harness.guild_id, name=f"new{n}") for n in range(2)]
    for newcomer in newcomers:  # they joined after the contest started
        await harness.click(first, "up", newcomer)
    await harness.click(second, "up", old_timer)
    clock.advance(minutes=1)
    await admin(harness, "contest end", harness.moderator("mod2"))
    await discord.wait_for(lambda: bool(forwards(discord, harness.channel_id)))
    (results,) = results_messages(discord, harness.channel_id)
    lines = results.content.splitlines()
    assert f"/{second.id})" in lines[1]
    assert "+1" in lines[1]
    assert f"/{first.id})" in lines[2]
    assert "+0" in lines[2]


async def test_one_contest_at_a_time_and_cancel_posts_nothing(harness: RunningBot) -> None:
    moderator = harness.moderator()
    starts = await asyncio.gather(
        *(invoke(harness, "music-admin", "contest start", moderator, theme=f"theme {n}", ends="2h") for n in range(3))
    )
    texts = [(await answer(harness, start))["content"] for start in starts]
    assert sum("already running" in text for text in texts) == 2
    assert await harness.query("SELECT count(*) AS n FROM contests WHERE status = 'running'") == [{"n": 1}]
    cancelled = await admin(harness, "contest cancel", moderator)
    assert "cancelled" in cancelled["content"]
    await asyncio.sleep(0.3)
    assert results_messages(harness.discord, harness.channel_id) == []


async def test_hall_of_fame_forwards_once_and_never_takes_it_back(harness: RunningBot) -> None:
    discord = harness.discord
    hall = discord.add_channel(harness.guild_id, name="hall-of-fame")
    set_up = await admin(harness, "halloffame", harness.moderator(), channel=hall, threshold=2)
    assert f"<#{hall}>" in set_up["content"]
    song, _ = await harness.songs("a hit")
    voters = [discord.add_member(harness.guild_id, name=f"fan{n}") for n in range(3)]
    await harness.click(song, "up", voters[0])
    assert forwards(discord, hall) == []
    await asyncio.gather(*(harness.click(song, "up", voter) for voter in voters[1:]))  # 3 at once crosses 2
    await discord.wait_for(lambda: bool(forwards(discord, hall)))
    await harness.click(song, "up", voters[0])  # removed: the score falls to 2
    await harness.click(song, "down", voters[1])  # and to 0, below the threshold
    await harness.click(song, "down", voters[1])  # removed again: 1
    await harness.click(song, "up", voters[1])  # and back over it
    await asyncio.sleep(0.2)
    (forward,) = forwards(discord, hall)
    assert forward.forward_of is not None
    assert forward.forward_of.id == song.id
    credits = [message for message in discord.messages(hall) if message.forward_of is None]
    assert len(credits) == 1
    assert f"<@{harness.member_id}>" in credits[0].content
    assert not credits[0].pinged()
    off = await admin(harness, "halloffame", harness.moderator("mod2"), off=True)
    assert "off" in off["content"]


async def test_results_a_stopped_process_posted_unrecorded_are_not_posted_again(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path, clock: FakeClock
) -> None:
    """The results reached the channel but their process stopped before it heard back: long after (Discord has
    forgotten the nonce), the process that takes the claim over finds them and posts only what is missing."""
    database = tmp_path / "musicbot.sqlite3"
    world = World.create(discord_fake)
    async with running_bot(discord_fake, api, database, clock=clock, world=world, **QUICK) as first:
        await admin(first, "contest start", first.moderator(), theme="Lost and found", ends="1h")
        clock.advance(minutes=1)
        song, _ = await enter(first, "found")
        await first.click(song, "up", discord_fake.add_member(world.guild_id, name="fan"))
        discord_fake.delay_next("create_message", seconds=60, response_only=True)
        clock.advance(hours=1)
        await discord_fake.wait_for(lambda: bool(results_messages(discord_fake, world.channel_id)))
    assert forwards(discord_fake, world.channel_id) == []
    discord_fake.advance(600)  # past Discord's memory of nonces
    clock.advance(minutes=5)  # past the claim
    async with running_bot(discord_fake, api, database, clock=clock, world=world, **QUICK) as second:
        await discord_fake.wait_for(lambda: bool(forwards(discord_fake, world.channel_id)))
        await asyncio.sleep(0.3)
        (results,) = results_messages(discord_fake, world.channel_id)
        assert len(forwards(discord_fake, world.channel_id)) == 1
        rows = await second.query("SELECT results_message_id FROM contests")
        assert rows == [{"results_message_id": results.id}]


async def test_a_custom_entry_shows_in_the_standings_edited_at_most_once_a_minute(
    harness: RunningBot, clock: FakeClock
) -> None:
    await admin(harness, "contest start", harness.moderator(), theme="Write it", ends="1d")
    (announcement,) = [message for message in harness.discord.messages(harness.channel_id) if message.embeds]
    clock.advance(minutes=1)
    fields = {"song_title": "My words", "style": "folk", "lyrics": "[Verse]\nmine"}
    submitted = await harness.custom_song(fields, contest=True)
    await harness.finished(submitted)
    song = submitted.followups[0]
    assert await harness.query("SELECT count(*) AS n FROM contest_entries") == [{"n": 1}]

    def standings() -> str:
        return str(announcement.embeds[0]["fields"])

    clock.advance(seconds=61)
    await harness.discord.wait_for(lambda: f"/{song.id})" in standings())
    await asyncio.sleep(0.3)
    edits = announcement.edits
    await harness.click(song, "up", harness.discord.add_member(harness.guild_id, name="fan"))
    await asyncio.sleep(0.3)
    assert announcement.edits == edits  # within the minute: not edited again
    clock.advance(seconds=61)
    await harness.discord.wait_for(lambda: "+1" in standings())
    status = await contest_command(harness, "now", harness.member_id)
    assert "Your entries (1)" in str(status["embeds"][0]["fields"])


async def test_a_second_service_on_the_same_database_racing_the_bot_posts_nothing_more(
    harness: RunningBot, clock: FakeClock
) -> None:
    """Another process's contest service (its own connection to the database, its own owner) settles at the same
    moment as the bot's loop, through the same Discord: one results post between them."""
    await admin(harness, "contest start", harness.moderator(), theme="Race", ends="10m")
    clock.advance(minutes=1)
    song, _ = await enter(harness, "fast")
    await harness.click(song, "up", harness.discord.add_member(harness.guild_id, name="fan"))
    target = harness.bot.community_target
    assert target is not None
    async with SqliteDatabase.open(harness.settings.database_path) as database:
        other = ContestService(ContestStore(database), clock=clock, owner="another-process")
        clock.advance(minutes=10)
        settled = await asyncio.gather(*(other.settle_due(target) for _ in range(3)))
    await harness.discord.wait_for(lambda: bool(forwards(harness.discord, harness.channel_id)))
    await asyncio.sleep(0.3)
    assert sum(settled) <= 1
    assert len(results_messages(harness.discord, harness.channel_id)) == 1
    assert len(forwards(harness.discord, harness.channel_id)) == 1
