"""The `acestep` backend end to end through the real bot against the fake ACE-Step server: description mode, custom
lyrics, instrumentals, duration and models, the full queue, a task the server lost, the bot restarted mid-job,
the optional key, and a file address outside the server's origin."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.fakes.acestep import FakeAceStepApi, TaskOutcome, TaskTimings
from tests.fakes.discord_server import FakeDiscord, FakeMessage
from tests.fakes.music_api import FakeMusicApi
from tests.harness import RunningBot, World, running_bot
from tests.test_e2e_backends import refused


@pytest.fixture
async def ace() -> AsyncIterator[FakeAceStepApi]:
    async with FakeAceStepApi(timings=TaskTimings(run_seconds=0.6)) as fake:
        yield fake


def ace_bot(
    discord_fake: FakeDiscord, api: FakeMusicApi, ace: FakeAceStepApi, database: Path, **overrides: Any
) -> AbstractAsyncContextManager[RunningBot]:
    """The real bot on the `acestep` backend, pointed at the fake ACE-Step server."""
    return running_bot(discord_fake, api, database, music_backend="acestep", acestep_base_url=ace.base_url, **overrides)


@pytest.fixture
async def ace_harness(
    discord_fake: FakeDiscord, api: FakeMusicApi, ace: FakeAceStepApi, tmp_path: Path
) -> AsyncIterator[RunningBot]:
    async with ace_bot(discord_fake, api, ace, tmp_path / "db.sqlite3") as harness:
        yield harness


def progress_edits(harness: RunningBot) -> list[str]:
    return [
        request.json.get("content", "")
        for request in harness.discord.requests
        if request.method == "PATCH" and request.path.endswith("/messages/@original") and request.json
    ]


async def test_description_mode_posts_both_takes_titled_from_the_prompt(
    ace_harness: RunningBot, ace: FakeAceStepApi
) -> None:
    interaction = await ace_harness.music("a sea shanty about a lost parrot")
    final = await ace_harness.finished(interaction)
    assert final.content.startswith("✅")
    assert "Done: 2 songs below." in final.content
    (task_id,) = ace.tasks
    task = ace.tasks[task_id]
    for take, message in enumerate(interaction.followups, start=1):
        assert message.attachments[0].data == ace.audio_bytes(task_id, take)
        embed = message.embeds[0]
        assert embed["title"] == "a sea shanty about a lost parrot"  # ACE-Step names nothing
        assert "thumbnail" not in embed  # and draws no cover
        fields = {field["name"]: field["value"] for field in embed["fields"]}
        assert fields["Style"] == task.caption  # the caption its language model wrote
        assert fields["Model"] == "acestep-v15-turbo"
    assert ace.release_bodies() == [
        {"batch_size": 2, "audio_format": "mp3", "sample_query": "a sea shanty about a lost parrot", "thinking": True}
    ]
    assert all(batch == [task_id] for batch in ace.query_batches())
    edits = progress_edits(ace_harness)
    assert any(edit.startswith("⏳ Queued — 1st in the music service's queue") for edit in edits)
    assert any(edit.startswith("🎼 Generating — ") and "%" in edit for edit in edits)
    jobs = await ace_harness.query("SELECT provider_task_id, status, backend FROM jobs")
    assert jobs == [{"provider_task_id": task_id, "status": "delivered", "backend": "acestep"}]


async def test_the_progress_shows_the_servers_queue_then_its_percentage(
    ace_harness: RunningBot, ace: FakeAceStepApi
) -> None:
    ace.paused = True  # the GPU is busy with someone else's song
    ace.submit_directly()
    interaction = await ace_harness.music("a song that waits its turn")
    await ace_harness.discord.wait_for(
        lambda: any("2nd in the music service's queue" in edit for edit in progress_edits(ace_harness))
    )
    ace.paused = False
    final = await ace_harness.finished(interaction)
    assert final.content.startswith("✅")
    edits = progress_edits(ace_harness)
    first_generating = next(n for n, edit in enumerate(edits) if edit.startswith("🎼 Generating — "))
    assert all("queue" in edit for edit in edits[1:first_generating])


async def test_custom_lyrics_send_the_style_as_the_caption(ace_harness: RunningBot, ace: FakeAceStepApi) -> None:
    lyrics = "[Verse]\nSalt on the wind\n[Chorus]\nHeave away"
    interaction = await ace_harness.custom_song({"song_title": "Parrot", "style": "folk, accordion", "lyrics": lyrics})
    final = await ace_harness.finished(interaction)
    assert final.content.startswith("✅")
    assert ace.release_bodies() == [
        {"batch_size": 2, "audio_format": "mp3", "prompt": "folk, accordion", "lyrics": lyrics}
    ]
    assert [message.embeds[0]["title"] for message in interaction.followups] == ["Parrot", "Parrot"]
    assert "Salt on the wind" in interaction.followups[0].embeds[0]["description"]


async def test_instrumental_in_both_modes(ace_harness: RunningBot, ace: FakeAceStepApi) -> None:
    await ace_harness.finished(await ace_harness.music("rainy piano", instrumental=True))
    interaction = await ace_harness.custom_song({"song_title": "Drift", "style": "ambient"}, instrumental=True)
    await ace_harness.finished(interaction)
    description, custom = ace.release_bodies()
    assert description["sample_query"] == "rainy piano (instrumental)"  # the words its description parser reads
    assert custom["lyrics"] == "[Instrumental]"  # the server's own marker for no vocals
    assert all(task.lyrics == "[Instrumental]" for task in ace.tasks.values())


async def test_duration_and_models_from_the_server(ace_harness: RunningBot, ace: FakeAceStepApi) -> None:
    ace_harness.bot.services.runtime.capabilities  # noqa: B018 - asking for them reads the server's list
    await ace_harness.discord.wait_for(
        lambda: "acestep-v15-turbo-shift3" in ace_harness.bot.services.runtime.capabilities.model_names
    )
    final = await ace_harness.finished(
        await ace_harness.music("a short jingle", duration=30, model="acestep-v15-turbo-shift3")
    )
    assert final.content.startswith("✅")
    (body,) = ace.release_bodies()
    assert body["audio_duration"] == 30
    assert body["model"] == "acestep-v15-turbo-shift3"
    assert "makes songs of 10 to 600 seconds" in await refused(ace_harness, prompt="too short", duration=5)
    assert "Unknown model" in await refused(ace_harness, prompt="x", model="chirp-v3-5")
    assert len(ace.release_bodies()) == 1


async def test_a_full_queue_is_refused_clearly_and_given_back(ace_harness: RunningBot, ace: FakeAceStepApi) -> None:
    ace.queue_maxsize = 1
    ace.paused = True  # the GPU is busy: the one place in the queue stays taken
    other = ace.submit_directly()
    final = await ace_harness.finished(await ace_harness.music("no room"))
    assert "busy right now" in final.content
    assert "It was not counted against the server's quota." in final.content
    assert list(ace.tasks) == [other]  # the bot's request created nothing
    assert len(ace.release_bodies()) == ace_harness.settings.retry_attempts  # asked again, as nothing was made
    rows = await ace_harness.query("SELECT failure_reason, charged FROM jobs")
    assert rows == [{"failure_reason": "api_rate_limited", "charged": 0}]


async def test_a_task_the_server_lost_ends_at_the_deadline_saying_so(
    discord_fake: FakeDiscord, api: FakeMusicApi, ace: FakeAceStepApi, tmp_path: Path
) -> None:
    ace.timings.run_seconds = 60
    async with ace_bot(discord_fake, api, ace, tmp_path / "db.sqlite3", generation_deadline_seconds=2) as harness:
        interaction = await harness.music("a song the server forgets")
        await discord_fake.wait_for(lambda: any("Generating" in edit for edit in progress_edits(harness)))
        ace.restart()  # its tasks lived in memory only
        final = await harness.finished(interaction)
        rows = await harness.query("SELECT failure_reason, charged FROM jobs")
    assert final.content.startswith("❌")
    assert "The ACE-Step server lost this request" in final.content
    assert "probably restarted" in final.content
    assert "It was not counted against the server's quota." in final.content
    assert rows == [{"failure_reason": "deadline", "charged": 0}]
    assert interaction.followups == []


def clip_messages(discord: FakeDiscord, channel_id: int) -> list[FakeMessage]:
    return [
        message
        for message in discord.messages(channel_id)
        if message.embeds and "job #" in (message.embeds[0].get("footer") or {}).get("text", "")
    ]


async def test_a_job_resumes_after_the_bot_restarts_and_posts_each_song_once(
    discord_fake: FakeDiscord, api: FakeMusicApi, ace: FakeAceStepApi, tmp_path: Path
) -> None:
    ace.timings.run_seconds = 2.5
    database = tmp_path / "db.sqlite3"
    world = World.create(discord_fake)
    async with ace_bot(discord_fake, api, ace, database, world=world) as first_run:
        await first_run.music("a song across a restart")
        await discord_fake.wait_for(lambda: any("Generating" in edit for edit in progress_edits(first_run)))
        rows = await first_run.query("SELECT status FROM jobs")
    assert rows == [{"status": "polling"}]
    async with ace_bot(discord_fake, api, ace, database, world=world) as second_run:
        await discord_fake.wait_for(lambda: len(clip_messages(discord_fake, world.channel_id)) == 2, timeout=15)
        for _ in range(200):
            rows = await second_run.query("SELECT status FROM jobs")
            if rows == [{"status": "delivered"}]:
                break
            await asyncio.sleep(0.05)
        posted = await second_run.query("SELECT id FROM clips WHERE message_id IS NOT NULL ORDER BY position")
    (task_id,) = ace.tasks
    assert len(ace.release_bodies()) == 1  # submitted once, polled by both runs
    assert rows == [{"status": "delivered"}]
    assert [row["id"] for row in posted] == [f"{task_id}:1", f"{task_id}:2"]
    footers = [message.embeds[0]["footer"]["text"] for message in clip_messages(discord_fake, world.channel_id)]
    assert sorted(footers) == ["Song 1 · job #1", "Song 2 · job #1"]


async def test_the_key_is_sent_to_every_route_when_set(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with (
        FakeAceStepApi(api_key="ace-secret", timings=TaskTimings(run_seconds=0.3)) as ace,
        ace_bot(discord_fake, api, ace, tmp_path / "db.sqlite3", acestep_api_key="ace-secret") as harness,
    ):
        interaction = await harness.music("a keyed song")
        final = await harness.finished(interaction)
        assert final.content.startswith("✅")
        routes = {request.route for request in ace.requests}
        assert {"release", "query", "audio"} <= routes
        assert all(request.headers.get("Authorization") == "Bearer ace-secret" for request in ace.requests)
        (task_id,) = ace.tasks
        assert interaction.followups[0].attachments[0].data == ace.audio_bytes(task_id, 1)


async def test_a_server_with_a_key_refuses_a_bot_without_one(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with (
        FakeAceStepApi(api_key="ace-secret") as ace,
        ace_bot(discord_fake, api, ace, tmp_path / "db.sqlite3") as harness,
    ):
        final = await harness.finished(await harness.music("no key"))
        assert "refused the bot's API key" in final.content
        assert not ace.tasks
        assert all("Authorization" not in request.headers for request in ace.requests)
        rows = await harness.query("SELECT failure_reason, charged FROM jobs")
    assert rows == [{"failure_reason": "api_auth", "charged": 0}]


async def test_a_file_address_outside_the_servers_origin_is_never_fetched(
    ace_harness: RunningBot, ace: FakeAceStepApi
) -> None:
    fetched: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        fetched.append(request.path_qs)
        return web.Response(body=b"ID3" + bytes(1000), content_type="audio/mpeg")

    app = web.Application()
    app.router.add_get("/{tail:.*}", elsewhere)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        outside = (f"http://{host}:{port}/v1/audio?path=a.mp3", f"http://{host}:{port}/v1/audio?path=b.mp3")
        ace.next_outcome(TaskOutcome.success(file_urls=outside))
        interaction = await ace_harness.music("a song served from elsewhere")
        final = await ace_harness.finished(interaction)
    finally:
        await runner.cleanup()
    assert fetched == []
    assert final.content.startswith("❌")
    assert "will not fetch" in final.content
    assert interaction.followups == []
