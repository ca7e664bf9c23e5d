"""Each backend end to end through the real bot: its happy path, its failures, and options it cannot honour."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from bot.backends.sunoapi import INERT_CALLBACK_URL
from tests.fakes.aimlapi_audio import AudioOutcome, AudioTimings, FakeAimlAudioApi
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import FakeMusicApi
from tests.fakes.sunoapi import FakeSunoTaskApi, TaskOutcome, TaskTimings
from tests.harness import RunningBot, running_bot


@pytest.fixture
async def audio_api() -> AsyncIterator[FakeAimlAudioApi]:
    async with FakeAimlAudioApi(timings=AudioTimings(generating_after=0.1, complete_after=0.4)) as fake:
        yield fake


@pytest.fixture
async def task_api() -> AsyncIterator[FakeSunoTaskApi]:
    async with FakeSunoTaskApi(timings=TaskTimings(text_after=0.1, first_after=0.3, success_after=1.2)) as fake:
        yield fake


async def refused(harness: RunningBot, **options: Any) -> str:
    interaction = await harness.command("music", **options)
    await harness.discord.wait_for(lambda: bool(interaction.callbacks))
    assert interaction.ephemeral
    content: str = interaction.callbacks[0]["data"]["content"]
    return content


async def test_suno_api_backend_end_to_end(discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path) -> None:
    async with running_bot(
        discord_fake, api, tmp_path / "db.sqlite3", music_backend="suno-api", suno_api_base_url=api.base_url
    ) as harness:
        interaction = await harness.music("a self-hosted song")
        final = await harness.finished(interaction)
        assert final.content.startswith("✅")
        assert len(interaction.followups) == 2
        generate = next(request for request in api.requests if request.route == "gcui_generate")
        assert generate.json["model"] == "chirp-v3-5"
        assert "Authorization" not in generate.headers
        assert api.gcui_get_batches()
        for message, clip_id in zip(interaction.followups, api.clips, strict=True):
            assert message.attachments[0].data == api.audio_bytes(clip_id)
        assert "Unknown model" in await refused(harness, prompt="x", model="V5")


async def test_suno_api_out_of_suno_credits(discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path) -> None:
    api.credits_left = 5
    async with running_bot(
        discord_fake, api, tmp_path / "db.sqlite3", music_backend="suno-api", suno_api_base_url=api.base_url
    ) as harness:
        final = await harness.finished(await harness.music("no credits"))
        assert "out of credits" in final.content
        assert await harness.query("SELECT failure_reason, charged FROM jobs") == [
            {"failure_reason": "api_credits", "charged": 0}
        ]


@pytest.fixture
async def audio_harness(
    discord_fake: FakeDiscord, api: FakeMusicApi, audio_api: FakeAimlAudioApi, tmp_path: Path
) -> AsyncIterator[RunningBot]:
    async with running_bot(
        discord_fake,
        api,
        tmp_path / "db.sqlite3",
        music_backend="aimlapi-audio",
        aiml_api_base_url=audio_api.base_url,
        aiml_api_key=audio_api.api_key,
    ) as harness:
        yield harness


async def test_aimlapi_audio_posts_one_clip_titled_from_the_prompt(
    audio_harness: RunningBot, audio_api: FakeAimlAudioApi
) -> None:
    interaction = await audio_harness.music("rainy lofi beats for studying")
    final = await audio_harness.finished(interaction)
    assert final.content.startswith("✅")
    assert "Done: 1 song below." in final.content
    (message,) = interaction.followups
    (generation_id,) = audio_api.generations
    assert message.attachments[0].data == audio_api.audio_bytes(generation_id)
    assert message.embeds[0]["title"] == "rainy lofi beats for studying"
    submit = next(request for request in audio_api.requests if request.route == "submit")
    assert submit.json == {
        "model": "minimax/music-2.6",
        "prompt": "rainy lofi beats for studying",
        "lyrics_optimizer": True,
        "is_instrumental": False,
    }


async def test_aimlapi_audio_model_and_duration(audio_harness: RunningBot, audio_api: FakeAimlAudioApi) -> None:
    interaction = await audio_harness.music("epic trailer music", model="elevenlabs/eleven_music", duration=30)
    await audio_harness.finished(interaction)
    submit = next(request for request in audio_api.requests if request.route == "submit")
    assert submit.json == {"model": "elevenlabs/eleven_music", "prompt": "epic trailer music", "music_length_ms": 30000}


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"model": "elevenlabs/eleven_music", "instrumental": True}, "cannot make instrumentals"),
        ({"model": "google/lyria2", "duration": 20}, "does not let you choose the duration"),
        ({"model": "stable-audio", "duration": 60}, "makes songs of 1 to 47 seconds"),
        ({"model": "chirp-v3-5"}, "Unknown model"),
    ],
)
async def test_aimlapi_audio_refuses_what_a_model_cannot_do_before_spending(
    audio_harness: RunningBot, audio_api: FakeAimlAudioApi, options: dict[str, Any], words: str
) -> None:
    assert words in await refused(audio_harness, prompt="something", **options)
    assert audio_api.submit_calls() == 0
    assert await audio_harness.query("SELECT id FROM jobs") == []


async def test_aimlapi_audio_custom_lyrics_refused_for_instrumental_only_models(
    audio_harness: RunningBot, audio_api: FakeAimlAudioApi
) -> None:
    interaction = await audio_harness.command("music-custom", model="google/lyria2")
    await audio_harness.discord.wait_for(lambda: bool(interaction.callbacks))
    assert interaction.modal is None
    assert "does not take your own lyrics" in interaction.callbacks[0]["data"]["content"]
    assert audio_api.submit_calls() == 0


async def test_aimlapi_audio_content_policy_failure(audio_harness: RunningBot, audio_api: FakeAimlAudioApi) -> None:
    audio_api.next_outcome(AudioOutcome.content_policy())
    final = await audio_harness.finished(await audio_harness.music("something forbidden"))
    assert "content rules" in final.content
    assert await audio_harness.query("SELECT failure_reason, charged FROM jobs") == [
        {"failure_reason": "api_content_policy", "charged": 0}
    ]


def task_bot(
    discord_fake: FakeDiscord, api: FakeMusicApi, task_api: FakeSunoTaskApi, tmp_path: Path, **overrides: Any
) -> AbstractAsyncContextManager[RunningBot]:
    """The real bot on the `sunoapi` backend, pointed at the fake task API."""
    return running_bot(
        discord_fake,
        api,
        tmp_path / "db.sqlite3",
        music_backend="sunoapi",
        sunoapi_base_url=task_api.base_url,
        sunoapi_key=task_api.api_key,
        **overrides,
    )


@pytest.fixture
async def task_harness(
    discord_fake: FakeDiscord, api: FakeMusicApi, task_api: FakeSunoTaskApi, tmp_path: Path
) -> AsyncIterator[RunningBot]:
    async with task_bot(discord_fake, api, task_api, tmp_path) as harness:
        yield harness


async def test_sunoapi_task_backend_end_to_end(task_harness: RunningBot, task_api: FakeSunoTaskApi) -> None:
    interaction = await task_harness.music("a reseller song")
    await task_harness.discord.wait_for(lambda: len(interaction.followups) == 1, timeout=10)
    (task_id,) = task_api.tasks
    assert task_api.status_of(task_id) != "SUCCESS"  # the first song went out at FIRST_SUCCESS
    final = await task_harness.finished(interaction)
    assert final.content.startswith("✅")
    assert len(interaction.followups) == 2
    for message, song_id in zip(interaction.followups, task_api.tasks[task_id].song_ids, strict=True):
        assert message.attachments[0].data == task_api.audio_bytes(song_id)
    body = next(request for request in task_api.requests if request.route == "generate").json
    # No SUNOAPI_CALLBACK_URL is set: the inert one is sent, as kie.ai refuses a request without any.
    assert body == {
        "customMode": False,
        "instrumental": False,
        "model": "V4_5",
        "prompt": "a reseller song",
        "callBackUrl": INERT_CALLBACK_URL,
    }
    jobs = await task_harness.query("SELECT provider_task_id, status FROM jobs")
    assert jobs == [{"provider_task_id": task_id, "status": "delivered"}]


async def test_sunoapi_sends_the_operators_callback_url(
    discord_fake: FakeDiscord, api: FakeMusicApi, task_api: FakeSunoTaskApi, tmp_path: Path
) -> None:
    callback = "https://bot.example.org/suno-callback"
    async with task_bot(discord_fake, api, task_api, tmp_path, sunoapi_callback_url=callback) as harness:
        final = await harness.finished(await harness.music("with a callback"))
    assert final.content.startswith("✅")
    body = next(request for request in task_api.requests if request.route == "generate").json
    assert body["callBackUrl"] == callback


@pytest.mark.parametrize(
    ("code", "words", "reason"),
    [
        (429, "out of credits", "api_credits"),
        (430, "rate limited", "api_rate_limited"),
        (401, "refused the bot's API key", "api_auth"),
        (455, "down or failing", "api_unavailable"),
    ],
)
async def test_sunoapi_envelope_codes_inside_http_200(
    task_harness: RunningBot, task_api: FakeSunoTaskApi, code: int, words: str, reason: str
) -> None:
    task_api.fail_next("generate", code=code, times=5)
    final = await task_harness.finished(await task_harness.music("refused"))
    assert words in final.content
    rows = await task_harness.query("SELECT failure_reason, charged FROM jobs")
    assert rows == [{"failure_reason": reason, "charged": 0}]


async def test_sunoapi_sensitive_words_are_a_content_policy_failure(
    task_harness: RunningBot, task_api: FakeSunoTaskApi
) -> None:
    task_api.next_outcome(TaskOutcome.sensitive_word())
    final = await task_harness.finished(await task_harness.music("something sensitive"))
    assert "content rules" in final.content
    assert "sensitive words" in final.content


async def test_sunoapi_custom_mode_maps_fields(task_harness: RunningBot, task_api: FakeSunoTaskApi) -> None:
    opened = await task_harness.command("music-custom", model="V5")
    await task_harness.discord.wait_for(lambda: opened.modal is not None)
    assert opened.modal is not None
    interaction = await task_harness.discord.submit_modal(
        opened.modal["custom_id"],
        {"song_title": "Neon", "style": "synthwave", "lyrics": "[Verse]\nla la"},
        guild_id=task_harness.guild_id,
        channel_id=task_harness.channel_id,
        user_id=task_harness.member_id,
    )
    await task_harness.finished(interaction)
    body = next(request for request in task_api.requests if request.route == "generate").json
    assert body == {
        "customMode": True,
        "instrumental": False,
        "model": "V5",
        "style": "synthwave",
        "title": "Neon",
        "prompt": "[Verse]\nla la",
        "callBackUrl": INERT_CALLBACK_URL,
    }
