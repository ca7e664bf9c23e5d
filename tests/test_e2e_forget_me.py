"""End to end: `/music-privacy forget-me` through the real bot: exactly the member's rows go (also while votes race
the confirmation), the limits still hold, and only the member who asked can confirm."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.clock import FakeClock
from tests.fakes.discord_server import FakeDiscord, FakeInteraction, FakeMessage
from tests.fakes.music_api import ClipTimings, FakeMusicApi
from tests.harness import RunningBot, buttons, running_bot

FORGOTTEN = 0
UPDATE_MESSAGE = 7


async def ask_to_be_forgotten(harness: RunningBot, member: int) -> FakeMessage:
    """`/music-privacy forget-me`: its private answer, with the confirmation button."""
    asked = await harness.discord.invoke_command(
        "music-privacy",
        {},
        subcommand="forget-me",
        guild_id=harness.guild_id,
        channel_id=harness.channel_id,
        user_id=member,
    )
    await harness.discord.wait_for(lambda: asked.original is not None and bool(asked.original.content))
    assert asked.ephemeral
    assert asked.original is not None
    return asked.original


async def confirm(harness: RunningBot, answer: FakeMessage, member: int) -> FakeInteraction:
    (custom_id,) = buttons(answer)
    return await harness.discord.click_button(answer.id, custom_id, user_id=member)


async def forget(harness: RunningBot, member: int) -> str:
    answer = await ask_to_be_forgotten(harness, member)
    await confirm(harness, answer, member)
    await harness.discord.wait_for(lambda: answer.content.startswith(("✅", "⏳ You")))
    return answer.content


async def assert_tallies_agree_with_votes(harness: RunningBot) -> None:
    counted = await harness.query(
        "SELECT clip_id, sum(value = 1) AS up, sum(value = -1) AS down FROM votes GROUP BY clip_id ORDER BY clip_id"
    )
    kept = await harness.query("SELECT clip_id, up, down FROM vote_tallies WHERE up + down > 0 ORDER BY clip_id")
    assert counted == kept
    hours = await harness.query(
        "SELECT clip_id, substr(voted_at, 1, 13) AS hour, sum(value = 1) AS up, sum(value = -1) AS down FROM votes "
        "GROUP BY clip_id, hour ORDER BY clip_id, hour"
    )
    assert hours == await harness.query(
        "SELECT clip_id, hour, up, down FROM vote_hours WHERE up + down > 0 ORDER BY clip_id, hour"
    )


async def usage_figures(harness: RunningBot, moderator: int) -> dict[str, str]:
    interaction = await harness.discord.invoke_command(
        "music-admin",
        {"period": "all"},
        subcommand="usage",
        guild_id=harness.guild_id,
        channel_id=harness.channel_id,
        user_id=moderator,
    )
    await harness.discord.wait_for(lambda: bool(interaction.callbacks))
    fields: list[dict[str, Any]] = interaction.callbacks[0]["data"]["embeds"][0]["fields"]
    return {field["name"]: field["value"] for field in fields}


async def embed_text(harness: RunningBot, command: str, user_id: int, **options: Any) -> str:
    interaction = await harness.command(command, user_id, **options)
    await harness.discord.wait_for(lambda: bool(interaction.callbacks))
    return str(interaction.callbacks[0]["data"]["embeds"][0]["description"])


async def test_forget_me_removes_exactly_that_members_rows(harness: RunningBot) -> None:
    alice, bob = harness.member_id, harness.discord.add_member(harness.guild_id, name="bob")
    carol = harness.discord.add_member(harness.guild_id, name="carol")
    mine = await harness.songs("alice's secret love song", alice)
    bobs = await harness.songs("bob's anthem", bob)
    for song in bobs:
        await harness.click(song, "up", alice)
        await harness.click(song, "down", carol)
    await harness.click(mine[0], "up", bob)
    await harness.click(mine[1], "up", carol)
    moderator = harness.moderator()
    before = await usage_figures(harness, moderator)
    others_votes = await harness.query("SELECT * FROM votes WHERE user_id != ? ORDER BY clip_id, user_id", alice)
    bobs_jobs = await harness.query("SELECT * FROM jobs WHERE requester_id = ?", bob)
    bobs_clips = await harness.query(
        "SELECT clips.* FROM clips JOIN jobs ON jobs.id = job_id WHERE requester_id = ?", bob
    )

    answer = await ask_to_be_forgotten(harness, alice)
    assert "every server" in answer.content
    assert "/music-admin delete-song" in answer.content  # how to get the posted songs removed
    assert list(buttons(answer).values()) == ["Forget me"]
    click = await confirm(harness, answer, alice)
    await harness.discord.wait_for(lambda: answer.content.startswith("✅"))
    assert click.callbacks[0]["type"] == UPDATE_MESSAGE
    assert not buttons(answer)  # the button went at once
    assert "2 votes deleted" in answer.content
    assert "words of 1 request erased" in answer.content
    assert "stay in their channels" in answer.content

    assert await harness.query("SELECT * FROM votes WHERE user_id = ?", alice) == []
    assert await harness.query("SELECT * FROM votes ORDER BY clip_id, user_id") == others_votes
    await assert_tallies_agree_with_votes(harness)
    assert await harness.query(
        "SELECT requester_id, prompt, title, tags, erased_at IS NOT NULL AS erased FROM jobs WHERE requester_id != ?",
        bob,
    ) == [{"requester_id": FORGOTTEN, "prompt": "", "title": None, "tags": None, "erased": 1}]
    assert await harness.query(
        "SELECT DISTINCT title, lyrics FROM clips WHERE job_id = (SELECT min(id) FROM jobs)"
    ) == [{"title": "", "lyrics": ""}]
    assert await harness.query("SELECT * FROM jobs WHERE requester_id = ?", bob) == bobs_jobs
    assert (
        await harness.query("SELECT clips.* FROM clips JOIN jobs ON jobs.id = job_id WHERE requester_id = ?", bob)
        == bobs_clips
    )
    assert await harness.query("SELECT DISTINCT user_id FROM quota_ledger ORDER BY user_id") == [
        {"user_id": FORGOTTEN},
        {"user_id": bob},
    ]
    assert "has no songs in this server yet" in await embed_text(harness, "music-history", alice)
    assert f"/{bobs[0].id})" in await embed_text(harness, "music-history", carol, member={"user": bob})
    top = await embed_text(harness, "music-top", carol, period="all")
    assert f"/{mine[0].id}) by a forgotten member" in top  # the song itself stays, and keeps the others' votes
    assert str(alice) not in top
    after = await usage_figures(harness, moderator)
    assert {name: value for name, value in after.items() if name != "Top members"} == {
        name: value for name, value in before.items() if name != "Top members"
    }
    assert "members who asked to be forgotten: 1 generation" in after["Top members"]
    assert all(not song.deleted for song in mine)  # posted songs stay in the channel
    lyrics = await harness.click(mine[0], "lyrics", carol)
    assert "no longer in the bot's records" in lyrics.callbacks[0]["data"]["content"]
    again = await harness.click(mine[0], "again", carol)
    assert "can't be made again" in again.callbacks[0]["data"]["content"]


async def test_votes_racing_the_confirmation_leave_every_tally_equal_to_the_votes(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    # The real clock: votes cast during the race carry their own moments.
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3", default_per_member_daily=-1) as harness:
        alice = harness.member_id
        others = [discord_fake.add_member(harness.guild_id, name=f"voter{n}") for n in range(4)]
        songs: list[FakeMessage] = []
        for n in range(3):
            songs += await harness.songs(f"song {n}", others[n])
        for song in songs:
            await harness.click(song, "up", alice)
        answer = await ask_to_be_forgotten(harness, alice)

        async def vote(n: int) -> None:
            """Alice clicks only the songs at odd places (n odd), the others every song (their own are refused)."""
            voter = alice if n % 2 else others[n % len(others)]
            click = await harness.click(songs[n % len(songs)], "up" if n % 3 else "down", voter)
            assert not click.errors

        confirming = confirm(harness, answer, alice)
        await asyncio.gather(confirming, *(vote(n) for n in range(40)))
        await harness.discord.wait_for(lambda: answer.content.startswith("✅"), timeout=20)
        await assert_tallies_agree_with_votes(harness)
        # Her votes from before, on the songs she did not click during the race, all went.
        untouched = [song.id for song in songs[0::2]]
        left = await harness.query(
            f"SELECT votes.* FROM votes JOIN clips ON clips.id = clip_id WHERE user_id = ? "
            f"AND message_id IN ({', '.join('?' * len(untouched))})",
            alice,
            *untouched,
        )
        assert left == []
        assert await harness.query("SELECT count(*) AS n FROM votes WHERE user_id != ?", alice) != [{"n": 0}]


async def test_forgetting_cannot_dodge_the_daily_limit_or_the_cooldown(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path, clock: FakeClock
) -> None:
    async with running_bot(
        discord_fake, api, tmp_path / "db.sqlite3", clock=clock, default_per_member_daily=1
    ) as harness:
        await harness.songs("my one song today")
        assert (await forget(harness, harness.member_id)).startswith("✅")
        refused = await harness.music("one more, now that you forgot me")
        await harness.discord.wait_for(lambda: bool(refused.callbacks))
        assert refused.ephemeral
        assert "used all 1 of your generations for today" in refused.callbacks[0]["data"]["content"]
        clock.advance(days=1)
        await harness.finished(await harness.music("a new day"))  # the day's count ended with the day

    other = tmp_path / "cooldown.sqlite3"
    async with running_bot(discord_fake, api, other, clock=clock, default_cooldown_seconds=600) as harness:
        await harness.songs("a song, then a pause")
        await forget(harness, harness.member_id)
        refused = await harness.music("straight away")
        await harness.discord.wait_for(lambda: bool(refused.callbacks))
        assert "Slow down" in refused.callbacks[0]["data"]["content"]
        clock.advance(seconds=601)
        await harness.finished(await harness.music("after the cooldown"))


async def test_forget_me_waits_while_a_request_runs(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    api.timings = ClipTimings(queued_after=0.5, streaming_after=1, complete_after=4)
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3") as harness:
        running = await harness.music("still being made")
        await harness.discord.wait_for(lambda: bool(running.callbacks))
        refused = await harness.discord.invoke_command(
            "music-privacy",
            {},
            subcommand="forget-me",
            guild_id=harness.guild_id,
            channel_id=harness.channel_id,
            user_id=harness.member_id,
        )
        await harness.discord.wait_for(lambda: bool(refused.callbacks))
        assert refused.ephemeral
        assert "still being made or waiting in line" in refused.callbacks[0]["data"]["content"]
        await harness.finished(running)
        assert await harness.query("SELECT requester_id FROM jobs") == [{"requester_id": harness.member_id}]
        assert (await forget(harness, harness.member_id)).startswith("✅")


async def test_the_confirmation_pressed_by_someone_else_does_nothing(harness: RunningBot) -> None:
    alice = harness.member_id
    voter = harness.discord.add_member(harness.guild_id, name="voter")
    songs = await harness.songs("alice's", alice)
    await harness.click(songs[0], "up", voter)
    answer = await ask_to_be_forgotten(harness, voter)
    intruder = await confirm(harness, answer, alice)
    await harness.discord.wait_for(lambda: bool(intruder.callbacks))
    assert intruder.ephemeral
    assert "Only the member who asked" in intruder.callbacks[0]["data"]["content"]
    assert await harness.query("SELECT user_id FROM votes") == [{"user_id": voter}]
    assert await harness.query("SELECT DISTINCT requester_id FROM jobs") == [{"requester_id": alice}]
    assert list(buttons(answer).values()) == ["Forget me"]  # still there for the member who asked
    await confirm(harness, answer, voter)
    await harness.discord.wait_for(lambda: answer.content.startswith("✅"))
    assert await harness.query("SELECT user_id FROM votes") == []
