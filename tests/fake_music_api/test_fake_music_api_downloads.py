"""Fake music API: audio, image and audiopipe downloads."""

from __future__ import annotations

import aiohttp

from tests.fake_music_api.support import fetch, generate
from tests.fakes.music_api import TINY_PNG, ClipOutcome, ClipTimings, FakeMusicApi


async def test_audio_download_bytes_and_length(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    _, clips = await generate(api, session)
    clip_id = clips[0]["id"]
    async with session.get(f"{api.base_url}/audio/{clip_id}.mp3") as response:
        assert response.status == 403  # the final mp3 does not exist before complete
    api.timings = ClipTimings(0, 0, 0)
    [fetched] = await fetch(api, session, [clip_id])
    async with session.get(fetched["audio_url"]) as response:
        assert response.status == 200
        assert response.content_type == "audio/mpeg"
        assert response.content_length == api.audio_size == 64 * 1024
        data = await response.read()
    assert data == api.audio_bytes(clip_id)
    assert data.startswith(b"ID3")
    assert api.audio_bytes(clip_id) != api.audio_bytes(clips[1]["id"])


async def test_audio_without_content_length(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.timings = ClipTimings(0, 0, 0)
    api.send_content_length = False
    _, clips = await generate(api, session)
    clip_id = clips[1]["id"]
    api.clips[clip_id].audio_size = 300_000
    async with session.get(f"{api.base_url}/audio/{clip_id}.mp3") as response:
        assert "Content-Length" not in response.headers
        assert response.headers["Transfer-Encoding"] == "chunked"
        data = await response.read()
    assert len(data) == 300_000
    assert data == api.audio_bytes(clip_id)


async def test_error_audio_url_is_access_denied(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.next_outcome(ClipOutcome.error(), ClipOutcome.error())
    api.timings = ClipTimings(0, 0, 0)
    _, clips = await generate(api, session)
    [fetched] = await fetch(api, session, [clips[0]["id"]])
    assert fetched["error_message"] is None
    async with session.get(fetched["audio_url"]) as response:
        assert response.status == 403
        assert await response.text() == "access denied"


async def test_streaming_image_and_audiopipe(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.timings = ClipTimings(0, 0, 30)
    _, clips = await generate(api, session)
    [fetched] = await fetch(api, session, [clips[0]["id"]])
    async with session.get(fetched["image_url"]) as response:
        assert response.content_type == "image/png"
        assert await response.read() == TINY_PNG
    async with session.get(fetched["audio_url"]) as response:
        assert response.status == 200
        assert response.content_length is None
        assert await response.read() == api.audio_bytes(clips[0]["id"])
