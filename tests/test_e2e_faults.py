"""End to end: Discord- and API-side faults, what the requester sees, and how the job ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.clock import FakeClock
from tests.fakes.discord_models import DEFAULT_BOT_PERMISSIONS
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import ClipTimings, FakeMusicApi
from tests.harness import RunningBot, running_bot

ATTACH_FILES = 1 << 15


@pytest.fixture
async def short_token_discord() -> AsyncIterator[FakeDiscord]:
    """Interaction tokens that die after one second, as Discord's do after fifteen minutes."""
    async with FakeDiscord(token_lifetime=1.0) as fake:
        yield fake


def token_failures(harness: RunningBot) -> list[int]:
    return [
        request.status or 0
        for request in harness.discord.requests
        if "/webhooks/" in request.path and request.status == 401
    ]


async def test_expired_token_switches_to_the_channel_and_pings_only_the_requester(
    short_token_discord: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=2.0)
    async with running_bot(short_token_discord, api, tmp_path / "db.sqlite3", progress_edit_interval_seconds=0) as h:
        interaction = await h.music("outlive the token")
        await h.discord.wait_for(lambda: len([m for m in h.discord.messages(h.channel_id) if m.embeds]) == 2, 15)
        clips = [message for message in h.discord.messages(h.channel_id) if message.embeds]
        for message in clips:
            assert message.interaction_id is None  # posted with the bot's own token
            assert message.pinged() == {f"user:{h.member_id}"}
            assert len(message.attachments) == 1
        assert interaction.followups == []
        assert len(token_failures(h)) == 1, "a dead token must never be used again"
        await h.discord.wait_for(
            lambda: interaction.original is not None and interaction.original.content.startswith("✅")
        )
        rows = await h.query("SELECT status, charged FROM jobs")
        assert rows == [{"status": "delivered", "charged": 1}]


async def test_discord_refusing_an_upload_as_too_large_posts_a_link(harness: RunningBot) -> None:
    harness.discord.fail_next("followup", status=413, code=40005)
    interaction = await harness.music("a big one")
    final = await harness.finished(interaction)
    assert final.content.startswith("✅")
    linked = [message for message in interaction.followups if not message.attachments]
    assert len(linked) == 1
    assert "Too large to attach here" in linked[0].embeds[0]["description"]


async def test_missing_bot_permissions_are_named_before_anything_is_spent(harness: RunningBot) -> None:
    interaction = await harness.discord.invoke_command(
        "music",
        {"prompt": "no files allowed"},
        guild_id=harness.guild_id,
        channel_id=harness.channel_id,
        user_id=harness.member_id,
        app_permissions=DEFAULT_BOT_PERMISSIONS & ~ATTACH_FILES,
    )
    await harness.discord.wait_for(lambda: bool(interaction.callbacks))
    assert interaction.ephemeral
    assert "missing the Attach Files permission" in interaction.callbacks[0]["data"]["content"]
    assert await harness.query("SELECT id FROM jobs") == []
    assert harness.api.generate_calls() == 0


async def test_missing_permissions_when_posting_ends_the_job_and_refunds(
    short_token_discord: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=1.5)
    async with running_bot(short_token_discord, api, tmp_path / "db.sqlite3") as h:
        h.discord.fail_next("create_message", status=403, code=50013, times=2)
        interaction = await h.music("permissions were taken away")
        final = await h.finished(interaction)
        assert "could not be posted" in final.content
        assert await h.query("SELECT status, charged, failure_reason FROM jobs") == [
            {"status": "failed", "charged": 0, "failure_reason": "delivery_failed"}
        ]


async def test_discord_5xx_on_posting_is_retried_then_redelivered(
    short_token_discord: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=1.5)
    async with running_bot(
        short_token_discord, api, tmp_path / "db.sqlite3", redelivery_interval_seconds=0.5, retry_attempts=2
    ) as h:
        # 503 is not retried by discord.py itself: our own retries (2) fail, the job waits for redelivery.
        h.discord.fail_next("create_message", status=503, times=4)
        interaction = await h.music("Discord is having a bad day")
        await h.discord.wait_for(
            lambda: interaction.original is not None and "failing right now" in interaction.original.content, 15
        )
        assert (await h.query("SELECT status, charged FROM jobs")) == [{"status": "polling", "charged": 1}]
        await h.finished(interaction, timeout=20)
        clips = [message for message in h.discord.messages(h.channel_id) if message.embeds]
        assert len(clips) == 2
        assert len({message.embeds[0]["footer"]["text"] for message in clips}) == 2
        assert await h.query("SELECT status, charged FROM jobs") == [{"status": "delivered", "charged": 1}]
        assert api.generate_calls() == 1


async def test_failed_downloads_are_retried_then_posted_as_links(harness: RunningBot) -> None:
    harness.api.fail_next("audio", status=502, body="Bad Gateway", content_type="text/plain", times=2)
    interaction = await harness.music("flaky cdn")
    await harness.finished(interaction)
    assert all(message.attachments for message in interaction.followups)  # a retry got through

    harness.api.fail_next("audio", status=500, body="Internal", content_type="text/plain", times=20)
    interaction = await harness.music("broken cdn")
    final = await harness.finished(interaction)
    assert final.content.startswith("✅")
    for message in interaction.followups:
        assert message.attachments == []
        assert "could not be fetched" in message.embeds[0]["description"]


async def test_fetch_failures_are_retried_on_the_next_tick(harness: RunningBot) -> None:
    harness.api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=1.0)
    harness.api.fail_with_plain_text_500("fetch", times=3)
    final = await harness.finished(await harness.music("keep asking"))
    assert final.content.startswith("✅")


async def test_commands_during_shutdown_are_refused_kindly(harness: RunningBot) -> None:
    harness.bot.services.runtime.stop_accepting()
    interaction = await harness.music("too late")
    await harness.discord.wait_for(lambda: bool(interaction.callbacks))
    assert interaction.ephemeral
    assert "restarting" in interaction.callbacks[0]["data"]["content"]
    assert await harness.query("SELECT id FROM jobs") == []


async def test_after_fourteen_minutes_the_token_is_not_even_tried(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    clock = FakeClock(datetime.now(UTC))
    api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=1.0)
    async with running_bot(
        discord_fake, api, tmp_path / "db.sqlite3", clock=clock, generation_deadline_seconds=3600
    ) as h:
        interaction = await h.music("a slow afternoon")
        # Not before the job is under way: the bot starts timing the token once its acknowledgement is answered,
        # which a busy machine can delay past the moment the fake records the acknowledgement.
        await h.discord.wait_for(lambda: bool(interaction.callbacks) and h.api.generate_calls() > 0)
        clock.advance(minutes=14, seconds=5)  # the bot's clock; Discord would take the token a while longer
        await h.discord.wait_for(lambda: len([m for m in h.discord.messages(h.channel_id) if m.embeds]) == 2, 15)
        assert interaction.followups == []
        assert token_failures(h) == []
        for message in (m for m in h.discord.messages(h.channel_id) if m.embeds):
            assert message.pinged() == {f"user:{h.member_id}"}
