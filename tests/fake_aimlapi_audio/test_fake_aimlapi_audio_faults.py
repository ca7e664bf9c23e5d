"""Fake aimlapi audio: injected gateway errors and hangs."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.fake_aimlapi_audio.support import ELEVEN, PATH, ManualClock, assert_gateway_error, poll, submit, submit_ok
from tests.fakes.aimlapi_audio import GATEWAY_MESSAGES, OUT_OF_CREDITS_MESSAGE, FakeAimlAudioApi


@pytest.mark.parametrize("status", [401, 403, 429, 500, 502, 503, 504])
async def test_injected_gateway_errors_on_submit(
    fake: FakeAimlAudioApi, session: aiohttp.ClientSession, status: int
) -> None:
    fake.fail_with_gateway_error("submit", status)
    code, body = await submit(fake, session, ELEVEN)
    assert code == status
    assert_gateway_error(body, status)
    assert body["message"] == GATEWAY_MESSAGES[status]
    assert fake.generations == {}
    await submit_ok(fake, session)  # only the next call failed
    assert fake.submit_calls() == 2


async def test_out_of_credits_message_and_times(fake: FakeAimlAudioApi, session: aiohttp.ClientSession) -> None:
    fake.fail_with_gateway_error("submit", 403, times=2)
    for _ in range(2):
        code, body = await submit(fake, session, ELEVEN)
        assert code == 403
        assert body["message"] == OUT_OF_CREDITS_MESSAGE
        assert body["message"].startswith("You've run out of credits")
    await submit_ok(fake, session)


async def test_injected_errors_on_poll_and_file(
    fake: FakeAimlAudioApi, session: aiohttp.ClientSession, monotonic: ManualClock
) -> None:
    generation_id = await submit_ok(fake, session)
    fake.fail_with_gateway_error("poll", 500, message="The model is under maintenance. Request {request_id}.")
    code, body = await poll(fake, session, generation_id)
    assert code == 500
    assert body["message"] == f"The model is under maintenance. Request {body['requestId']}."
    fake.fail_next("poll", status=502, body="<html>Bad Gateway</html>", content_type="text/html")
    async with session.get(f"{fake.base_url}{PATH}", params={"generation_id": generation_id}) as response:
        assert response.status == 502
        assert await response.text() == "<html>Bad Gateway</html>"
    monotonic.now += 10
    fake.fail_next("file", status=404, body={"Code": "NoSuchKey"})
    async with session.get(fake.file_url(generation_id)) as response:
        assert response.status == 404
        assert await response.json() == {"Code": "NoSuchKey"}
    async with session.get(fake.file_url(generation_id)) as response:
        assert response.status == 200
    assert [r.status for r in fake.requests if r.route == "poll"] == [500, 502]


async def test_fail_next_rejects_unknown_routes(fake: FakeAimlAudioApi) -> None:
    with pytest.raises(ValueError, match="unknown route"):
        fake.fail_next("generate", status=500, body="x")  # type: ignore[arg-type]


async def test_hang_lasts_until_the_client_times_out(fake: FakeAimlAudioApi, session: aiohttp.ClientSession) -> None:
    fake.hang_next("submit")
    with pytest.raises(asyncio.TimeoutError):
        async with session.post(f"{fake.base_url}{PATH}", json=ELEVEN, timeout=aiohttp.ClientTimeout(total=0.2)):
            pass
    assert fake.requests[-1].status is None
    assert fake.generations == {}
    await submit_ok(fake, session)


async def test_short_hang_then_answers_normally(fake: FakeAimlAudioApi, session: aiohttp.ClientSession) -> None:
    generation_id = await submit_ok(fake, session)
    fake.hang_next("poll", seconds=0.15)
    started = time.monotonic()
    assert (await poll(fake, session, generation_id))[0] == 200
    assert time.monotonic() - started >= 0.15


async def test_stop_releases_hung_requests() -> None:
    fake = FakeAimlAudioApi()
    await fake.start()
    fake.hang_next("file")
    async with aiohttp.ClientSession() as client:
        pending = asyncio.create_task(client.get(f"{fake.base_url}/files/x.mp3"))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await fake.stop()
        assert time.monotonic() - started < 1
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
