"""The `sandbox` backend end to end through the real bot: songs it makes itself, by the same submit, poll,
download and post path as a paid backend, with only DISCORD_TOKEN set; voting, quota, a restart and the doctor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.backends.sandbox import MODEL_NAME, NOTICE
from bot.backends.sandbox_cover import PNG_SIGNATURE
from bot.backends.sandbox_synth import read_mp3_frames
from bot.settings import Settings
from tests.fakes.discord_server import FakeDiscord, FakeMessage
from tests.fakes.music_api import FakeMusicApi
from tests.harness import RunningBot, buttons, running_bot
from tests.test_doctor import run_doctor
from tests.test_e2e_restart import Scenario, assert_each_clip_posted_once, query
from tests.test_e2e_rules import submit_custom

# What the harness sets for the default backend; the sandbox must need none of it.
UNSET_FOR_THE_SANDBOX = {"aiml_api_key": None, "aiml_api_base_url": "https://api.aimlapi.com"}


@pytest.fixture
async def sandbox(discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path) -> AsyncIterator[RunningBot]:
    async with running_bot(
        discord_fake, api, tmp_path / "db.sqlite3", music_backend="sandbox", **UNSET_FOR_THE_SANDBOX
    ) as harness:
        yield harness


def embed_of(message: FakeMessage) -> dict[str, Any]:
    embed: dict[str, Any] = message.embeds[0]
    return embed


def fields(message: FakeMessage) -> dict[str, str]:
    return {field["name"]: field["value"] for field in embed_of(message).get("fields", [])}


def assert_sandbox_song(message: FakeMessage, seconds: tuple[float, float] = (15, 30.05)) -> float:
    """A playable mp3 attached, and an embed that says it is the sandbox; returns the mp3's length."""
    (attachment,) = message.attachments
    assert attachment.filename.endswith(".mp3")
    played = read_mp3_frames(attachment.data).seconds
    assert seconds[0] <= played <= seconds[1]
    embed = embed_of(message)
    assert embed["title"].endswith(" (sandbox)")
    assert fields(message)["Model"] == MODEL_NAME
    assert "sandbox test tune" in fields(message)["Style"]
    assert embed["thumbnail"]["url"].endswith(".png")
    return played


async def fetch_cover(url: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.content_type == "image/png"
        return await response.read()


def test_discord_token_alone_is_enough_for_the_sandbox() -> None:
    settings = Settings(_env_file=None, discord_token="t", music_backend="sandbox")  # type: ignore[call-arg]
    assert settings.backend_config().api_key == ""
    assert settings.cost_of("sandbox") == 0


async def test_music_posts_two_playable_sandbox_songs(sandbox: RunningBot, api: FakeMusicApi) -> None:
    interaction = await sandbox.music("rainy lofi beats for studying")
    final = await sandbox.finished(interaction)
    assert final.content.startswith("✅"), final.content
    assert "Done: 2 songs below." in final.content
    first, second = interaction.followups
    for message in (first, second):
        assert_sandbox_song(message)
        assert NOTICE in embed_of(message)["description"]
        assert "Rainy Lofi Beats For Studying" in embed_of(message)["title"]
    assert first.attachments[0].data != second.attachments[0].data, "each take is its own tune"
    cover = await fetch_cover(embed_of(first)["thumbnail"]["url"])
    assert cover.startswith(PNG_SIGNATURE)
    assert api.requests == [], "nothing went to a paid API"
    (job,) = await sandbox.query("SELECT backend, status, charged, provider_task_id FROM jobs")
    assert (job["backend"], job["status"], job["charged"]) == ("sandbox", "delivered", 1)
    assert job["provider_task_id"].startswith("sandbox.")

    again = await sandbox.music("rainy lofi beats for studying")
    await sandbox.finished(again)
    assert [m.attachments[0].data for m in again.followups] == [m.attachments[0].data for m in (first, second)], (
        "the same prompt makes the same songs"
    )


async def test_progress_goes_from_queued_through_generating_before_the_songs(sandbox: RunningBot) -> None:
    interaction = await sandbox.music("watch it progress")
    seen: list[str] = []

    def record() -> bool:
        if interaction.original is not None and interaction.original.content not in seen:
            seen.append(interaction.original.content)
        return bool(seen) and seen[-1].startswith("✅")

    await sandbox.discord.wait_for(record, timeout=15)
    assert any(text.startswith("⏳ Queued") for text in seen), seen
    assert any(text.startswith(("🎼 Generating", "📦 Finishing")) for text in seen), seen
    assert not any("Listen while" in text for text in seen), "no link members could not open"
    # Every message about the job says it is the sandbox, not AI music, in small print under its own words.
    assert all(
        text.endswith("\n-# Sandbox: a test tune the bot synthesised itself from the prompt, not AI music.")
        for text in seen
        if text  # the acknowledgement ("thinking…") has no text
    ), seen


async def test_custom_lyrics_are_shown_under_a_sandbox_title(sandbox: RunningBot) -> None:
    lyrics = "[Verse]\nthe sandbox sings nothing\nbut here are my words"
    interaction = await submit_custom(sandbox, {"song_title": "Neon", "style": "synthwave", "lyrics": lyrics})
    final = await sandbox.finished(interaction)
    assert final.content.startswith("✅"), final.content
    for message in interaction.followups:
        assert_sandbox_song(message)
        embed = embed_of(message)
        assert embed["title"] == "Neon (sandbox)"
        assert "the sandbox sings nothing" in embed["description"]
        assert fields(message)["Style"].startswith("synthwave, sandbox test tune")


async def test_instrumental_songs_have_no_lyrics(sandbox: RunningBot) -> None:
    interaction = await sandbox.music("an instrumental one", instrumental=True)
    await sandbox.finished(interaction)
    for message in interaction.followups:
        assert_sandbox_song(message)
        assert embed_of(message)["description"] == "*Instrumental*"
        assert "instrumental" in fields(message)["Style"]


@pytest.mark.parametrize("seconds", [15, 22, 30])
async def test_the_duration_option_is_honoured(sandbox: RunningBot, seconds: int) -> None:
    interaction = await sandbox.music("exactly this long", duration=seconds)
    await sandbox.finished(interaction)
    for message in interaction.followups:
        played = assert_sandbox_song(message, (seconds, seconds + 0.05))
        assert fields(message)["Duration"] == f"0:{round(played):02d}"


async def test_a_duration_outside_15_to_30_seconds_is_refused_before_anything_runs(sandbox: RunningBot) -> None:
    interaction = await sandbox.command("music", prompt="too long", duration=60)
    await sandbox.discord.wait_for(lambda: bool(interaction.callbacks))
    assert interaction.ephemeral
    assert "15 to 30 seconds" in interaction.callbacks[0]["data"]["content"]
    assert await sandbox.query("SELECT id FROM jobs") == []


async def test_voting_and_quota_work_as_with_a_paid_backend(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with running_bot(
        discord_fake,
        api,
        tmp_path / "db.sqlite3",
        music_backend="sandbox",
        default_per_member_daily=1,
        **UNSET_FOR_THE_SANDBOX,
    ) as harness:
        interaction = await harness.music("a song to vote on")
        await harness.finished(interaction)
        song = interaction.followups[0]
        voter = discord_fake.add_member(harness.guild_id, name="voter")
        await harness.click(song, "up", voter)
        assert list(buttons(song).values())[:2] == ["👍 1", "👎 0"]
        assert await harness.query("SELECT user_id, value FROM votes") == [{"user_id": voter, "value": 1}]

        refused = await harness.music("one more please")
        await discord_fake.wait_for(lambda: bool(refused.callbacks))
        assert refused.ephemeral
        assert "limit" in refused.callbacks[0]["data"]["content"].lower()
        ledger = await harness.query("SELECT change FROM quota_ledger ORDER BY id")
        assert [row["change"] for row in ledger] == ["reserve"]


async def test_a_restart_mid_job_resumes_and_posts_each_song_once(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    """The bot process is SIGKILLed while the takes are being made; the next process answers the same task id
    from its own sandbox (the task id carries the request) and posts each song once."""
    scenario = Scenario(discord_fake, api, tmp_path, music_backend="sandbox", aiml_api_key="")
    try:
        first = await scenario.start_bot()
        await scenario.music("survive a restart")
        await discord_fake.wait_for(lambda: len(query(scenario.database, "SELECT id FROM clips")) == 2, timeout=15)
        await first.kill()
        assert scenario.clip_messages() == []

        await scenario.start_bot()
        await discord_fake.wait_for(lambda: scenario.jobs()[0]["status"] == "delivered", timeout=30)
        assert_each_clip_posted_once(scenario, 2)
        for message in scenario.clip_messages():
            assert_sandbox_song(message)
        assert scenario.ledger() == ["reserve"]
        assert api.requests == []
    finally:
        await scenario.close()


async def test_doctor_checks_the_sandbox_without_a_key(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    code, output = await run_doctor(discord_fake, api, tmp_path, music_backend="sandbox", aiml_api_key="")
    assert code == 0, output
    assert "music backend: sandbox at http://127.0.0.1:0 (no API key)" in output
    assert "needs no key and spends nothing: synthesised a 1.0-second test take here" in output
    assert "mp3 frames at 22.05 kHz" in output
    assert output.strip().endswith("all good")
    assert api.requests == []
