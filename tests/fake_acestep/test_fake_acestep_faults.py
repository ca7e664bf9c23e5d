"""Fake ACE-Step server: FastAPI's `detail` errors, the full queue, the optional key, its strictness."""

from __future__ import annotations

import aiohttp
import pytest

from tests.fake_acestep.support import CUSTOM_BODY, call, query, release, submit
from tests.fakes.acestep import QUEUE_FULL_DETAIL, FakeAceStepApi


async def test_a_full_queue_answers_429_and_creates_nothing(
    ace: FakeAceStepApi, session: aiohttp.ClientSession
) -> None:
    ace.queue_maxsize = 2
    ace.paused = True
    await submit(ace, session)
    await submit(ace, session)
    status, answer = await release(ace, session)
    assert (status, answer) == (429, {"detail": QUEUE_FULL_DETAIL})
    assert len(ace.tasks) == 2


async def test_the_key_is_optional_and_checked_where_the_server_checks_it(session: aiohttp.ClientSession) -> None:
    async with FakeAceStepApi(api_key="k") as ace:
        assert await release(ace, session) == (401, {"detail": "Missing ai_token or Authorization header"})
        assert await release(ace, session, headers={"Authorization": "Bearer nope"}) == (
            401,
            {"detail": "Invalid API key"},
        )
        assert (await release(ace, session, {**CUSTOM_BODY, "ai_token": "nope"}))[1] == {"detail": "Invalid ai_token"}
        assert (await release(ace, session, {**CUSTOM_BODY, "ai_token": "k"}))[0] == 200
        task_id = await submit(ace, session, headers={"Authorization": "Bearer k"})
        assert (await query(ace, session, task_id, headers={"Authorization": "k"}))[0]["task_id"] == task_id
        for path in ("/v1/models", "/v1/stats", "/v1/audio?path=x"):
            assert await call(session, "GET", ace.base_url + path) == (401, {"detail": "Missing Authorization header"})
        assert (await call(session, "GET", f"{ace.base_url}/health"))[0] == 200  # never behind the key
    async with FakeAceStepApi() as keyless:
        assert (await release(keyless, session))[0] == 200


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"sampleQuery": "typo"}, "unknown field(s): sampleQuery"),
        ({"prompt": "x", "batch_size": "2"}, "batch_size: wrong type str"),
        ({"prompt": "x", "thinking": 1}, "thinking: wrong type int"),
        ({"prompt": "x", "audio_duration": 5}, "between 10 and 600"),
        ({"prompt": "x", "batch_size": 9}, "between 1 and 8"),
        ({"prompt": "x", "audio_format": "ogg"}, "mp3, wav, flac"),
    ],
)
async def test_bodies_are_checked_strictly(
    ace: FakeAceStepApi, session: aiohttp.ClientSession, body: dict[str, object], words: str
) -> None:
    status, answer = await release(ace, session, body)
    assert status == 400
    assert words in answer["detail"]
    assert not ace.tasks


async def test_what_is_not_a_json_object_is_refused(ace: FakeAceStepApi, session: aiohttp.ClientSession) -> None:
    assert await release(ace, session, [1, 2]) == (400, {"detail": "JSON payload must be an object"})
    status, answer = await call(session, "POST", f"{ace.base_url}/release_task", data=b"hello")
    assert status == 415
    assert answer["detail"].startswith("Unsupported Content-Type")


async def test_injected_failures_and_unknown_routes(ace: FakeAceStepApi, session: aiohttp.ClientSession) -> None:
    ace.fail_next("query", 503)
    ace.fail_next("release", 500)
    status, answer = await call(session, "POST", f"{ace.base_url}/query_result", json={"task_id_list": []})
    assert status == 503
    assert "LLM not initialized" in answer["detail"]
    async with session.post(f"{ace.base_url}/release_task", json={}) as response:
        assert (response.status, await response.text()) == (500, "Internal Server Error")
    assert await call(session, "GET", f"{ace.base_url}/v1/nothing") == (404, {"detail": "Not Found"})
