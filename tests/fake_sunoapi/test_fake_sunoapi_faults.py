"""Fake Suno task API: injected codes, raw HTTP failures, hangs, credits and the request log."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.fake_sunoapi.support import SIMPLE_BODY, ManualClock, call, download, generate, record, submit
from tests.fakes.sunoapi import (
    BAD_GATEWAY_HTML,
    ENVELOPE_MESSAGES,
    INSUFFICIENT_CREDITS_MESSAGE,
    FakeSunoTaskApi,
    TaskOutcome,
)


@pytest.mark.parametrize("code", [400, 401, 405, 413, 429, 430, 455, 500])
async def test_injected_envelope_codes_come_inside_http_200(
    api: FakeSunoTaskApi, session: aiohttp.ClientSession, code: int
) -> None:
    api.fail_next("generate", code=code)
    status, envelope = await generate(api, session)
    assert (status, envelope) == (200, {"code": code, "msg": ENVELOPE_MESSAGES[code], "data": None})
    assert api.tasks == {}
    assert api.requests[-1].code == code
    assert (await generate(api, session))[1]["code"] == 200


async def test_injected_codes_on_record_and_file_routes(
    api: FakeSunoTaskApi, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    task_id = await submit(api, session)
    api.fail_next("record", code=500, msg="Server error", times=2)
    for _ in range(2):
        assert (await call(session, "GET", f"{api.base_url}/api/v1/generate/record-info?taskId={task_id}"))[1] == {
            "code": 500,
            "msg": "Server error",
            "data": None,
        }
    assert (await record(api, session, task_id))["status"] == "PENDING"
    clock.advance(30)
    song_id = api.tasks[task_id].song_ids[0]
    api.fail_next("file", code=455)
    status, body, _ = await download(session, f"{api.base_url}/files/{song_id}.mp3")
    assert status == 200
    assert b'"code": 455' in body
    assert (await download(session, f"{api.base_url}/files/{song_id}.mp3"))[1] == api.audio_bytes(song_id)


async def test_injected_codes_mirror_or_use_an_explicit_http_status(
    api: FakeSunoTaskApi, session: aiohttp.ClientSession
) -> None:
    api.http_status_mirrors_code = True
    api.fail_next("generate", code=430)
    api.fail_next("generate", code=429, http_status=200)
    assert (await generate(api, session))[0] == 430
    status, envelope = await generate(api, session)
    assert (status, envelope["msg"]) == (200, INSUFFICIENT_CREDITS_MESSAGE)


async def test_raw_http_failures(api: FakeSunoTaskApi, session: aiohttp.ClientSession) -> None:
    api.fail_with_http("generate", 502, BAD_GATEWAY_HTML, "text/html")
    api.fail_with_http("generate", 500)
    async with session.post(f"{api.base_url}/api/v1/generate", json=SIMPLE_BODY) as response:
        assert response.status == 502
        assert response.content_type == "text/html"
        assert "502 Bad Gateway" in await response.text()
    async with session.post(f"{api.base_url}/api/v1/generate", json=SIMPLE_BODY) as response:
        assert (response.status, response.content_type, await response.text()) == (
            500,
            "text/plain",
            "Internal Server Error",
        )
    assert [request.code for request in api.requests] == [None, None]
    assert api.tasks == {}
    with pytest.raises(ValueError, match="unknown route"):
        api.fail_next("nope", code=500)  # type: ignore[arg-type]


async def test_hang_next_holds_the_request(api: FakeSunoTaskApi, session: aiohttp.ClientSession) -> None:
    api.hang_next("generate", seconds=0.3)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(generate(api, session), 0.1)
    assert api.tasks == {}
    started = time.monotonic()
    api.hang_next("record", seconds=0.2)
    status, envelope = await call(session, "GET", f"{api.base_url}/api/v1/generate/record-info?taskId=x")
    assert time.monotonic() - started >= 0.2
    assert (status, envelope["code"]) == (200, 400)


async def test_stop_cuts_a_hang_short(session: aiohttp.ClientSession) -> None:
    fake = FakeSunoTaskApi()
    await fake.start()
    fake.hang_next("credit")

    async def credit_status() -> int:
        async with session.get(f"{fake.base_url}/api/v1/generate/credit") as response:
            await response.read()
            return response.status

    request = asyncio.create_task(credit_status())
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await fake.stop()
    assert time.monotonic() - started < 1.5
    assert await request == 503


async def test_credit_endpoint_and_charging(api: FakeSunoTaskApi, session: aiohttp.ClientSession) -> None:
    url = f"{api.base_url}/api/v1/generate/credit"
    assert await call(session, "GET", url) == (200, {"code": 200, "msg": "success", "data": 1000})
    api.credits = 15
    await submit(api, session)
    assert (await call(session, "GET", url))[1]["data"] == 5
    status, envelope = await generate(api, session)
    assert (status, envelope["code"], envelope["msg"]) == (200, 429, INSUFFICIENT_CREDITS_MESSAGE)
    assert len(api.tasks) == 1


async def test_requests_are_recorded(api: FakeSunoTaskApi, session: aiohttp.ClientSession) -> None:
    task_id = await submit(api, session)
    await record(api, session, task_id)
    async with session.get(f"{api.base_url}/elsewhere") as response:
        assert response.status == 404
    generate_request, record_request, other = api.requests
    assert (generate_request.method, generate_request.path, generate_request.json) == (
        "POST",
        "/api/v1/generate",
        SIMPLE_BODY,
    )
    assert (generate_request.status, generate_request.code, generate_request.route) == (200, 200, "generate")
    assert record_request.query == {"taskId": task_id}
    assert (other.route, other.status, other.code) == (None, 404, None)
    assert (api.generate_calls(), api.record_calls()) == (1, 1)
    task = api.tasks[task_id]
    assert task.id == task_id
    assert task.outcome == TaskOutcome.success()
    assert task.created_at.endswith("Z")
