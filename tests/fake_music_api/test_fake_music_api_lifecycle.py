"""Fake music API: generate, fetch, the clip lifecycle and wait_audio."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import yarl

from tests.fake_music_api.support import (
    AUDIO_INFO_KEYS,
    CUSTOM_BODY,
    SIMPLE_BODY,
    assert_gateway_error,
    fetch,
    generate,
)
from tests.fakes.music_api import ClipOutcome, ClipTimings, FakeMusicApi


async def test_generate_returns_two_submitted_clips_at_once(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    started = time.monotonic()
    status, clips = await generate(api, session)
    assert time.monotonic() - started < 0.2
    assert status == 201
    assert len(clips) == 2
    for clip in clips:
        assert set(clip) == AUDIO_INFO_KEYS  # no error_message in the immediate generate result
        assert clip["status"] == "submitted"
        assert clip["audio_url"] == clip["video_url"] == clip["title"] == clip["lyric"] == ""
        assert clip["image_url"] is None
        assert clip["tags"] is None
        assert clip["duration"] is None
        assert clip["gpt_description_prompt"] == SIMPLE_BODY["prompt"]
        assert clip["type"] == "gen"
        assert clip["created_at"].endswith("Z")
    assert clips[0]["id"] != clips[1]["id"]
    assert api.generate_calls() == 1


async def test_v1_prefix_and_generate_status_option(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.generate_status = 200
    async with session.post(f"{api.base_url}/v1/generate", json=SIMPLE_BODY) as response:
        assert response.status == 200
        clips = await response.json()
    async with session.get(f"{api.base_url}/v1", params={"ids[0]": clips[0]["id"]}) as response:
        assert response.status == 200
        assert [clip["id"] for clip in await response.json()] == [clips[0]["id"]]


async def test_lifecycle_seen_by_polling_fetch(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    _, created = await generate(api, session)
    ids = [clip["id"] for clip in created]
    seen: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        clips = await fetch(api, session, ids)
        assert [clip["id"] for clip in clips] == ids
        status = clips[0]["status"]
        if not order or order[-1] != status:
            order.append(status)
        seen.setdefault(status, clips[0])
        if all(clip["status"] == "complete" for clip in clips):
            break
        await asyncio.sleep(0.02)
    assert order == ["submitted", "queued", "streaming", "complete"]

    queued, streaming, complete = seen["queued"], seen["streaming"], seen["complete"]
    assert set(complete) == AUDIO_INFO_KEYS | {"error_message"}
    assert (queued["audio_url"], queued["title"], queued["image_url"]) == ("", "", None)
    assert streaming["audio_url"] == f"{api.base_url}/audiopipe/?item_id={ids[0]}"
    assert all(streaming[key] for key in ("title", "tags", "lyric"))
    assert (streaming["video_url"], streaming["duration"]) == ("", None)
    assert streaming["image_url"] == f"{api.base_url}/image/{ids[0]}.png"
    assert complete["audio_url"] == f"{api.base_url}/audio/{ids[0]}.mp3"
    assert complete["video_url"] == f"{api.base_url}/video/{ids[0]}.mp4"
    assert isinstance(complete["duration"], float)
    assert 60 <= complete["duration"] <= 240
    assert complete["error_message"] is None
    assert "\n\n" not in complete["lyric"]  # blank lines dropped in get results
    assert complete["prompt"] == api.clips[ids[0]].lyrics
    assert api.fetch_batches()[0] == ids


async def test_fetch_query_forms(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    _, clips = await generate(api, session)
    first, second = clips[0]["id"], clips[1]["id"]
    raw = yarl.URL(f"{api.base_url}/?ids[1]={first}&ids[0]={second}&ids[2]=unknown", encoded=True)
    async with session.get(raw) as response:
        assert response.status == 200
        assert [clip["id"] for clip in await response.json()] == [second, first]
    for query in ["", f"?ids={first}"]:
        async with session.get(f"{api.base_url}/{query}") as response:
            assert response.status == 400
            error = await response.json()
        assert_gateway_error(error, 400, "/")
        assert error["message"].startswith("Query validation error!")
    assert api.fetch_batches() == [[second, first, "unknown"]]


async def test_custom_mode_echoes_lyrics_title_and_tags(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{api.base_url}/generate/custom-mode", json=CUSTOM_BODY) as response:
        assert response.status == 201
        created = await response.json()
    assert created[0]["title"] == "Roof Cats"
    assert created[0]["lyric"] == CUSTOM_BODY["prompt"]  # raw in the generate result
    assert created[0]["gpt_description_prompt"] is None
    [fetched] = await fetch(api, session, [created[0]["id"]])
    assert fetched["lyric"] == "[Verse 1]\nCats on the roof\n[Chorus]\nMeow meow"
    assert fetched["prompt"] == CUSTOM_BODY["prompt"]
    assert fetched["tags"] == "pop metal male melancholic"


async def test_status_spelling_options(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.timings = ClipTimings(0, 0, 0)
    api.complete_spelling = "completed"
    api.status_case = "upper"
    _, clips = await generate(api, session)
    assert {clip["status"] for clip in await fetch(api, session, [clips[0]["id"]])} == {"COMPLETED"}
    assert api.status_of(clips[0]["id"]) == "complete"


async def test_wait_audio_returns_once_all_clips_stream(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.timings = ClipTimings(queued_after=0.05, streaming_after=0.2, complete_after=30)
    started = time.monotonic()
    status, clips = await generate(api, session, wait_audio=True)
    elapsed = time.monotonic() - started
    assert status == 201
    assert 0.2 <= elapsed < api.wait_audio_timeout
    assert [clip["status"] for clip in clips] == ["streaming", "streaming"]
    assert all(clip["audio_url"].startswith(f"{api.base_url}/audiopipe/") for clip in clips)
    assert all("error_message" in clip for clip in clips)  # the result comes from a get()
    assert api.fetch_batches() == []  # internal polling is not a client fetch


async def test_wait_audio_times_out_with_incomplete_clips_and_2xx(
    api: FakeMusicApi, session: aiohttp.ClientSession
) -> None:
    api.wait_audio_timeout = 0.3
    api.next_outcome(ClipOutcome.stuck(), ClipOutcome.stuck(at="submitted"))
    started = time.monotonic()
    status, clips = await generate(api, session, wait_audio=True)
    assert 0.3 <= time.monotonic() - started < 0.6
    assert status == 201
    assert [clip["status"] for clip in clips] == ["queued", "submitted"]
    assert all(clip["audio_url"] == "" for clip in clips)


async def test_wait_audio_mixed_error_and_streaming_waits_for_the_timeout(
    api: FakeMusicApi, session: aiohttp.ClientSession
) -> None:
    api.wait_audio_timeout = 0.4
    api.timings.complete_after = 30
    api.next_outcome(ClipOutcome.error("Song Description contained artist name: metallica"))
    started = time.monotonic()
    _, clips = await generate(api, session, wait_audio=True)
    assert time.monotonic() - started >= 0.4
    assert [clip["status"] for clip in clips] == ["error", "streaming"]


async def test_wait_audio_returns_early_when_every_clip_errors(
    api: FakeMusicApi, session: aiohttp.ClientSession
) -> None:
    message = "Song Description contained artist name: metallica"
    api.next_outcome(ClipOutcome.error(message), ClipOutcome.error(message, after=0.1))
    started = time.monotonic()
    status, clips = await generate(api, session, wait_audio=True)
    assert time.monotonic() - started < api.wait_audio_timeout / 2
    assert status == 201
    for clip in clips:
        assert clip["status"] == "error"
        assert clip["error_message"] == message
        assert clip["audio_url"] == f"{api.base_url}/None.mp3"
        assert clip["title"]  # title and lyrics may still be filled on error


async def test_wait_audio_initial_delay_past_timeout_returns_empty_list(
    api: FakeMusicApi, session: aiohttp.ClientSession
) -> None:
    api.wait_initial_delay, api.wait_audio_timeout = 0.1, 0.05
    status, clips = await generate(api, session, wait_audio=True)
    assert (status, clips) == (201, [])
    assert len(api.clips) == 2
