"""Tests of the fake music API server itself, driven with a plain aiohttp client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import yarl

from tests.fakes.music_api import (
    GATEWAY_MESSAGES,
    GCUI_DEFAULT_MODEL,
    OUT_OF_CREDITS_MESSAGE,
    TINY_PNG,
    UNAUTHORIZED_MESSAGE,
    ClipOutcome,
    ClipTimings,
    FakeMusicApi,
)

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


@pytest.fixture
async def api() -> AsyncIterator[FakeMusicApi]:
    async with FakeMusicApi() as fake:
        yield fake


@pytest.fixture
async def session(api: FakeMusicApi) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {api.api_key}"}) as client:
        yield client


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


# ------------------------------------------------------------------------- auth and validation


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", "test-key", "Basic test-key"])
async def test_generate_without_a_valid_bearer_key_is_401(api: FakeMusicApi, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with (
        aiohttp.ClientSession(headers=headers) as client,
        client.post(f"{api.base_url}/generate", json=SIMPLE_BODY) as response,
    ):
        assert response.status == 401
        body = await response.json()
    assert_gateway_error(body, 401, "/generate")
    assert body["message"] == UNAUTHORIZED_MESSAGE
    assert api.clips == {}
    assert api.generate_calls() == 1


async def test_fetch_requires_the_key_too(api: FakeMusicApi) -> None:
    async with aiohttp.ClientSession() as client, client.get(f"{api.base_url}/?ids%5B0%5D=x") as response:
        assert response.status == 401


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"prompt": "x", "make_instrumental": False}, 'Required at "wait_audio"'),
        ({"prompt": "x", "make_instrumental": "false", "wait_audio": False}, "Expected boolean, received string"),
        ({"prompt": 42, "make_instrumental": False, "wait_audio": False}, "Expected string, received number"),
        ({"prompt": "x", "make_instrumental": 0, "wait_audio": False}, "Expected boolean, received number"),
        (SIMPLE_BODY | {"model": "chirp-v3-5|chirp-v3-0"}, "Invalid enum value"),
        (SIMPLE_BODY | {"model": None}, "received null"),
        (SIMPLE_BODY | {"negative_tags": "jazz"}, "Unrecognized key(s) in object: 'negative_tags'"),
        (["not", "an", "object"], "Expected object, received array"),
    ],
)
async def test_generate_body_validation_is_400(
    api: FakeMusicApi, session: aiohttp.ClientSession, body: object, detail: str
) -> None:
    async with session.post(f"{api.base_url}/generate", json=body) as response:
        assert response.status == 400
        error = await response.json()
    assert_gateway_error(error, 400, "/generate")
    assert error["message"].startswith("Body validation error!")
    assert detail in error["message"]
    assert api.clips == {}


async def test_non_json_body_is_400(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    for data, content_type in [("{not json", "application/json"), (json.dumps(SIMPLE_BODY), "text/plain")]:
        async with session.post(
            f"{api.base_url}/generate", data=data, headers={"Content-Type": content_type}
        ) as response:
            assert response.status == 400
            assert (await response.json())["message"].startswith("Body validation error!")


async def test_custom_mode_requires_title_and_tags(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    body = {key: value for key, value in CUSTOM_BODY.items() if key != "title"}
    async with session.post(f"{api.base_url}/v1/generate/custom-mode", json=body) as response:
        assert response.status == 400
        error = await response.json()
    assert error["path"] == "/v1/generate/custom-mode"
    assert 'Required at "title"' in error["message"]


@pytest.mark.parametrize("model", ["chirp-v3-5", "chirp-v3-0"])
async def test_documented_models_are_accepted(api: FakeMusicApi, session: aiohttp.ClientSession, model: str) -> None:
    status, clips = await generate(api, session, model=model)
    assert status == 201
    assert {api.clips[clip["id"]].model for clip in clips} == {model}


# ------------------------------------------------------------------------- generate and fetch


async def test_generate_returns_two_submitted_clips_at_once(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    started = time.monotonic()
    status, clips = await generate(api, session)
    assert time.monotonic() - started < 0.2
    assert status == 201
    assert len(clips) == 2
    for clip in clips:
        assert set(clip) == AUDIO_INFO_KEYS  # no error_message in the immediate generate result
        assert clip["status"] == "submitted"
        assert clip["audio_url"] == clip["video_url"] == clip["title"] == clip["lyric"] == ""
        assert clip["image_url"] is None
        assert clip["tags"] is None
        assert clip["duration"] is None
        assert clip["gpt_description_prompt"] == SIMPLE_BODY["prompt"]
        assert clip["type"] == "gen"
        assert clip["created_at"].endswith("Z")
    assert clips[0]["id"] != clips[1]["id"]
    assert api.generate_calls() == 1


async def test_v1_prefix_and_generate_status_option(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.generate_status = 200
    async with session.post(f"{api.base_url}/v1/generate", json=SIMPLE_BODY) as response:
        assert response.status == 200
        clips = await response.json()
    async with session.get(f"{api.base_url}/v1", params={"ids[0]": clips[0]["id"]}) as response:
        assert response.status == 200
        assert [clip["id"] for clip in await response.json()] == [clips[0]["id"]]


async def test_lifecycle_seen_by_polling_fetch(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    _, created = await generate(api, session)
    ids = [clip["id"] for clip in created]
    seen: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        clips = await fetch(api, session, ids)
        assert [clip["id"] for clip in clips] == ids
        status = clips[0]["status"]
        if not order or order[-1] != status:
            order.append(status)
        seen.setdefault(status, clips[0])
        if all(clip["status"] == "complete" for clip in clips):
            break
        await asyncio.sleep(0.02)
    assert order == ["submitted", "queued", "streaming", "complete"]

    queued, streaming, complete = seen["queued"], seen["streaming"], seen["complete"]
    assert set(complete) == AUDIO_INFO_KEYS | {"error_message"}
    assert (queued["audio_url"], queued["title"], queued["image_url"]) == ("", "", None)
    assert streaming["audio_url"] == f"{api.base_url}/audiopipe/?item_id={ids[0]}"
    assert all(streaming[key] for key in ("title", "tags", "lyric"))
    assert (streaming["video_url"], streaming["duration"]) == ("", None)
    assert streaming["image_url"] == f"{api.base_url}/image/{ids[0]}.png"
    assert complete["audio_url"] == f"{api.base_url}/audio/{ids[0]}.mp3"
    assert complete["video_url"] == f"{api.base_url}/video/{ids[0]}.mp4"
    assert isinstance(complete["duration"], float)
    assert 60 <= complete["duration"] <= 240
    assert complete["error_message"] is None
    assert "\n\n" not in complete["lyric"]  # blank lines dropped in get results
    assert complete["prompt"] == api.clips[ids[0]].lyrics
    assert api.fetch_batches()[0] == ids


async def test_fetch_query_forms(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    _, clips = await generate(api, session)
    first, second = clips[0]["id"], clips[1]["id"]
    raw = yarl.URL(f"{api.base_url}/?ids[1]={first}&ids[0]={second}&ids[2]=unknown", encoded=True)
    async with session.get(raw) as response:
        assert response.status == 200
        assert [clip["id"] for clip in await response.json()] == [second, first]
    for query in ["", f"?ids={first}"]:
        async with session.get(f"{api.base_url}/{query}") as response:
            assert response.status == 400
            error = await response.json()
        assert_gateway_error(error, 400, "/")
        assert error["message"].startswith("Query validation error!")
    assert api.fetch_batches() == [[second, first, "unknown"]]


async def test_custom_mode_echoes_lyrics_title_and_tags(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{api.base_url}/generate/custom-mode", json=CUSTOM_BODY) as response:
        assert response.status == 201
        created = await response.json()
    assert created[0]["title"] == "Roof Cats"
    assert created[0]["lyric"] == CUSTOM_BODY["prompt"]  # raw in the generate result
    assert created[0]["gpt_description_prompt"] is None
    [fetched] = await fetch(api, session, [created[0]["id"]])
    assert fetched["lyric"] == "[Verse 1]\nCats on the roof\n[Chorus]\nMeow meow"
    assert fetched["prompt"] == CUSTOM_BODY["prompt"]
    assert fetched["tags"] == "pop metal male melancholic"


async def test_status_spelling_options(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.timings = ClipTimings(0, 0, 0)
    api.complete_spelling = "completed"
    api.status_case = "upper"
    _, clips = await generate(api, session)
    assert {clip["status"] for clip in await fetch(api, session, [clips[0]["id"]])} == {"COMPLETED"}
    assert api.status_of(clips[0]["id"]) == "complete"


# ------------------------------------------------------------------------- wait_audio


async def test_wait_audio_returns_once_all_clips_stream(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.timings = ClipTimings(queued_after=0.05, streaming_after=0.2, complete_after=30)
    started = time.monotonic()
    status, clips = await generate(api, session, wait_audio=True)
    elapsed = time.monotonic() - started
    assert status == 201
    assert 0.2 <= elapsed < api.wait_audio_timeout
    assert [clip["status"] for clip in clips] == ["streaming", "streaming"]
    assert all(clip["audio_url"].startswith(f"{api.base_url}/audiopipe/") for clip in clips)
    assert all("error_message" in clip for clip in clips)  # the result comes from a get()
    assert api.fetch_batches() == []  # internal polling is not a client fetch


async def test_wait_audio_times_out_with_incomplete_clips_and_2xx(
    api: FakeMusicApi, session: aiohttp.ClientSession
) -> None:
    api.wait_audio_timeout = 0.3
    api.next_outcome(ClipOutcome.stuck(), ClipOutcome.stuck(at="submitted"))
    started = time.monotonic()
    status, clips = await generate(api, session, wait_audio=True)
    assert 0.3 <= time.monotonic() - started < 0.6
    assert status == 201
    assert [clip["status"] for clip in clips] == ["queued", "submitted"]
    assert all(clip["audio_url"] == "" for clip in clips)


async def test_wait_audio_mixed_error_and_streaming_waits_for_the_timeout(
    api: FakeMusicApi, session: aiohttp.ClientSession
) -> None:
    api.wait_audio_timeout = 0.4
    api.timings.complete_after = 30
    api.next_outcome(ClipOutcome.error("Song Description contained artist name: metallica"))
    started = time.monotonic()
    _, clips = await generate(api, session, wait_audio=True)
    assert time.monotonic() - started >= 0.4
    assert [clip["status"] for clip in clips] == ["error", "streaming"]


async def test_wait_audio_returns_early_when_every_clip_errors(
    api: FakeMusicApi, session: aiohttp.ClientSession
) -> None:
    message = "Song Description contained artist name: metallica"
    api.next_outcome(ClipOutcome.error(message), ClipOutcome.error(message, after=0.1))
    started = time.monotonic()
    status, clips = await generate(api, session, wait_audio=True)
    assert time.monotonic() - started < api.wait_audio_timeout / 2
    assert status == 201
    for clip in clips:
        assert clip["status"] == "error"
        assert clip["error_message"] == message
        assert clip["audio_url"] == f"{api.base_url}/None.mp3"
        assert clip["title"]  # title and lyrics may still be filled on error


async def test_wait_audio_initial_delay_past_timeout_returns_empty_list(
    api: FakeMusicApi, session: aiohttp.ClientSession
) -> None:
    api.wait_initial_delay, api.wait_audio_timeout = 0.1, 0.05
    status, clips = await generate(api, session, wait_audio=True)
    assert (status, clips) == (201, [])
    assert len(api.clips) == 2


# ------------------------------------------------------------------------- injected failures


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


# ------------------------------------------------------------------------- downloads


async def test_audio_download_bytes_and_length(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    _, clips = await generate(api, session)
    clip_id = clips[0]["id"]
    async with session.get(f"{api.base_url}/audio/{clip_id}.mp3") as response:
        assert response.status == 403  # the final mp3 does not exist before complete
    api.timings = ClipTimings(0, 0, 0)
    [fetched] = await fetch(api, session, [clip_id])
    async with session.get(fetched["audio_url"]) as response:
        assert response.status == 200
        assert response.content_type == "audio/mpeg"
        assert response.content_length == api.audio_size == 64 * 1024
        data = await response.read()
    assert data == api.audio_bytes(clip_id)
    assert data.startswith(b"ID3")
    assert api.audio_bytes(clip_id) != api.audio_bytes(clips[1]["id"])


async def test_audio_without_content_length(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.timings = ClipTimings(0, 0, 0)
    api.send_content_length = False
    _, clips = await generate(api, session)
    clip_id = clips[1]["id"]
    api.clips[clip_id].audio_size = 300_000
    async with session.get(f"{api.base_url}/audio/{clip_id}.mp3") as response:
        assert "Content-Length" not in response.headers
        assert response.headers["Transfer-Encoding"] == "chunked"
        data = await response.read()
    assert len(data) == 300_000
    assert data == api.audio_bytes(clip_id)


async def test_error_audio_url_is_access_denied(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.next_outcome(ClipOutcome.error(), ClipOutcome.error())
    api.timings = ClipTimings(0, 0, 0)
    _, clips = await generate(api, session)
    [fetched] = await fetch(api, session, [clips[0]["id"]])
    assert fetched["error_message"] is None
    async with session.get(fetched["audio_url"]) as response:
        assert response.status == 403
        assert await response.text() == "access denied"


async def test_streaming_image_and_audiopipe(api: FakeMusicApi, session: aiohttp.ClientSession) -> None:
    api.timings = ClipTimings(0, 0, 30)
    _, clips = await generate(api, session)
    [fetched] = await fetch(api, session, [clips[0]["id"]])
    async with session.get(fetched["image_url"]) as response:
        assert response.content_type == "image/png"
        assert await response.read() == TINY_PNG
    async with session.get(fetched["audio_url"]) as response:
        assert response.status == 200
        assert response.content_length is None
        assert await response.read() == api.audio_bytes(clips[0]["id"])


# ------------------------------------------------------------------------- gcui-art self-hosted routes

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
