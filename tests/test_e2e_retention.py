"""End to end: DATA_RETENTION_DAYS through the real bot's retention loop (time driven by the fake clock): old
prompts and lyrics are erased, nothing is without the setting, and a server the bot left is erased after the
retention unless it took the bot back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.clock import FakeClock
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import FakeMusicApi
from tests.harness import RunningBot, World, running_bot

QUICK_ROUNDS = {"retention_interval_seconds": 0.05}


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "the retention loop did not get there in time"
        await asyncio.sleep(0.05)


async def prompts(harness: RunningBot) -> list[dict[str, Any]]:
    return await harness.query("SELECT prompt, erased_at IS NOT NULL AS erased FROM jobs ORDER BY id")


async def test_old_prompts_and_lyrics_are_erased_only_with_a_retention(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path, clock: FakeClock
) -> None:
    database, world = tmp_path / "db.sqlite3", World.create(discord_fake)
    async with running_bot(discord_fake, api, database, clock=clock, world=world, **QUICK_ROUNDS) as harness:
        old_song, _ = await harness.songs("an old song about the sea")
        clock.advance(days=400)
        await asyncio.sleep(0.3)  # a few rounds: without DATA_RETENTION_DAYS everything is kept
        assert await prompts(harness) == [{"prompt": "an old song about the sea", "erased": 0}]

    async with running_bot(
        discord_fake, api, database, clock=clock, world=world, data_retention_days=30, **QUICK_ROUNDS
    ) as harness:

        async def old_one_erased() -> bool:
            return (await prompts(harness))[0]["erased"] == 1

        await eventually(old_one_erased)
        await harness.songs("a recent song")
        clock.advance(days=29)
        await asyncio.sleep(0.3)  # 29 days old: inside the retention
        assert await prompts(harness) == [{"prompt": "", "erased": 1}, {"prompt": "a recent song", "erased": 0}]
        lyrics = await harness.query("SELECT lyrics != '' AS has_lyrics FROM clips ORDER BY job_id, position")
        assert [row["has_lyrics"] for row in lyrics] == [0, 0, 1, 1]
        listener = discord_fake.add_member(harness.guild_id, name="listener")
        answer = await harness.click(old_song, "lyrics", listener)
        assert "no longer in the bot's records" in answer.callbacks[0]["data"]["content"]
        history = await harness.command("music-history", harness.member_id)
        await discord_fake.wait_for(lambda: bool(history.callbacks))
        assert f"/{old_song.id})" in history.callbacks[0]["data"]["embeds"][0]["description"]  # still theirs
        clock.advance(days=2)
        await eventually(lambda: _all_erased(harness))


async def _all_erased(harness: RunningBot) -> bool:
    return all(row["erased"] for row in await prompts(harness))


async def admin(harness: RunningBot, guild: int, channel: int, user: int, subcommand: str, **options: Any) -> None:
    interaction = await harness.discord.invoke_command(
        "music-admin", options, subcommand=subcommand, guild_id=guild, channel_id=channel, user_id=user
    )
    await harness.discord.wait_for(lambda: bool(interaction.callbacks))


async def test_a_left_server_is_erased_after_the_retention_and_kept_if_it_rejoins(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path, clock: FakeClock
) -> None:
    async with running_bot(
        discord_fake, api, tmp_path / "db.sqlite3", clock=clock, data_retention_days=7, **QUICK_ROUNDS
    ) as harness:
        await harness.bot.wait_until_ready()
        servers: dict[str, tuple[int, int]] = {"left": (harness.guild_id, harness.channel_id)}
        rejoining = discord_fake.add_guild(name="Comes back")
        servers["rejoined"] = (rejoining, discord_fake.add_channel(rejoining))
        for guild, channel in servers.values():
            member = discord_fake.add_member(guild, name="member")
            voter = discord_fake.add_member(guild, name="voter")
            moderator = harness.moderator(guild_id=guild)
            request = await discord_fake.invoke_command(
                "music", {"prompt": f"a song in {guild}"}, guild_id=guild, channel_id=channel, user_id=member
            )
            await harness.finished(request)
            await harness.click(request.followups[0], "up", voter)
            await admin(harness, guild, channel, moderator, "quota", daily=7)
            await admin(harness, guild, channel, moderator, "block", member={"user": voter})
        left, rejoined = servers["left"][0], servers["rejoined"][0]

        discord_fake.remove_bot(left)
        discord_fake.remove_bot(rejoined)
        await eventually(lambda: _departed(harness, [left, rejoined]))
        discord_fake.add_bot_back(rejoined)
        await eventually(lambda: _departed(harness, [left]))
        clock.advance(days=6)
        await asyncio.sleep(0.3)  # inside the retention: kept
        assert len(await harness.query("SELECT * FROM votes")) == 2
        clock.advance(days=2)
        await eventually(lambda: _departed(harness, []))

        for table in ("guild_limits", "blocked_members", "moderation_log", "vote_tallies"):
            assert await harness.query(f"SELECT DISTINCT guild_id FROM {table}") == [{"guild_id": rejoined}], table
        votes = await harness.query(
            "SELECT DISTINCT jobs.guild_id FROM votes JOIN clips ON clips.id = clip_id JOIN jobs ON jobs.id = job_id"
        )
        assert votes == [{"guild_id": rejoined}]
        # Both songs are 8 days old, so retention erased both prompts; only the left server's no longer names
        # its requester.
        jobs = await harness.query("SELECT guild_id, requester_id != 0 AS named, prompt FROM jobs ORDER BY id")
        assert jobs == [{"guild_id": left, "named": 0, "prompt": ""}, {"guild_id": rejoined, "named": 1, "prompt": ""}]


async def _departed(harness: RunningBot, expected: list[int]) -> bool:
    rows = await harness.query("SELECT guild_id FROM departed_guilds ORDER BY guild_id")
    return [row["guild_id"] for row in rows] == sorted(expected)
