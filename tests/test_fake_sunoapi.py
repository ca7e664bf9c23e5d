"""Tests of the fake Suno task API (sunoapi.org / kie.ai) itself, driven with a plain aiohttp client."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.music_api import TINY_PNG
from tests.fakes.sunoapi import (
    BAD_GATEWAY_HTML,
    ENVELOPE_MESSAGES,
    INSUFFICIENT_CREDITS_MESSAGE,
    MODELS,
    SENSITIVE_WORDS_MESSAGE,
    FakeSunoTaskApi,
    TaskOutcome,
    TaskTimings,
)

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
SONG_KEYS = {
    "id",
    "audioUrl",
    "streamAudioUrl",
    "imageUrl",
    "prompt",
    "modelName",
    "title",
    "tags",
    "createTime",
    "duration",
}


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def api(clock: ManualClock) -> AsyncIterator[FakeSunoTaskApi]:
    async with FakeSunoTaskApi(
        clock=clock, timings=TaskTimings(text_after=10, first_after=20, success_after=30)
    ) as fake:
        yield fake


@pytest.fixture
async def session(api: FakeSunoTaskApi) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {api.api_key}"}) as client:
        yield client


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


# ------------------------------------------------------------------------- auth


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", "test-key", "Basic test-key"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/generate"),
        ("GET", "/api/v1/generate/record-info?taskId=x"),
        ("GET", "/api/v1/generate/credit"),
    ],
)
async def test_missing_or_wrong_key_is_code_401_inside_http_200(
    api: FakeSunoTaskApi, authorization: str | None, method: str, path: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with aiohttp.ClientSession(headers=headers) as client:
        status, envelope = await call(client, method, api.base_url + path, json=SIMPLE_BODY)
    assert status == 200
    assert envelope == {"code": 401, "msg": "Unauthorized", "data": None}
    assert api.tasks == {}
    assert api.requests[-1].code == 401
    assert api.requests[-1].status == 200


async def test_http_status_can_mirror_the_code(api: FakeSunoTaskApi) -> None:
    api.http_status_mirrors_code = True
    async with aiohttp.ClientSession() as client:
        status, envelope = await call(client, "POST", f"{api.base_url}/api/v1/generate", json=SIMPLE_BODY)
    assert (status, envelope["code"]) == (401, 401)


# ------------------------------------------------------------------------- validation


def without(body: dict[str, Any], *names: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in names}


@pytest.mark.parametrize(
    ("body", "code", "msg"),
    [
        (["not", "an", "object"], 400, "JSON object"),
        (without(SIMPLE_BODY, "customMode"), 400, "customMode is required"),
        (SIMPLE_BODY | {"instrumental": "false"}, 400, "instrumental must be a boolean"),
        (without(SIMPLE_BODY, "model"), 400, "model is required"),
        (SIMPLE_BODY | {"model": "V3_5"}, 400, "model must be one of"),
        (SIMPLE_BODY | {"model": "chirp-v4"}, 400, "model must be one of"),
        (without(SIMPLE_BODY, "prompt"), 400, "prompt is required"),
        (SIMPLE_BODY | {"prompt": ""}, 400, "prompt is required"),
        (SIMPLE_BODY | {"prompt": 42}, 400, "prompt must be a string"),
        (SIMPLE_BODY | {"vocalGender": "x"}, 400, "vocalGender"),
        (SIMPLE_BODY | {"prompt": "x" * 501}, 413, "prompt too long"),
        (without(CUSTOM_BODY, "style"), 400, "style is required"),
        (without(CUSTOM_BODY, "title"), 400, "title is required"),
        (without(CUSTOM_BODY, "prompt"), 400, "prompt is required"),
        (CUSTOM_BODY | {"title": "t" * 81}, 413, "title too long"),
        (CUSTOM_BODY | {"model": "V4", "style": "s" * 201}, 413, "style too long"),
        (CUSTOM_BODY | {"model": "V4", "prompt": "p" * 3001}, 413, "prompt too long"),
        (CUSTOM_BODY | {"style": "s" * 1001}, 413, "style too long"),
        (CUSTOM_BODY | {"model": "V4_5PLUS", "prompt": "p" * 5001}, 413, "prompt too long"),
    ],
)
async def test_invalid_generate_bodies_get_an_error_code(
    api: FakeSunoTaskApi, session: aiohttp.ClientSession, body: Any, code: int, msg: str
) -> None:
    status, envelope = await generate(api, session, body)
    assert status == 200
    assert envelope["code"] == code
    assert msg in envelope["msg"]
    assert envelope["data"] is None
    assert api.tasks == {}
    assert api.generate_calls() == 1


async def test_non_json_body_is_code_400(api: FakeSunoTaskApi, session: aiohttp.ClientSession) -> None:
    status, envelope = await call(session, "POST", f"{api.base_url}/api/v1/generate", data="{oops")
    assert (status, envelope["code"]) == (200, 400)


@pytest.mark.parametrize(
    "body",
    [
        SIMPLE_BODY | {"prompt": "x" * 500, "style": "ignored in non-custom mode"},
        SIMPLE_BODY | {"instrumental": True},
        without(CUSTOM_BODY, "prompt") | {"instrumental": True},
        CUSTOM_BODY | {"title": "t" * 80, "style": "s" * 1000, "prompt": "p" * 5000},
        CUSTOM_BODY | {"model": "V4", "style": "s" * 200, "prompt": "p" * 3000, "vocalGender": "f"},
        CUSTOM_BODY | {"styleWeight": 0.5, "personaId": "unknown fields are ignored"},
        *[SIMPLE_BODY | {"model": model} for model in MODELS],
    ],
)
async def test_valid_bodies_are_accepted(api: FakeSunoTaskApi, session: aiohttp.ClientSession, body: Any) -> None:
    task_id = await submit(api, session, body)
    assert re.fullmatch(r"[0-9a-f]{32}", task_id)
    assert api.tasks[task_id].body == body


async def test_callback_url_is_required_as_on_kie_ai(api: FakeSunoTaskApi, session: aiohttp.ClientSession) -> None:
    _, envelope = await generate(api, session, without(SIMPLE_BODY, "callBackUrl"))
    assert (envelope["code"], envelope["msg"]) == (422, "Please enter callBackUrl")
    await submit(api, session)
    api.require_callback_url = False  # sunoapi.org's older behaviour
    await submit(api, session, without(SIMPLE_BODY, "callBackUrl"))


# ------------------------------------------------------------------------- lifecycle


async def test_lifecycle_through_every_status_with_downloads(
    api: FakeSunoTaskApi, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    task_id = await submit(api, session, CUSTOM_BODY)
    task = api.tasks[task_id]
    song_ids = task.song_ids
    assert len(song_ids) == 2
    assert len(set(song_ids)) == 2

    data = await record(api, session, task_id)
    assert data["taskId"] == task_id
    assert data["status"] == "PENDING" == api.status_of(task_id)
    assert data["response"] is None
    assert data["errorCode"] is None
    assert data["errorMessage"] is None
    for song_id in song_ids:
        for path in (f"/files/{song_id}.mp3", f"/stream/{song_id}", f"/images/{song_id}.png"):
            assert (await download(session, api.base_url + path))[0] == 404

    clock.advance(10)
    data = await record(api, session, task_id)
    assert data["status"] == "TEXT_SUCCESS"
    songs = data["response"]["sunoData"]
    assert data["response"]["taskId"] == task_id
    assert [song["id"] for song in songs] == song_ids
    for song in songs:
        assert set(song) == SONG_KEYS
        assert song["title"] == "Roof Cats"
        assert song["tags"] == CUSTOM_BODY["style"]
        assert song["prompt"] == CUSTOM_BODY["prompt"]
        assert song["modelName"] == "chirp-crow"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", song["createTime"])
        assert song["audioUrl"] == ""
        assert song["duration"] is None
        assert song["streamAudioUrl"] == f"{api.base_url}/stream/{song['id']}"
        assert song["imageUrl"] == f"{api.base_url}/images/{song['id']}.png"
        status, image, _ = await download(session, song["imageUrl"])
        assert (status, image) == (200, TINY_PNG)
        status, streamed, response = await download(session, song["streamAudioUrl"])
        assert (status, streamed) == (200, api.audio_bytes(song["id"]))
        assert response.headers.get("Transfer-Encoding") == "chunked"

    clock.advance(10)
    data = await record(api, session, task_id)
    assert data["status"] == "FIRST_SUCCESS"
    first, second = data["response"]["sunoData"]
    assert first["audioUrl"] == f"{api.base_url}/files/{first['id']}.mp3"
    assert first["duration"] == task.songs[0].duration
    assert 60 <= first["duration"] <= 240
    assert (second["audioUrl"], second["duration"]) == ("", None)
    assert (await download(session, f"{api.base_url}/files/{second['id']}.mp3"))[0] == 404

    clock.advance(10)
    data = await record(api, session, task_id)
    assert data["status"] == "SUCCESS"
    for song in data["response"]["sunoData"]:
        assert isinstance(song["duration"], float)
        status, audio, response = await download(session, song["audioUrl"])
        assert status == 200
        assert audio == api.audio_bytes(song["id"])
        assert len(audio) == api.audio_size
        assert audio.startswith(b"ID3")
        assert response.headers["Content-Type"] == "audio/mpeg"
        assert response.headers["Content-Length"] == str(api.audio_size)
    assert api.record_calls() == 4
    assert api.generate_calls() == 1


async def test_non_custom_mode_writes_title_tags_and_lyrics(
    api: FakeSunoTaskApi, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    task_id = await submit(api, session, SIMPLE_BODY | {"model": "V4"})
    clock.advance(10)
    songs = (await record(api, session, task_id))["response"]["sunoData"]
    for song in songs:
        assert song["title"] == "A Happy Song About"
        assert song["tags"]
        assert "a happy song about cats" in song["prompt"]
        assert song["modelName"] == "chirp-v4"
    instrumental = await submit(api, session, SIMPLE_BODY | {"instrumental": True})
    clock.advance(10)
    assert {song["prompt"] for song in (await record(api, session, instrumental))["response"]["sunoData"]} == {""}


async def test_pending_response_can_be_an_empty_list(api: FakeSunoTaskApi, session: aiohttp.ClientSession) -> None:
    api.pending_response = "empty"
    task_id = await submit(api, session)
    assert (await record(api, session, task_id))["response"] == {"taskId": task_id, "sunoData": []}


async def test_audio_size_is_configurable(
    api: FakeSunoTaskApi, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    api.audio_size = 1000
    task_id = await submit(api, session)
    clock.advance(30)
    song_id = api.tasks[task_id].song_ids[0]
    status, audio, response = await download(session, f"{api.base_url}/files/{song_id}.mp3")
    assert (status, len(audio), response.headers["Content-Length"]) == (200, 1000, "1000")
    assert audio == api.audio_bytes(song_id)


async def test_ids_are_deterministic_for_a_seed(session: aiohttp.ClientSession) -> None:
    ids = []
    for _ in range(2):
        async with FakeSunoTaskApi(seed=7) as fake:
            task_id = await submit(fake, session)
            ids.append((task_id, fake.tasks[task_id].song_ids))
    assert ids[0] == ids[1]


async def test_real_clock_reaches_success(session: aiohttp.ClientSession) -> None:
    # The first poll must come before text_after: 20 ms was too tight for a busy machine (parallel workers).
    timings = TaskTimings(text_after=0.2, first_after=0.4, success_after=0.6)
    async with FakeSunoTaskApi(timings=timings) as fake:
        task_id = await submit(fake, session)
        seen: list[str] = []
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and (not seen or seen[-1] != "SUCCESS"):
            status = (await record(fake, session, task_id))["status"]
            if not seen or seen[-1] != status:
                seen.append(status)
            await asyncio.sleep(0.01)
    assert seen[0] == "PENDING"
    assert seen[-1] == "SUCCESS"


# ------------------------------------------------------------------------- failure outcomes


async def test_create_task_failed(api: FakeSunoTaskApi, session: aiohttp.ClientSession) -> None:
    api.next_outcome(TaskOutcome.create_task_failed())
    task_id = await submit(api, session)
    data = await record(api, session, task_id)
    assert data["status"] == "CREATE_TASK_FAILED"
    assert data["response"] is None
    assert isinstance(data["errorCode"], int)
    assert data["errorMessage"]


async def test_sensitive_word_error(api: FakeSunoTaskApi, session: aiohttp.ClientSession) -> None:
    api.next_outcome(TaskOutcome.sensitive_word())
    task_id = await submit(api, session)
    data = await record(api, session, task_id)
    assert data["status"] == "SENSITIVE_WORD_ERROR"
    assert (data["errorCode"], data["errorMessage"]) == (400, SENSITIVE_WORDS_MESSAGE)
    assert data["response"] is None


async def test_generate_audio_failed_after_text(
    api: FakeSunoTaskApi, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    api.next_outcome(TaskOutcome.generate_audio_failed("boom", error_code=531))
    task_id = await submit(api, session)
    clock.advance(10)
    assert (await record(api, session, task_id))["status"] == "TEXT_SUCCESS"
    clock.advance(10)
    data = await record(api, session, task_id)
    assert data["status"] == "GENERATE_AUDIO_FAILED"
    assert (data["errorCode"], data["errorMessage"]) == (531, "boom")
    songs = data["response"]["sunoData"]
    assert len(songs) == 2
    assert {(song["audioUrl"], song["streamAudioUrl"]) for song in songs} == {("", "")}
    assert (await download(session, f"{api.base_url}/stream/{songs[0]['id']}"))[0] == 404
    clock.advance(100)
    assert api.status_of(task_id) == "GENERATE_AUDIO_FAILED"


async def test_callback_exception_keeps_the_songs(
    api: FakeSunoTaskApi, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    api.next_outcome(TaskOutcome.callback_exception())
    task_id = await submit(api, session)
    clock.advance(30)
    data = await record(api, session, task_id)
    assert data["status"] == "CALLBACK_EXCEPTION"
    assert all(song["audioUrl"] for song in data["response"]["sunoData"])


@pytest.mark.parametrize("at", ["PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS"])
async def test_stuck_tasks_never_progress(
    api: FakeSunoTaskApi, session: aiohttp.ClientSession, clock: ManualClock, at: Any
) -> None:
    api.next_outcome(TaskOutcome.stuck(at))
    task_id = await submit(api, session)
    clock.advance(10_000)
    assert (await record(api, session, task_id))["status"] == at


async def test_outcomes_apply_per_task_in_order(
    api: FakeSunoTaskApi, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    api.next_outcome(TaskOutcome.sensitive_word(), TaskOutcome.failed("CREATE_TASK_FAILED", after=5))
    first, second, third = [await submit(api, session) for _ in range(3)]
    assert api.status_of(first) == "SENSITIVE_WORD_ERROR"
    assert api.status_of(second) == "PENDING"
    clock.advance(5)
    assert api.status_of(second) == "CREATE_TASK_FAILED"
    clock.advance(30)
    assert api.status_of(third) == "SUCCESS"


async def test_unknown_or_missing_task_id(api: FakeSunoTaskApi, session: aiohttp.ClientSession) -> None:
    url = f"{api.base_url}/api/v1/generate/record-info"
    status, envelope = await call(session, "GET", url, params={"taskId": "0" * 32})
    assert (status, envelope) == (200, {"code": 400, "msg": "task not found", "data": None})
    api.unknown_task_code = 404
    assert (await call(session, "GET", url, params={"taskId": "nope"}))[1]["code"] == 404
    assert (await call(session, "GET", url))[1]["code"] == 400


# ------------------------------------------------------------------------- injected failures


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


# ------------------------------------------------------------------------- credits and introspection


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
