"""The Cancel button on a running job's progress message, through the real bot: who may press it, what it
says, what counts, and that nothing more is posted."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.fakes.discord_constants import DEFAULT_MEMBER_PERMISSIONS, MANAGE_GUILD
from tests.fakes.discord_message_models import FakeInteraction
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import ClipTimings, FakeMusicApi
from tests.harness import RunningBot, World, buttons, running_bot


async def until_status(harness: RunningBot, status: str) -> None:
    for _ in range(400):
        if [row["status"] for row in await harness.query("SELECT status FROM jobs")] == [status]:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"the job never got to {status}")


async def click_cancel(harness: RunningBot, interaction: FakeInteraction, user_id: int) -> FakeInteraction:
    await harness.discord.wait_for(
        lambda: interaction.original is not None and "cancel:" in " ".join(buttons(interaction.original)), timeout=10
    )
    assert interaction.original is not None
    return await harness.click(interaction.original, "cancel", user_id)


def answer(click: FakeInteraction) -> str:
    return str(click.callbacks[0]["data"]["content"])


async def test_the_requester_cancels_a_paid_job_nothing_more_is_posted_and_it_still_counts(
    harness: RunningBot,
) -> None:
    harness.api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=4.0)
    interaction = await harness.music("a song cancelled halfway")
    await until_status(harness, "polling")
    stranger = harness.discord.add_member(harness.guild_id, name="stranger")
    refused = await click_cancel(harness, interaction, stranger)
    assert "Only the member who asked for this song, or a moderator, can cancel it." in answer(refused)
    click = await click_cancel(harness, interaction, harness.member_id)
    assert answer(click).startswith("Cancelling. It still counts against the server's quota")
    assert click.callbacks[0]["data"]["flags"] & (1 << 6)  # only the clicker sees it
    final = await harness.finished(interaction)
    assert final.content.startswith("❌")
    assert f"Cancelled by <@{harness.member_id}>." in final.content
    assert "It still counts against the server's quota" in final.content
    assert buttons(final) == {}  # the Cancel button is gone with the job
    await asyncio.sleep(4.5)  # the songs are complete by now at the music service: still nothing posted
    assert interaction.followups == []
    jobs = await harness.query("SELECT status, charged, failure_reason, cancel_requested_by FROM jobs")
    assert jobs == [
        {"status": "failed", "charged": 1, "failure_reason": "cancelled", "cancel_requested_by": harness.member_id}
    ]
    ledger = await harness.query("SELECT change FROM quota_ledger")
    assert [row["change"] for row in ledger] == ["reserve"]
    assert harness.api.generate_calls() == 1


async def test_a_moderator_may_cancel_a_members_job(harness: RunningBot) -> None:
    harness.api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=4.0)
    interaction = await harness.music("a song a moderator stops")
    await until_status(harness, "polling")
    moderator = harness.discord.add_member(
        harness.guild_id, name="mod", permissions=DEFAULT_MEMBER_PERMISSIONS | MANAGE_GUILD
    )
    click = await click_cancel(harness, interaction, moderator)
    assert answer(click).startswith("Cancelling.")
    final = await harness.finished(interaction)
    assert f"Cancelled by <@{moderator}>." in final.content
    again = await harness.click(final, "cancel", moderator) if "cancel:" in " ".join(buttons(final)) else None
    assert again is None  # no button left to press


async def test_cancel_works_after_a_restart(discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path) -> None:
    api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=60.0)
    database = tmp_path / "musicbot.sqlite3"
    world = World.create(discord_fake)
    async with running_bot(discord_fake, api, database, world=world) as first_run:
        interaction = await first_run.music("a song across a restart")
        await until_status(first_run, "polling")
        await discord_fake.wait_for(
            lambda: interaction.original is not None and "cancel:" in " ".join(buttons(interaction.original))
        )
    async with running_bot(discord_fake, api, database, world=world) as second_run:
        assert interaction.original is not None
        click = await second_run.click(interaction.original, "cancel", world.member_id)
        assert answer(click).startswith("Cancelling. It still counts")
        await discord_fake.wait_for(
            lambda: interaction.original is not None and "Cancelled by" in interaction.original.content, timeout=15
        )
        jobs = await second_run.query("SELECT status, charged, failure_reason FROM jobs")
    assert jobs == [{"status": "failed", "charged": 1, "failure_reason": "cancelled"}]
    assert interaction.followups == []


async def test_a_job_cancelled_while_it_waits_in_line_is_given_back_and_never_sent(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=3.0)
    async with running_bot(
        discord_fake, api, tmp_path / "db.sqlite3", default_max_concurrent=1, default_max_queued=5
    ) as harness:
        other = discord_fake.add_member(harness.guild_id, name="first")
        first = await harness.music("the one that runs", user_id=other)
        waiting = await harness.music("the one that waits")
        await discord_fake.wait_for(lambda: waiting.original is not None and "1st in line" in waiting.original.content)
        click = await click_cancel(harness, waiting, harness.member_id)
        assert answer(click) == "Cancelling. It had not reached the music service yet, so it does not count."
        final = await harness.finished(waiting)
        assert f"Cancelled by <@{harness.member_id}>." in final.content
        assert "It was not counted against the server's quota." in final.content
        await harness.finished(first)
        jobs = await harness.query("SELECT prompt, status, charged FROM jobs ORDER BY id")
    assert jobs == [
        {"prompt": "the one that runs", "status": "delivered", "charged": 1},
        {"prompt": "the one that waits", "status": "failed", "charged": 0},
    ]
    assert api.generate_calls() == 1
