"""Nothing paid is lost: the bot process is SIGKILLed at each phase of a job, started again on the same
database, and every paid generation is delivered exactly once (or reported and refunded), no clip twice."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.bot_process import BotProcess
from tests.fakes.discord_interactions import FakeInteraction
from tests.fakes.discord_server import FakeDiscord, FakeMessage
from tests.fakes.music_api import ClipOutcome, ClipTimings, FakeMusicApi
from tests.harness import World

pytestmark = pytest.mark.timeout(180)


def query(database: Path, sql: str, *parameters: object) -> list[dict[str, Any]]:
    connection = sqlite3.connect(database)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in connection.execute(sql, parameters)]
    finally:
        connection.close()


class Scenario:
    """One server, one bot process that can be killed and started again on the same database."""

    def __init__(self, discord: FakeDiscord, api: FakeMusicApi, tmp_path: Path, **settings: Any) -> None:
        self.discord = discord
        self.api = api
        self.database = tmp_path / "musicbot.sqlite3"
        self.world = World.create(discord)
        self.tmp_path = tmp_path
        self.settings = settings
        self.runs: list[BotProcess] = []

    async def start_bot(self) -> BotProcess:
        identified = len(self.discord.identifies)
        bot = BotProcess(self.discord, self.api, self.database, self.tmp_path / f"run{len(self.runs)}", **self.settings)
        self.runs.append(bot)
        await bot.start()
        await self.discord.wait_for(lambda: len(self.discord.identifies) > identified, timeout=30)
        await self.discord.wait_until_ready(timeout=30)
        return bot

    async def music(self, prompt: str) -> FakeInteraction:
        return await self.discord.invoke_command(
            "music",
            {"prompt": prompt},
            guild_id=self.world.guild_id,
            channel_id=self.world.channel_id,
            user_id=self.world.member_id,
        )

    def clip_messages(self) -> list[FakeMessage]:
        return [
            message
            for message in self.discord.messages(self.world.channel_id)
            if message.embeds and "job #" in (message.embeds[0].get("footer") or {}).get("text", "")
        ]

    def jobs(self) -> list[dict[str, Any]]:
        return query(self.database, "SELECT id, status, charged, failure_reason FROM jobs ORDER BY id")

    def ledger(self) -> list[str]:
        return [row["change"] for row in query(self.database, "SELECT change FROM quota_ledger ORDER BY id")]

    async def close(self) -> None:
        for run in self.runs:
            await run.stop_if_running()


@pytest.fixture
async def make_scenario(discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path) -> AsyncIterator[Any]:
    made: list[Scenario] = []

    def make(**settings: Any) -> Scenario:
        scenario = Scenario(discord_fake, api, tmp_path, **settings)
        made.append(scenario)
        return scenario

    yield make
    for scenario in made:
        await scenario.close()


def assert_each_clip_posted_once(scenario: Scenario, expected: int) -> None:
    messages = scenario.clip_messages()
    footers = [message.embeds[0]["footer"]["text"] for message in messages]
    assert len(footers) == expected, footers
    assert len(set(footers)) == expected, f"a clip was posted twice: {footers}"
    posted = query(scenario.database, "SELECT message_id FROM clips WHERE message_id IS NOT NULL")
    assert sorted(row["message_id"] for row in posted) == sorted(message.id for message in messages)


async def test_killed_after_reserving_the_job_is_ended_and_refunded(make_scenario: Any) -> None:
    scenario: Scenario = make_scenario()
    bot = await scenario.start_bot()
    scenario.discord.delay_next("callback", seconds=30)  # the bot waits on its acknowledgement
    await scenario.music("a song that never starts")
    await scenario.discord.wait_for(lambda: bool(scenario.jobs()), timeout=10)
    assert scenario.jobs()[0]["status"] == "reserved"
    await bot.kill()

    await scenario.start_bot()
    await scenario.discord.wait_for(lambda: scenario.jobs()[0]["status"] == "failed", timeout=20)
    assert scenario.jobs() == [{"id": 1, "status": "failed", "charged": 0, "failure_reason": "interrupted"}]
    assert scenario.ledger() == ["reserve", "refund"]
    assert scenario.api.generate_calls() == 0
    channel = scenario.world.channel_id
    await scenario.discord.wait_for(
        lambda: any("restarted" in m.content for m in scenario.discord.messages(channel)), timeout=10
    )
    told = [m for m in scenario.discord.messages(channel) if "restarted" in m.content]
    assert told[0].pinged() == {f"user:{scenario.world.member_id}"}


async def test_killed_during_the_paid_call_is_reported_honestly(make_scenario: Any) -> None:
    scenario: Scenario = make_scenario()
    bot = await scenario.start_bot()
    scenario.api.hang_next("generate", seconds=60)
    await scenario.music("lost in flight")
    await scenario.discord.wait_for(lambda: bool(scenario.jobs()) and scenario.jobs()[0]["status"] == "submitted")
    await bot.kill()

    await scenario.start_bot()
    await scenario.discord.wait_for(lambda: scenario.jobs()[0]["status"] == "failed", timeout=20)
    assert scenario.jobs()[0]["failure_reason"] == "interrupted"
    assert scenario.ledger() == ["reserve", "refund"]
    channel = scenario.world.channel_id
    await scenario.discord.wait_for(
        lambda: any("answer was lost" in m.content for m in scenario.discord.messages(channel)), timeout=10
    )


@pytest.mark.parametrize("phase", ["ids_returned", "polling"])
async def test_killed_after_the_api_returned_ids_delivers_exactly_once(make_scenario: Any, phase: str) -> None:
    scenario: Scenario = make_scenario()
    scenario.api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=6.0)
    bot = await scenario.start_bot()
    await scenario.music("survive a crash")
    await scenario.discord.wait_for(lambda: len(query(scenario.database, "SELECT id FROM clips")) == 2, timeout=15)
    if phase == "polling":
        await scenario.discord.wait_for(lambda: len(scenario.api.fetch_batches()) >= 3, timeout=15)
    await bot.kill()
    assert scenario.clip_messages() == []

    await scenario.start_bot()
    await scenario.discord.wait_for(lambda: scenario.jobs()[0]["status"] == "delivered", timeout=30)
    assert_each_clip_posted_once(scenario, 2)
    for message in scenario.clip_messages():  # posted by the bot itself, telling the requester
        assert message.pinged() == {f"user:{scenario.world.member_id}"}
        assert len(message.attachments) == 1
    assert scenario.jobs()[0]["charged"] == 1
    assert scenario.ledger() == ["reserve"]
    assert scenario.api.generate_calls() == 1


async def test_killed_after_the_first_clip_was_posted_never_posts_it_twice(make_scenario: Any) -> None:
    scenario: Scenario = make_scenario()
    scenario.api.next_outcome(ClipOutcome.complete(), ClipOutcome.stuck("streaming"))
    bot = await scenario.start_bot()
    await scenario.music("one now, one later")
    await scenario.discord.wait_for(lambda: len(scenario.clip_messages()) == 1, timeout=15)
    await bot.kill()  # possibly before the bot recorded the post: the restart must find it, not repost
    for clip in scenario.api.clips.values():
        clip.outcome = ClipOutcome.complete()

    await scenario.start_bot()
    await scenario.discord.wait_for(lambda: scenario.jobs()[0]["status"] == "delivered", timeout=30)
    assert_each_clip_posted_once(scenario, 2)
    assert scenario.ledger() == ["reserve"]
    assert scenario.api.generate_calls() == 1


async def test_sigterm_lets_a_delivery_finish_and_exits_cleanly(make_scenario: Any) -> None:
    scenario: Scenario = make_scenario(shutdown_grace_seconds=20)
    scenario.api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=1.5)
    bot = await scenario.start_bot()
    interaction = await scenario.music("finish me before you go")
    await scenario.discord.wait_for(lambda: bool(interaction.callbacks), timeout=10)
    code = await bot.terminate(timeout=30)
    assert code == 0, bot.logs()[-3000:]
    assert scenario.jobs()[0]["status"] == "delivered"
    assert_each_clip_posted_once(scenario, 2)
    assert "stopped cleanly" in bot.logs()


async def test_sigterm_leaves_a_long_job_resumable(make_scenario: Any) -> None:
    scenario: Scenario = make_scenario(shutdown_grace_seconds=0.5)
    scenario.api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=8.0)
    bot = await scenario.start_bot()
    await scenario.music("too slow for the grace period")
    await scenario.discord.wait_for(lambda: len(query(scenario.database, "SELECT id FROM clips")) == 2, timeout=15)
    assert await bot.terminate(timeout=30) == 0
    assert scenario.jobs()[0]["status"] == "polling"

    await scenario.start_bot()
    await scenario.discord.wait_for(lambda: scenario.jobs()[0]["status"] == "delivered", timeout=30)
    assert_each_clip_posted_once(scenario, 2)


async def test_a_second_process_on_the_same_database_finishes_a_dead_ones_job_once(make_scenario: Any) -> None:
    """Two real bot processes on one SQLite file: the second leaves the first one's live job alone (its lease
    is kept alive), and once the first is killed it takes the job over and delivers each clip once."""
    scenario: Scenario = make_scenario()
    # The songs finish only once the first process is gone, however slowly the second one starts.
    scenario.api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=3600.0)
    first = await scenario.start_bot()
    await scenario.music("two bots, one job")
    await scenario.discord.wait_for(lambda: len(query(scenario.database, "SELECT id FROM clips")) == 2, timeout=15)
    (held,) = query(scenario.database, "SELECT owner FROM jobs")

    await scenario.start_bot()
    await asyncio.sleep(3)  # longer than the 2-s lease: only the first one's heartbeat keeps the job its own
    assert query(scenario.database, "SELECT owner FROM jobs") == [held]
    assert scenario.clip_messages() == []

    await first.kill()
    scenario.api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=0.2)
    await scenario.discord.wait_for(lambda: scenario.jobs()[0]["status"] == "delivered", timeout=30)
    assert_each_clip_posted_once(scenario, 2)
    (taken,) = query(scenario.database, "SELECT owner FROM jobs")
    assert taken != held
    assert scenario.api.generate_calls() == 1
    assert scenario.ledger() == ["reserve"]
