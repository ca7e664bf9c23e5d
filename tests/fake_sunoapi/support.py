"""Shared shapes, clock and request helpers for the fake Suno task API tests."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.fakes.sunoapi import FakeSunoTaskApi

SIMPLE_BODY: dict[str, Any] = {
    "customMode": False,
    "instrumental": False,
    "model": "V4_5",
    "prompt": "a happy song about cats",
    "callBackUrl": "https://example.invalid/callback",
}


CUSTOM_BODY: dict[str, Any] = {
    "customMode": True,
    "instrumental": False,
    "model": "V5",
    "prompt": "[Verse]\nCats on the roof\n\n[Chorus]\nMeow meow",
    "style": "pop metal, male vocals",
    "title": "Roof Cats",
    "negativeTags": "jazz",
    "vocalGender": "m",
    "callBackUrl": "https://example.invalid/callback",
}


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def call(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    async with session.request(method, url, **kwargs) as response:
        body: dict[str, Any] = await response.json()
        return response.status, body


async def generate(
    api: FakeSunoTaskApi, session: aiohttp.ClientSession, body: Any = None
) -> tuple[int, dict[str, Any]]:
    return await call(session, "POST", f"{api.base_url}/api/v1/generate", json=SIMPLE_BODY if body is None else body)


async def submit(api: FakeSunoTaskApi, session: aiohttp.ClientSession, body: Any = None) -> str:
    status, envelope = await generate(api, session, body)
    assert (status, envelope["code"], envelope["msg"]) == (200, 200, "success")
    task_id: str = envelope["data"]["taskId"]
    return task_id


async def record(api: FakeSunoTaskApi, session: aiohttp.ClientSession, task_id: str) -> dict[str, Any]:
    status, envelope = await call(
        session, "GET", f"{api.base_url}/api/v1/generate/record-info", params={"taskId": task_id}
    )
    assert (status, envelope["code"], envelope["msg"]) == (200, 200, "success")
    data: dict[str, Any] = envelope["data"]
    return data


async def download(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes, aiohttp.ClientResponse]:
    async with session.get(url) as response:
        return response.status, await response.read(), response
