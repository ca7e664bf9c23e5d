"""Shared bodies, clock and request helpers for the fake aimlapi audio tests."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.fakes.aimlapi_audio import FakeAimlAudioApi

PATH = "/v2/generate/audio"


GATEWAY_KEYS = {"message", "path", "requestId", "statusCode", "timestamp"}


USAGE = {"credits_used": 390000, "usd_spent": 0.195}


GOOD_BODIES: dict[str, dict[str, Any]] = {
    "minimax/music-2.6": {
        "model": "minimax/music-2.6",
        "prompt": "Lo-fi pop, slow intro then loud bass",
        "lyrics": "[Verse]\nStreetlights flicker\n[Chorus]\nIn this small cafe",
        "is_instrumental": False,
        "lyrics_optimizer": True,
        "audio_setting": {"audio_sample_rate": 44100, "bitrate": 256000, "format": "mp3"},
    },
    "elevenlabs/eleven_music": {
        "model": "elevenlabs/eleven_music",
        "prompt": "solo piano in C minor, 90 BPM",
        "music_length_ms": 20000,
    },
    "google/lyria2": {"model": "google/lyria2", "prompt": "calm ambient pads", "negative_prompt": "drums", "seed": 7},
    "stable-audio": {
        "model": "stable-audio",
        "prompt": "techno loop",
        "seconds_total": 47,
        "seconds_start": 1,
        "steps": 100,
    },
}


ELEVEN = GOOD_BODIES["elevenlabs/eleven_music"]


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def submit(fake: FakeAimlAudioApi, session: aiohttp.ClientSession, body: object) -> tuple[int, Any]:
    async with session.post(f"{fake.base_url}{PATH}", json=body) as response:
        return response.status, await response.json()


async def poll(fake: FakeAimlAudioApi, session: aiohttp.ClientSession, generation_id: str) -> tuple[int, Any]:
    async with session.get(f"{fake.base_url}{PATH}", params={"generation_id": generation_id}) as response:
        return response.status, await response.json()


async def submit_ok(fake: FakeAimlAudioApi, session: aiohttp.ClientSession, body: object = ELEVEN) -> str:
    status, answer = await submit(fake, session, body)
    assert status == 201, answer
    generation_id: str = answer["id"]
    return generation_id


def assert_gateway_error(body: dict[str, Any], status: int, path: str = PATH) -> None:
    assert set(body) == GATEWAY_KEYS
    assert body["statusCode"] == status
    assert body["path"] == path
    assert body["timestamp"].endswith("Z")


MINIMAX = GOOD_BODIES["minimax/music-2.6"]
