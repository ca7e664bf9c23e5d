"""Shared shapes and request helpers for the fake music API tests."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.fakes.music_api import FakeMusicApi

AUDIO_INFO_KEYS = {
    "id",
    "title",
    "image_url",
    "lyric",
    "audio_url",
    "video_url",
    "created_at",
    "model_name",
    "status",
    "gpt_description_prompt",
    "prompt",
    "type",
    "tags",
    "duration",
}


GATEWAY_KEYS = {"message", "path", "requestId", "statusCode", "timestamp"}


SIMPLE_BODY = {"prompt": "a happy song about cats", "make_instrumental": False, "wait_audio": False}


CUSTOM_BODY = {
    "prompt": "[Verse 1]\nCats on the roof\n\n[Chorus]\nMeow meow\n",
    "tags": "pop metal male melancholic",
    "title": "Roof Cats",
    "make_instrumental": False,
    "wait_audio": False,
}


async def generate(
    api: FakeMusicApi, session: aiohttp.ClientSession, **overrides: Any
) -> tuple[int, list[dict[str, Any]]]:
    async with session.post(f"{api.base_url}/generate", json=SIMPLE_BODY | overrides) as response:
        return response.status, await response.json()


async def fetch(api: FakeMusicApi, session: aiohttp.ClientSession, ids: list[str]) -> list[dict[str, Any]]:
    params = {f"ids[{index}]": clip_id for index, clip_id in enumerate(ids)}
    async with session.get(f"{api.base_url}/", params=params) as response:
        assert response.status == 200
        clips: list[dict[str, Any]] = await response.json()
        return clips


def assert_gateway_error(body: dict[str, Any], status: int, path: str) -> None:
    assert set(body) == GATEWAY_KEYS
    assert body["statusCode"] == status
    assert body["path"] == path
    assert body["timestamp"].endswith("Z")
