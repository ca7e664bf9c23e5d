"""Fake music API: injected gateway errors, malformed bodies and hangs."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from tests.fake_music_api.support import CUSTOM_BODY, SIMPLE_BODY, assert_gateway_error, fetch, generate
from tests.fakes.music_api import GATEWAY_MESSAGES, OUT_OF_CREDITS_MESSAGE, ClipTimings, FakeMusicApi


@pytest.mark.parametrize("status", sorted(GATEWAY_MESSAGES))
async def test_injected_gateway_errors(api: FakeMusicApi, session: aiohttp.ClientSession, status: int) -> None:
    api.fail_with_gateway_error("generate", status)
    async with session.post(f"{api.base_url}/generate", json=SIMPLE_BODY) as response:
        assert response.status == status
        body = await response.json()
    assert_gateway_error(body, status, "/generate")
    assert body["message"] == GATEWAY_MESSAGES[status]
    assert api.clips == {}
    status_after, _ = await generate(api, session)  # only the next call fails
    assert status_after == 201
    assert [request.status for request in api.requests] == [status, 201]


async def test_injected_out_of_credits_on_custom_mode(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.fail_with_gateway_error("custom", 403, times=2)
    for _ in range(2):
        async with session.post(f"{api.base_url}/generate/custom-mode", json=CUSTOM_BODY) as response:
            assert response.status == 403
            assert (await response.json())["message"] == OUT_OF_CREDITS_MESSAGE
    async with session.post(f"{api.base_url}/generate/custom-mode", json=CUSTOM_BODY) as response:
        assert response.status == 201


async def test_injected_maintenance_message_carries_the_request_id(
    api: FakeMusicApi, session: aiohttp.ClientSession
) -> None:
    from tests.fakes.music_api import MAINTENANCE_MESSAGE

    api.fail_with_gateway_error("fetch", 500, message=MAINTENANCE_MESSAGE)
    async with session.get(f"{api.base_url}/", params={"ids[0]": "x"}) as response:
        body = await response.json()
    assert body["message"].endswith(f"Your Request ID is {body['requestId']}.")


async def test_injected_plain_text_500(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.fail_with_plain_text_500("generate")
    async with session.post(f"{api.base_url}/generate", json=SIMPLE_BODY) as response:
        assert response.status == 500
        assert response.content_type == "text/plain"
        assert await response.text() == "Internal Server Error"


async def test_injected_gcui_402(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.fail_with_gcui_error("generate")
    async with session.post(f"{api.base_url}/generate", json=SIMPLE_BODY) as response:
        assert response.status == 402
        assert await response.json() == {"error": "Payment required"}


async def test_injected_malformed_json_success(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.fail_with_malformed_json("fetch")
    async with session.get(f"{api.base_url}/", params={"ids[0]": "x"}) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        with pytest.raises(json.JSONDecodeError):
            await response.json()


async def test_fail_next_with_custom_body_on_audio(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.timings = ClipTimings(0, 0, 0)
    _, clips = await generate(api, session)
    [fetched] = await fetch(api, session, [clips[0]["id"]])
    api.fail_next("audio", status=429, body={"anything": "goes"})
    async with session.get(fetched["audio_url"]) as response:
        assert response.status == 429
        assert await response.json() == {"anything": "goes"}
    async with session.get(fetched["audio_url"]) as response:
        assert response.status == 200
    with pytest.raises(ValueError, match="unknown route"):
        api.fail_next("nope", status=500, body="x")  # type: ignore[arg-type]


async def test_hang_lasts_until_the_client_times_out(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.hang_next("generate")
    with pytest.raises(asyncio.TimeoutError):
        async with session.post(f"{api.base_url}/generate", json=SIMPLE_BODY, timeout=aiohttp.ClientTimeout(total=0.2)):
            pass
    assert api.requests[-1].status is None
    status, _ = await generate(api, session)
    assert status == 201


async def test_short_hang_then_answers_normally(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.hang_next("fetch", seconds=0.15)
    started = time.monotonic()
    assert await fetch(api, session, ["unknown"]) == []
    assert time.monotonic() - started >= 0.15


async def test_stop_releases_hung_requests() -> None:
    api = FakeMusicApi()
    await api.start()
    api.hang_next("generate")
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer test-key"}) as client:
        pending = asyncio.create_task(client.post(f"{api.base_url}/generate", json=SIMPLE_BODY))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await api.stop()
        assert time.monotonic() - started < 1
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
