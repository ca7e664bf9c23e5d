"""Fake music API: the self-hosted gcui-art /api/* routes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fake_music_api.support import AUDIO_INFO_KEYS, CUSTOM_BODY, generate
from tests.fakes.music_api import GCUI_DEFAULT_MODEL, ClipTimings, FakeMusicApi

GCUI_SIMPLE_BODY = {"prompt": "a happy song about cats", "make_instrumental": False, "wait_audio": False}


GCUI_CUSTOM_BODY = CUSTOM_BODY | {"negative_tags": "jazz, screaming"}


@pytest.fixture
async def anonymous() -> AsyncIterator[aiohttp.ClientSession]:
    """A client with no Authorization header: a self-hosted gcui-art server has no key."""
    async with aiohttp.ClientSession() as client:
        yield client


async def gcui_post(api: FakeMusicApi, client: aiohttp.ClientSession, path: str, body: object) -> tuple[int, Any]:
    async with client.post(f"{api.base_url}{path}", json=body) as response:
        return response.status, await response.json()


async def gcui_get(api: FakeMusicApi, client: aiohttp.ClientSession, query: str = "") -> Any:
    async with client.get(f"{api.base_url}/api/get{query}") as response:
        assert response.status == 200
        return await response.json()


async def gcui_limit(api: FakeMusicApi, client: aiohttp.ClientSession) -> dict[str, Any]:
    async with client.get(f"{api.base_url}/api/get_limit") as response:
        assert response.status == 200
        limit: dict[str, Any] = await response.json()
        return limit


async def test_gcui_generate_poll_get_and_download(api: FakeMusicApi, anonymous: aiohttp.ClientSession) -> None:
    api.timings = ClipTimings(queued_after=0.02, streaming_after=0.06, complete_after=0.12)
    status, created = await gcui_post(api, anonymous, "/api/generate", GCUI_SIMPLE_BODY)
    assert status == 200  # gcui-art answers 200, not aimlapi's 201
    assert len(created) == 2
    for clip in created:
        assert set(clip) == AUDIO_INFO_KEYS | {"negative_tags"}  # gcui HEAD's immediate result
        assert clip["status"] == "submitted"
        assert clip["audio_url"] == ""
        assert clip["gpt_description_prompt"] == GCUI_SIMPLE_BODY["prompt"]
    ids = [clip["id"] for clip in created]

    order: list[str] = []
    deadline = time.monotonic() + 2
    clips: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        clips = await gcui_get(api, anonymous, f"?ids={ids[0]},{ids[1]}")
        assert [clip["id"] for clip in clips] == ids
        if not order or order[-1] != clips[0]["status"]:
            order.append(clips[0]["status"])
        if all(clip["status"] == "complete" for clip in clips):
            break
        await asyncio.sleep(0.01)
    assert order[-1] == "complete"
    assert set(order) <= {"submitted", "queued", "streaming", "complete"}
    for clip in clips:
        assert set(clip) == AUDIO_INFO_KEYS | {"error_message"}
        assert clip["audio_url"] == f"{api.base_url}/audio/{clip['id']}.mp3"
        async with anonymous.get(clip["audio_url"]) as response:
            assert response.status == 200
            assert await response.read() == api.audio_bytes(clip["id"])
    assert api.gcui_get_batches()[0] == ids
    assert api.fetch_batches() == []
    assert api.generate_calls() == 1
    assert {api.clips[clip_id].model for clip_id in ids} == {GCUI_DEFAULT_MODEL}


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", "garbage"])
async def test_gcui_routes_need_no_key(api: FakeMusicApi, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with aiohttp.ClientSession(headers=headers) as client:
        status, created = await gcui_post(api, client, "/api/generate", GCUI_SIMPLE_BODY)
        assert status == 200
        assert len(await gcui_get(api, client, f"?ids={created[0]['id']}")) == 1
        assert (await gcui_limit(api, client))["credits_left"] == 490


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (None, GCUI_DEFAULT_MODEL),
        ("", GCUI_DEFAULT_MODEL),
        ("chirp-v3-0", "chirp-v3-0"),
        ("chirp-v4", "chirp-v4"),
        ("chirp-v3-5|chirp-v3-0", "chirp-v3-5|chirp-v3-0"),  # the swagger example, forwarded verbatim
    ],
)
async def test_gcui_model_default_and_pass_through(
    api: FakeMusicApi, anonymous: aiohttp.ClientSession, model: str | None, expected: str
) -> None:
    body = GCUI_SIMPLE_BODY if model is None else GCUI_SIMPLE_BODY | {"model": model}
    status, created = await gcui_post(api, anonymous, "/api/generate", body)
    assert status == 200
    assert {api.clips[clip["id"]].model for clip in created} == {expected}


async def test_gcui_flags_go_through_js_boolean(api: FakeMusicApi, anonymous: aiohttp.ClientSession) -> None:
    # "false" is a non-empty string, so Boolean() makes it true; 0 and a missing field are false.
    body = {"prompt": "rain on a tin roof", "make_instrumental": "false", "wait_audio": 0, "extra": 1}
    status, created = await gcui_post(api, anonymous, "/api/generate", body)
    assert status == 200
    assert [clip["status"] for clip in created] == ["submitted", "submitted"]
    assert api.clips[created[0]["id"]].make_instrumental is True
    status, created = await gcui_post(api, anonymous, "/api/generate", {"prompt": "x"})
    assert status == 200
    assert api.clips[created[0]["id"]].make_instrumental is False


async def test_gcui_custom_generate_waits_for_audio(api: FakeMusicApi, anonymous: aiohttp.ClientSession) -> None:
    api.timings = ClipTimings(queued_after=0.02, streaming_after=0.1, complete_after=30)
    started = time.monotonic()
    status, clips = await gcui_post(
        api, anonymous, "/api/custom_generate", GCUI_CUSTOM_BODY | {"wait_audio": True, "model": "chirp-v4"}
    )
    assert 0.1 <= time.monotonic() - started < api.wait_audio_timeout
    assert status == 200
    assert [clip["status"] for clip in clips] == ["streaming", "streaming"]
    assert all(clip["audio_url"].startswith(f"{api.base_url}/audiopipe/") for clip in clips)
    assert set(clips[0]) == AUDIO_INFO_KEYS | {"error_message"}  # a get() result
    assert clips[0]["title"] == "Roof Cats"
    assert clips[0]["tags"] == "pop metal male melancholic"
    stored = api.clips[clips[0]["id"]]
    assert (stored.mode, stored.model, stored.negative_tags) == ("custom", "chirp-v4", "jazz, screaming")
    assert api.gcui_get_batches() == []  # internal polling is not a client get


async def test_gcui_custom_generate_immediate_result_carries_negative_tags(
    api: FakeMusicApi, anonymous: aiohttp.ClientSession
) -> None:
    status, created = await gcui_post(api, anonymous, "/api/custom_generate", GCUI_CUSTOM_BODY)
    assert status == 200
    assert created[0]["negative_tags"] == "jazz, screaming"
    assert created[0]["lyric"] == CUSTOM_BODY["prompt"]
    _, simple = await gcui_post(api, anonymous, "/api/generate", GCUI_SIMPLE_BODY)
    assert simple[0]["negative_tags"] == ""


async def test_gcui_402_when_out_of_credits(anonymous: aiohttp.ClientSession) -> None:
    async with FakeMusicApi(credits_left=15) as api:
        status, _ = await gcui_post(api, anonymous, "/api/generate", GCUI_SIMPLE_BODY)
        assert status == 200
        assert len(api.clips) == 2
        for path, body in [("/api/generate", GCUI_SIMPLE_BODY), ("/api/custom_generate", GCUI_CUSTOM_BODY)]:
            status, error = await gcui_post(api, anonymous, path, body)
            assert (status, error) == (402, {"error": "Payment required"})
        assert len(api.clips) == 2
        assert (await gcui_limit(api, anonymous))["credits_left"] == 5
        assert api.generate_calls() == 3
        api.credits_left = 10
        status, _ = await gcui_post(api, anonymous, "/api/generate", GCUI_SIMPLE_BODY)
        assert status == 200


async def test_gcui_get_limit_counts_down(anonymous: aiohttp.ClientSession) -> None:
    async with FakeMusicApi(credits_left=100, monthly_limit=250) as api:
        assert await gcui_limit(api, anonymous) == {
            "credits_left": 100,
            "period": "day",
            "monthly_limit": 250,
            "monthly_usage": 0,
        }
        await gcui_post(api, anonymous, "/api/generate", GCUI_SIMPLE_BODY)
        await gcui_post(api, anonymous, "/api/custom_generate", GCUI_CUSTOM_BODY)
        limit = await gcui_limit(api, anonymous)
        assert (limit["credits_left"], limit["monthly_usage"]) == (80, 20)  # 5 credits per clip, 2 clips a call
        assert all(isinstance(limit[key], int) for key in ("credits_left", "monthly_limit", "monthly_usage"))


async def test_gcui_get_feed_and_id_forms(
    api: FakeMusicApi, session: aiohttp.ClientSession, anonymous: aiohttp.ClientSession
) -> None:
    assert await gcui_get(api, anonymous) == []
    _, first = await generate(api, session)  # the aimlapi route shares the clip store
    _, second = await gcui_post(api, anonymous, "/api/generate", GCUI_SIMPLE_BODY)
    every = [clip["id"] for clip in first + second]
    feed = await gcui_get(api, anonymous)
    assert [clip["id"] for clip in feed] == every[::-1]  # newest first
    assert [clip["id"] for clip in await gcui_get(api, anonymous, "?ids=")] == every[::-1]
    api.feed_page_size = 3
    assert [clip["id"] for clip in await gcui_get(api, anonymous, "?page=1")] == every[::-1][3:]
    query = f"?ids={every[3]},unknown,{every[0]},{every[3]}&page=7"
    assert [clip["id"] for clip in await gcui_get(api, anonymous, query)] == [every[3], every[0]]
    async with anonymous.get(f"{api.base_url}/api/get?page=x") as response:
        assert response.status == 500
        assert await response.json() == {"error": "Internal server error"}
    assert api.gcui_get_batches() == [[], [], [], [], [every[3], "unknown", every[0], every[3]], []]


async def test_gcui_bad_json_and_wrong_method(api: FakeMusicApi, anonymous: aiohttp.ClientSession) -> None:
    for data in ["{not json", "", "null"]:
        async with anonymous.post(f"{api.base_url}/api/generate", data=data) as response:
            assert response.status == 500
            assert (await response.json())["error"].startswith("Internal error: ")
    async with anonymous.get(f"{api.base_url}/api/generate") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
    assert api.clips == {}
    assert api.credits_left == 500


async def test_gcui_injected_failures(api: FakeMusicApi, anonymous: aiohttp.ClientSession) -> None:
    api.fail_with_gcui_upstream("gcui_generate")
    api.fail_with_gcui_upstream("gcui_custom", 422, detail="Token validation failed.")
    api.fail_with_gcui_upstream("gcui_custom", 402)
    api.fail_with_gcui_upstream("gcui_get", 401)
    api.fail_with_gcui_upstream("gcui_limit")
    status, error = await gcui_post(api, anonymous, "/api/generate", GCUI_SIMPLE_BODY)
    assert (status, error) == (503, {"error": "Network error: timeout of 10000ms exceeded"})
    status, error = await gcui_post(api, anonymous, "/api/custom_generate", GCUI_CUSTOM_BODY)
    assert (status, error) == (422, {"error": "Token validation failed."})
    status, error = await gcui_post(api, anonymous, "/api/custom_generate", GCUI_CUSTOM_BODY)
    assert (status, error) == (402, {"error": "Payment required"})
    for path in ("/api/get?ids=a,b", "/api/get_limit"):
        async with anonymous.get(f"{api.base_url}{path}") as response:
            assert response.status == 500
            assert await response.json() == {"error": "Internal server error"}
    assert api.clips == {}
    assert api.credits_left == 500
    assert api.generate_calls() == 3
    assert api.gcui_get_batches() == [["a", "b"]]
    with pytest.raises(ValueError, match="not a gcui route"):
        api.fail_with_gcui_upstream("generate")

    api.fail_next("gcui_generate", status=500, body="Internal Server Error", content_type="text/plain")
    api.fail_with_gcui_error("gcui_custom", 500, error="Internal error: boom")
    api.fail_with_malformed_json("gcui_get")
    async with anonymous.post(f"{api.base_url}/api/generate", json=GCUI_SIMPLE_BODY) as response:
        assert (response.status, await response.text()) == (500, "Internal Server Error")
    status, error = await gcui_post(api, anonymous, "/api/custom_generate", GCUI_CUSTOM_BODY)
    assert (status, error) == (500, {"error": "Internal error: boom"})
    async with anonymous.get(f"{api.base_url}/api/get?ids=a") as response:
        assert response.status == 200
        with pytest.raises(json.JSONDecodeError):
            await response.json()
    status, _ = await gcui_post(api, anonymous, "/api/generate", GCUI_SIMPLE_BODY)  # back to normal
    assert status == 200


async def test_gcui_hang_then_answer_and_stop_releases(anonymous: aiohttp.ClientSession) -> None:
    api = FakeMusicApi()
    await api.start()
    try:
        api.hang_next("gcui_limit", seconds=0.1)
        started = time.monotonic()
        assert (await gcui_limit(api, anonymous))["credits_left"] == 500
        assert time.monotonic() - started >= 0.1
        api.hang_next("gcui_generate")
        with pytest.raises(asyncio.TimeoutError):
            async with anonymous.post(
                f"{api.base_url}/api/generate", json=GCUI_SIMPLE_BODY, timeout=aiohttp.ClientTimeout(total=0.1)
            ):
                pass
        assert api.clips == {}
        api.hang_next("gcui_custom")
        pending = asyncio.create_task(gcui_post(api, anonymous, "/api/custom_generate", GCUI_CUSTOM_BODY))
        await asyncio.sleep(0.05)
    finally:
        await api.stop()
    status, error = await pending
    assert (status, error) == (503, {"error": "Network error: timeout of 10000ms exceeded"})
