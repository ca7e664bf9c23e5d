"""End to end: `/music` and `/music-custom` through the real bot, the fake Discord and the fake music API."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import ClipOutcome, ClipTimings, FakeMusicApi
from tests.harness import RunningBot, running_bot

DEFERRED = 5


async def test_happy_path_posts_two_playable_songs(harness: RunningBot) -> None:
    interaction = await harness.music("an upbeat synthwave song about night drives")
    final = await harness.finished(interaction)

    assert interaction.callbacks[0]["type"] == DEFERRED
    assert not interaction.ephemeral
    assert final.content.startswith("✅")
    assert "Done: 2 songs below." in final.content
    clip_ids = [clip.id for clip in harness.api.clips.values()]
    assert len(interaction.followups) == 2
    for message, clip_id in zip(interaction.followups, clip_ids, strict=True):
        assert len(message.attachments) == 1
        attachment = message.attachments[0]
        assert attachment.filename.endswith(".mp3")
        assert attachment.data == harness.api.audio_bytes(clip_id)
        embed = message.embeds[0]
        clip = harness.api.clips[clip_id]
        assert embed["title"] == clip.title
        fields = {field["name"]: field["value"] for field in embed["fields"]}
        assert fields["Style"] == clip.tags
        assert fields["Requested by"] == f"<@{harness.member_id}>"
        assert ":" in fields["Duration"]
        assert embed["thumbnail"]["url"].endswith(".png")
        assert embed["description"]
    jobs = await harness.query("SELECT status, charged, failure_reason FROM jobs")
    assert jobs == [{"status": "delivered", "charged": 1, "failure_reason": None}]
    clips = await harness.query("SELECT id, message_id FROM clips ORDER BY position")
    assert [row["id"] for row in clips] == clip_ids
    assert [row["message_id"] for row in clips] == [message.id for message in interaction.followups]
    assert harness.api.generate_calls() == 1


async def test_wait_audio_returns_at_streaming_then_polling_completes(harness: RunningBot) -> None:
    harness.api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=1.5)
    interaction = await harness.music("slow ambient piano")
    final = await harness.finished(interaction)

    generate = next(request for request in harness.api.requests if request.route == "generate")
    assert generate.json["wait_audio"] is True
    assert final.content.startswith("✅")
    batches = harness.api.fetch_batches()
    assert batches, "the bot should have polled fetch-by-ids after wait_audio returned at streaming"
    assert all(sorted(batch) == sorted(harness.api.clips) for batch in batches)  # both ids in one request
    assert len(interaction.followups) == 2
    assert harness.api.generate_calls() == 1


async def test_the_progress_offers_each_stream_to_listen_and_the_songs_replace_it(harness: RunningBot) -> None:
    """Suno-shaped APIs stream a take before it is done: the progress message links to it (a link: the stream is
    not the song), and the finished songs come as their own messages, never the stream."""
    harness.api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=1.5)
    interaction = await harness.music("a song to hear as it is made")
    final = await harness.finished(interaction)

    edits = [
        request.json.get("content") or ""
        for request in harness.discord.requests
        if request.method == "PATCH" and "/messages/@original" in request.path and isinstance(request.json, dict)
    ]
    offered = [edit for edit in edits if "▶ [Listen while it's being made" in edit]
    assert offered, edits
    for clip_id in harness.api.clips:
        stream = f"{harness.api.base_url}/audiopipe/?item_id={clip_id}"
        assert any(f"]({stream})" in edit for edit in offered), (stream, offered)
    assert "Listen while" not in final.content
    assert final.content.startswith("✅")
    assert len(interaction.followups) == 2
    for message in interaction.followups:  # the songs, each the final mp3: never the stream
        assert [attachment.filename[-4:] for attachment in message.attachments] == [".mp3"]
        assert "audiopipe" not in str(message.embeds)
        assert "audiopipe" not in message.content


@pytest.mark.parametrize(
    ("inject", "words", "reason"),
    [
        (lambda api: api.fail_with_gateway_error("generate", 401), "refused the bot's API key", "api_auth"),
        (lambda api: api.fail_with_gateway_error("generate", 403), "out of credits", "api_credits"),
        (lambda api: api.fail_with_gcui_error("generate", 402), "out of credits", "api_credits"),
        (lambda api: api.fail_with_gateway_error("generate", 429, times=3), "rate limited", "api_rate_limited"),
        (lambda api: api.fail_with_plain_text_500("generate"), "down or failing", "api_unavailable"),
        (lambda api: api.fail_with_gateway_error("generate", 503), "down or failing", "api_unavailable"),
        (lambda api: api.fail_with_malformed_json("generate", status=201), "could not read", "api_bad_response"),
        (lambda api: api.hang_next("generate", seconds=30), "did not answer in time", "api_timeout"),
    ],
)
async def test_api_failures_are_explained_and_refunded(harness: RunningBot, inject, words: str, reason: str) -> None:
    inject(harness.api)
    interaction = await harness.music("a song that will not happen")
    final = await harness.finished(interaction)

    assert final.content.startswith("❌")
    assert words in final.content
    assert "not counted against the server's quota" in final.content
    assert harness.api.api_key not in final.content
    assert interaction.followups == []
    jobs = await harness.query("SELECT status, charged, failure_reason FROM jobs")
    assert jobs == [{"status": "failed", "charged": 0, "failure_reason": reason}]
    ledger = await harness.query("SELECT change FROM quota_ledger ORDER BY id")
    assert [row["change"] for row in ledger] == ["reserve", "refund"]


async def test_rate_limited_generate_is_sent_again_because_nothing_was_created(harness: RunningBot) -> None:
    harness.api.fail_with_gateway_error("generate", 429)
    interaction = await harness.music("patience")
    final = await harness.finished(interaction)
    assert final.content.startswith("✅")
    assert harness.api.generate_calls() == 2
    assert len(harness.api.clips) == 2  # only the second call created songs


@pytest.mark.parametrize("status", [500, 503])
async def test_generate_failing_server_side_is_never_sent_again(harness: RunningBot, status: int) -> None:
    harness.api.fail_with_gateway_error("generate", status)
    final = await harness.finished(await harness.music("costly"))
    assert final.content.startswith("❌")
    assert harness.api.generate_calls() == 1


async def test_clips_ending_in_error_show_the_api_message(harness: RunningBot) -> None:
    message = "Song Description contained artist name: metallica"
    harness.api.next_outcome(ClipOutcome.error(message), ClipOutcome.error(message))
    interaction = await harness.music("a song like metallica")
    final = await harness.finished(interaction)

    assert final.content.startswith("❌")
    assert message in final.content
    jobs = await harness.query("SELECT status, charged, failure_reason FROM jobs")
    assert jobs == [{"status": "failed", "charged": 0, "failure_reason": "clips_failed"}]


async def test_one_clip_failing_still_delivers_the_other_and_keeps_the_charge(harness: RunningBot) -> None:
    harness.api.next_outcome(ClipOutcome.complete(), ClipOutcome.error("internal error"))
    interaction = await harness.music("half a success")
    final = await harness.finished(interaction)

    assert final.content.startswith("⚠️")
    assert "1 of 2 songs delivered" in final.content
    assert len(interaction.followups) == 1
    jobs = await harness.query("SELECT status, charged FROM jobs")
    assert jobs == [{"status": "delivered", "charged": 1}]


async def test_job_past_its_deadline_is_reported_and_refunded(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    api.next_outcome(ClipOutcome.stuck("queued"), ClipOutcome.stuck("queued"))
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3", generation_deadline_seconds=1.5) as harness:
        interaction = await harness.music("never finishes")
        final = await harness.finished(interaction)
    assert final.content.startswith("❌")
    assert "still not ready" in final.content
    assert "2 of 2 songs unfinished" in final.content


async def test_concurrent_commands_never_pass_the_daily_limit(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with running_bot(
        discord_fake, api, tmp_path / "db.sqlite3", default_daily_limit=5, default_max_concurrent=-1
    ) as harness:
        members = [discord_fake.add_member(harness.guild_id, name=f"m{i}") for i in range(20)]
        interactions = await asyncio.gather(
            *(harness.music(f"song number {i}", user_id=member) for i, member in enumerate(members))
        )
        await discord_fake.wait_for(lambda: all(i.callbacks for i in interactions), timeout=15)
        accepted = [i for i in interactions if i.callbacks[0]["type"] == DEFERRED]
        refused = [i for i in interactions if i.callbacks[0]["type"] != DEFERRED]
        assert len(accepted) == 5
        assert len(refused) == 15
        for interaction in refused:
            assert interaction.ephemeral
            assert "used all 5 of today's generations" in interaction.callbacks[0]["data"]["content"]
        for interaction in accepted:
            await harness.finished(interaction)
        assert harness.api.generate_calls() == 5
        jobs = await harness.query("SELECT count(*) AS n FROM jobs WHERE charged = 1")
        assert jobs == [{"n": 5}]


async def test_oversized_clip_is_posted_as_a_link(harness: RunningBot) -> None:
    harness.api.audio_size = 11 * 1024 * 1024
    interaction = await harness.music("a very long song")
    final = await harness.finished(interaction)

    assert final.content.startswith("✅")
    assert len(interaction.followups) == 2
    for message in interaction.followups:
        assert message.attachments == []
        assert "Too large to attach here" in message.embeds[0]["description"]
        assert "/audio/" in message.embeds[0]["description"]


async def test_oversized_clip_without_content_length_is_cut_and_linked(harness: RunningBot) -> None:
    harness.api.audio_size = 11 * 1024 * 1024
    harness.api.send_content_length = False
    interaction = await harness.music("a very long song, streamed")
    await harness.finished(interaction)
    assert all(message.attachments == [] for message in interaction.followups)


async def test_everyone_in_a_prompt_pings_nobody(harness: RunningBot) -> None:
    interaction = await harness.music("@everyone @here <@123> a song for all")
    await harness.finished(interaction)
    messages = harness.discord.messages(harness.channel_id)
    assert messages
    for message in messages:
        assert message.pinged() == set()


async def test_blank_prompt_is_refused_privately_and_costs_nothing(harness: RunningBot) -> None:
    interaction = await harness.music("   ")
    await harness.discord.wait_for(lambda: bool(interaction.callbacks))
    assert interaction.ephemeral
    assert "The description is empty" in interaction.callbacks[0]["data"]["content"]
    assert harness.api.generate_calls() == 0
    assert await harness.query("SELECT id FROM jobs") == []


async def test_custom_mode_sends_title_style_and_lyrics(harness: RunningBot) -> None:
    opened = await harness.command("music-custom")
    await harness.discord.wait_for(lambda: opened.modal is not None)
    assert opened.modal is not None
    modal_id = opened.modal["custom_id"]
    lyrics = "[Verse]\nRain on the window\n[Chorus]\nWe drive all night"
    interaction = await harness.discord.submit_modal(
        modal_id,
        {"song_title": "Night Drive", "style": "synthwave, female vocals", "lyrics": lyrics},
        guild_id=harness.guild_id,
        channel_id=harness.channel_id,
        user_id=harness.member_id,
    )
    final = await harness.finished(interaction)
    assert final.content.startswith("✅")
    custom = next(request for request in harness.api.requests if request.route == "custom")
    assert custom.json == {
        "prompt": lyrics,
        "tags": "synthwave, female vocals",
        "title": "Night Drive",
        "make_instrumental": False,
        "wait_audio": True,
    }
    assert len(interaction.followups) == 2


async def test_wait_audio_own_timeout_returns_unfinished_clips_and_polling_finishes(harness: RunningBot) -> None:
    harness.api.wait_audio_timeout = 0.2
    harness.api.timings = ClipTimings(queued_after=0.5, streaming_after=0.8, complete_after=1.0)
    interaction = await harness.music("a patient song")
    final = await harness.finished(interaction)

    generate = next(request for request in harness.api.requests if request.route == "generate")
    assert generate.status in (200, 201)
    assert final.content.startswith("✅")
    assert len(interaction.followups) == 2
    assert harness.api.generate_calls() == 1


async def test_without_wait_audio_ids_are_stored_at_once_and_polled(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3", wait_audio=False) as harness:
        interaction = await harness.music("no waiting")
        final = await harness.finished(interaction)
        generate = next(request for request in api.requests if request.route == "generate")
        assert generate.json["wait_audio"] is False
        assert final.content.startswith("✅")
        assert len(api.fetch_batches()) >= 2


async def test_one_poller_batches_the_clips_of_all_running_jobs(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=2.0)
    async with running_bot(
        discord_fake, api, tmp_path / "db.sqlite3", poll_batch_size=4, poll_interval_seconds=0.3
    ) as harness:
        interactions = await asyncio.gather(*(harness.music(f"song {i}") for i in range(3)))
        for interaction in interactions:
            await harness.finished(interaction)
    batches = api.fetch_batches()
    assert max(len(batch) for batch in batches) == 4  # one request carried clips of several jobs
    assert all(len(batch) <= 4 for batch in batches)
    assert api.generate_calls() == 3
    jobs_per_batch = [{api.clips[clip_id].generation_index for clip_id in batch} for batch in batches]
    assert any(len(jobs) > 1 for jobs in jobs_per_batch)


async def test_progress_is_shown_by_editing_the_acknowledged_message(harness: RunningBot) -> None:
    harness.api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=1.0)
    interaction = await harness.music("watch it progress")
    await harness.finished(interaction)
    edits = [
        request.json.get("content", "")
        for request in harness.discord.requests
        if request.method == "PATCH" and request.path.endswith("/messages/@original") and request.json
    ]
    assert edits[0].startswith("⏳ Queued")
    assert "started <t:" in edits[0]
    assert any(edit.startswith("🎼 Generating") for edit in edits)
    assert edits[-1].startswith("✅")


async def test_progress_edits_are_throttled(discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path) -> None:
    api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=1.0)
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3", progress_edit_interval_seconds=30) as harness:
        interaction = await harness.music("quietly")
        await harness.finished(interaction)
    edits = [
        request.json.get("content", "")
        for request in discord_fake.requests
        if request.method == "PATCH" and request.path.endswith("/messages/@original") and request.json
    ]
    assert len(edits) == 2  # the first phase, then (always) the final word
    assert edits[0].startswith("⏳ Queued")
    assert edits[1].startswith("✅")
