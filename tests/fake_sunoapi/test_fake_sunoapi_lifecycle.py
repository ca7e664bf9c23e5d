"""Fake Suno task API: the task lifecycle, songs and downloads."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp

from tests.fake_sunoapi.support import CUSTOM_BODY, SIMPLE_BODY, ManualClock, download, record, submit
from tests.fakes.music_api import TINY_PNG
from tests.fakes.sunoapi import FakeSunoTaskApi, TaskTimings

SONG_KEYS = {
    "id",
    "audioUrl",
    "streamAudioUrl",
    "imageUrl",
    "prompt",
    "modelName",
    "title",
    "tags",
    "createTime",
    "duration",
}


async def test_lifecycle_through_every_status_with_downloads(
    api: FakeSunoTaskApi, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    task_id = await submit(api, session, CUSTOM_BODY)
    task = api.tasks[task_id]
    song_ids = task.song_ids
    assert len(song_ids) == 2
    assert len(set(song_ids)) == 2

    data = await record(api, session, task_id)
    assert data["taskId"] == task_id
    assert data["status"] == "PENDING" == api.status_of(task_id)
    assert data["response"] is None
    assert data["errorCode"] is None
    assert data["errorMessage"] is None
    for song_id in song_ids:
        for path in (f"/files/{song_id}.mp3", f"/stream/{song_id}", f"/images/{song_id}.png"):
            assert (await download(session, api.base_url + path))[0] == 404

    clock.advance(10)
    data = await record(api, session, task_id)
    assert data["status"] == "TEXT_SUCCESS"
    songs = data["response"]["sunoData"]
    assert data["response"]["taskId"] == task_id
    assert [song["id"] for song in songs] == song_ids
    for song in songs:
        assert set(song) == SONG_KEYS
        assert song["title"] == "Roof Cats"
        assert song["tags"] == CUSTOM_BODY["style"]
        assert song["prompt"] == CUSTOM_BODY["prompt"]
        assert song["modelName"] == "chirp-crow"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", song["createTime"])
        assert song["audioUrl"] == ""
        assert song["duration"] is None
        assert song["streamAudioUrl"] == f"{api.base_url}/stream/{song['id']}"
        assert song["imageUrl"] == f"{api.base_url}/images/{song['id']}.png"
        status, image, _ = await download(session, song["imageUrl"])
        assert (status, image) == (200, TINY_PNG)
        status, streamed, response = await download(session, song["streamAudioUrl"])
        assert (status, streamed) == (200, api.audio_bytes(song["id"]))
        assert response.headers.get("Transfer-Encoding") == "chunked"

    clock.advance(10)
    data = await record(api, session, task_id)
    assert data["status"] == "FIRST_SUCCESS"
    first, second = data["response"]["sunoData"]
    assert first["audioUrl"] == f"{api.base_url}/files/{first['id']}.mp3"
    assert first["duration"] == task.songs[0].duration
    assert 60 <= first["duration"] <= 240
    assert (second["audioUrl"], second["duration"]) == ("", None)
    assert (await download(session, f"{api.base_url}/files/{second['id']}.mp3"))[0] == 404

    clock.advance(10)
    data = await record(api, session, task_id)
    assert data["status"] == "SUCCESS"
    for song in data["response"]["sunoData"]:
        assert isinstance(song["duration"], float)
        status, audio, response = await download(session, song["audioUrl"])
        assert status == 200
        assert audio == api.audio_bytes(song["id"])
        assert len(audio) == api.audio_size
        assert audio.startswith(b"ID3")
        assert response.headers["Content-Type"] == "audio/mpeg"
        assert response.headers["Content-Length"] == str(api.audio_size)
    assert api.record_calls() == 4
    assert api.generate_calls() == 1


async def test_non_custom_mode_writes_title_tags_and_lyrics(
    api: FakeSunoTaskApi, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    task_id = await submit(api, session, SIMPLE_BODY | {"model": "V4"})
    clock.advance(10)
    songs = (await record(api, session, task_id))["response"]["sunoData"]
    for song in songs:
        assert song["title"] == "A Happy Song About"
        assert song["tags"]
        assert "a happy song about cats" in song["prompt"]
        assert song["modelName"] == "chirp-v4"
    instrumental = await submit(api, session, SIMPLE_BODY | {"instrumental": True})
    clock.advance(10)
    assert {song["prompt"] for song in (await record(api, session, instrumental))["response"]["sunoData"]} == {""}


async def test_pending_response_can_be_an_empty_list(api: FakeSunoTaskApi, session: aiohttp.ClientSession) -> None:
    api.pending_response = "empty"
    task_id = await submit(api, session)
    assert (await record(api, session, task_id))["response"] == {"taskId": task_id, "sunoData": []}


async def test_audio_size_is_configurable(
    api: FakeSunoTaskApi, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    api.audio_size = 1000
    task_id = await submit(api, session)
    clock.advance(30)
    song_id = api.tasks[task_id].song_ids[0]
    status, audio, response = await download(session, f"{api.base_url}/files/{song_id}.mp3")
    assert (status, len(audio), response.headers["Content-Length"]) == (200, 1000, "1000")
    assert audio == api.audio_bytes(song_id)


async def test_ids_are_deterministic_for_a_seed(session: aiohttp.ClientSession) -> None:
    ids = []
    for _ in range(2):
        async with FakeSunoTaskApi(seed=7) as fake:
            task_id = await submit(fake, session)
            ids.append((task_id, fake.tasks[task_id].song_ids))
    assert ids[0] == ids[1]


async def test_real_clock_reaches_success(session: aiohttp.ClientSession) -> None:
    # The first poll must come before text_after: 20 ms was too tight for a busy machine (parallel workers).
    timings = TaskTimings(text_after=0.2, first_after=0.4, success_after=0.6)
    async with FakeSunoTaskApi(timings=timings) as fake:
        task_id = await submit(fake, session)
        seen: list[str] = []
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and (not seen or seen[-1] != "SUCCESS"):
            status = (await record(fake, session, task_id))["status"]
            if not seen or seen[-1] != status:
                seen.append(status)
            await asyncio.sleep(0.01)
    assert seen[0] == "PENDING"
    assert seen[-1] == "SUCCESS"
