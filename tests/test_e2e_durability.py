"""End to end: a busy or failing database, a full disk and a bounded shutdown lose nothing that was paid for."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from bot.models import GenerationMode, GenerationRequest, Requester
from cogs.delivery import ChannelDelivery
from tests.clock import FakeClock
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import ClipTimings, FakeMusicApi
from tests.harness import RunningBot, running_bot


def reserved_jobs(harness: RunningBot) -> list[Any]:
    with sqlite3.connect(harness.settings.database_path) as reader:
        return reader.execute("SELECT id FROM jobs WHERE status = 'reserved'").fetchall()


def clip_messages(harness: RunningBot) -> list[Any]:
    return [message for message in harness.discord.messages(harness.channel_id) if message.embeds]


async def test_database_locked_right_after_reserving_still_delivers(harness: RunningBot) -> None:
    """An operator's `sqlite3` shell holds the write lock for 7 s while a job is being acknowledged."""
    harness.discord.delay_next("callback", seconds=1.0)  # the lock is taken while the bot acknowledges
    interaction = await harness.music("through a locked database")
    # Once the held acknowledgement has reached Discord, not merely once the job row exists: on a busy machine
    # the lock could otherwise land before the bot has taken the job, which is not the moment under test.
    await harness.discord.wait_for(
        lambda: bool(reserved_jobs(harness)) and any(r.path.endswith("/callback") for r in harness.discord.requests),
        timeout=5,
    )
    shell = sqlite3.connect(harness.settings.database_path, timeout=0, isolation_level=None)
    try:
        shell.execute("BEGIN IMMEDIATE")
        await asyncio.sleep(7)
        shell.execute("COMMIT")
    finally:
        shell.close()

    final = await harness.finished(interaction, timeout=30)

    assert final.content.startswith("✅")
    assert await harness.query("SELECT status, charged FROM jobs") == [{"status": "delivered", "charged": 1}]
    assert len(clip_messages(harness)) == 2
    assert await harness.query("SELECT lease_until FROM jobs") == [{"lease_until": None}]  # nothing left held


async def test_a_reserved_job_that_never_started_is_refunded_once_old_enough(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    clock = FakeClock()
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3", clock=clock) as harness:
        requester = Requester(harness.guild_id, harness.channel_id, harness.member_id)
        # Reserved as a crashed admission leaves it: quota held, never started, nobody's task.
        job_id = await harness.bot.services.quota.reserve_generation(
            requester, GenerationRequest(GenerationMode.DESCRIPTION, "orphan"), backend="aimlapi-suno"
        )
        runtime = harness.bot.services.runtime

        def target(job: Any) -> ChannelDelivery:
            return ChannelDelivery(harness.bot, job)

        assert await runtime.resume_expired(target) == []  # young: it may still be starting
        clock.advance(seconds=harness.settings.job_lease_seconds + 1)
        (task,) = await runtime.resume_expired(target)
        outcome = await task

    assert outcome is not None
    assert outcome.job.id == job_id
    assert await harness.query("SELECT status, charged, failure_reason FROM jobs") == [
        {"status": "failed", "charged": 0, "failure_reason": "interrupted"}
    ]
    assert [row["change"] for row in await harness.query("SELECT change FROM quota_ledger ORDER BY id")] == [
        "reserve",
        "refund",
    ]
    assert api.generate_calls() == 0


async def test_database_failing_after_a_clip_was_posted_waits_and_never_reposts(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_bot(
        discord_fake, api, tmp_path / "db.sqlite3", redelivery_interval_seconds=0.5, retry_attempts=2
    ) as harness:
        jobs = harness.bot.services.runtime.jobs
        record = jobs.record_delivery
        failures = {"left": 2}  # every try of the first clip's record, then the database recovers

        async def flaky_record(job_id: int, owner: str, clip_id: str, message_id: int, now: Any) -> None:
            if failures["left"] > 0:
                failures["left"] -= 1
                raise sqlite3.OperationalError("database is locked")
            await record(job_id, owner, clip_id, message_id, now)

        monkeypatch.setattr(jobs, "record_delivery", flaky_record)
        interaction = await harness.music("posted but not written down")
        await harness.discord.wait_for(
            lambda: interaction.original is not None and "1 of 2 songs posted so far" in interaction.original.content,
            timeout=15,
        )
        held = await harness.query("SELECT status, charged FROM jobs")
        assert held == [{"status": "polling", "charged": 1}]  # not failed, not refunded

        await harness.discord.wait_for(
            lambda: interaction.original is not None and interaction.original.content.startswith("✅"), timeout=15
        )
        clips = await harness.query("SELECT message_id FROM clips ORDER BY position")
        posted = clip_messages(harness)
    assert len(posted) == 2, "a clip was posted twice"
    assert sorted(row["message_id"] for row in clips) == sorted(message.id for message in posted)
    assert await harness.query("SELECT status, charged FROM jobs") == [{"status": "delivered", "charged": 1}]
    assert [row["change"] for row in await harness.query("SELECT change FROM quota_ledger")] == ["reserve"]


async def test_a_full_disk_posts_the_link_deletes_the_partial_file_and_the_next_job_works(
    harness: RunningBot,
) -> None:
    downloads = harness.settings.temp_audio_dir
    (downloads / "1-0.download").symlink_to("/dev/full")  # every write there fails with ENOSPC

    first = await harness.finished(await harness.music("no room"))

    assert first.content.startswith("✅")
    linked, attached = sorted(clip_messages(harness), key=lambda message: len(message.attachments))
    assert linked.attachments == []
    assert "could not store" in linked.embeds[0]["description"]
    assert "Listen to the mp3" in linked.embeds[0]["description"]
    assert len(attached.attachments) == 1
    assert list(downloads.iterdir()) == []

    second = await harness.finished(await harness.music("room again"))
    assert second.content.startswith("✅")
    assert all(len(message.attachments) == 1 for message in clip_messages(harness)[2:])
    assert list(downloads.iterdir()) == []


async def test_downloads_left_by_a_killed_process_are_removed_at_start(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    downloads = tmp_path / "tmp-audio"
    downloads.mkdir()
    (downloads / "7-0.download").write_bytes(b"\xff" * 1024)
    (downloads / "7-1.mp3").write_bytes(b"ID3")
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3") as harness:
        assert harness.settings.temp_audio_dir == downloads
        assert list(downloads.iterdir()) == []


async def test_the_shutdown_grace_bounds_a_clip_being_downloaded(harness: RunningBot) -> None:
    harness.api.timings = ClipTimings(queued_after=0.01, streaming_after=0.02, complete_after=0.05)
    harness.api.hang_next("audio", seconds=120, times=2)
    await harness.music("a download that hangs")
    await harness.discord.wait_for(
        lambda: any(request.route == "audio" for request in harness.api.requests), timeout=10
    )
    runtime = harness.bot.services.runtime
    runtime.stop_accepting()

    started = time.monotonic()
    await runtime.drain(1.0)

    assert time.monotonic() - started < 10  # the download hangs for 120 s: only the grace bounds it
    assert await harness.query("SELECT status, charged FROM jobs") == [{"status": "polling", "charged": 1}]
    assert clip_messages(harness) == []
