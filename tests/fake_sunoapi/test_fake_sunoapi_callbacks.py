"""The fake pushes each stage to a loopback callBackUrl once, snake_case, and never calls another host."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.sunoapi import FakeSunoTaskApi, TaskTimings
from tests.test_health import free_port


async def test_stages_are_pushed_once_each_to_a_loopback_receiver_only() -> None:
    received: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    timings = TaskTimings(text_after=0.05, first_after=0.1, success_after=0.2)
    body = {"customMode": False, "instrumental": False, "model": "V4_5", "prompt": "a song"}
    try:
        async with FakeSunoTaskApi(timings=timings) as fake:
            headers = {"Authorization": f"Bearer {fake.api_key}"}
            async with aiohttp.ClientSession(headers=headers) as session:
                for url in (f"http://127.0.0.1:{port}/hook", "https://musicbot-callback.invalid/suno"):
                    async with session.post(f"{fake.base_url}/api/v1/generate", json=body | {"callBackUrl": url}):
                        pass
            for _ in range(200):  # both tasks complete within 0.2 s; 10 s at most
                if sum(attempt.stage == "complete" for attempt in fake.callbacks.attempts) == 2:
                    break
                await asyncio.sleep(0.05)
            attempts = list(fake.callbacks.attempts)
    finally:
        await runner.cleanup()
    assert [push["data"]["callbackType"] for push in received] == ["text", "first", "complete"]
    complete = received[-1]["data"]
    assert len(complete["data"]) == 2
    assert {"audio_url", "stream_audio_url", "image_url", "model_name"} <= set(complete["data"][0])
    assert "audioUrl" not in complete["data"][0]
    elsewhere = [attempt for attempt in attempts if "invalid" in attempt.url]
    assert [attempt.status for attempt in elsewhere] == [None, None, None]  # recorded, never called
