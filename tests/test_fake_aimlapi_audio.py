"""Tests of the fake aimlapi `/v2/generate/audio` server itself, driven with a plain aiohttp client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.aimlapi_audio import (
    CONTENT_POLICY_ERROR_NAME,
    CONTENT_POLICY_MESSAGE,
    GATEWAY_MESSAGES,
    GENERATION_NOT_FOUND_MESSAGE,
    OUT_OF_CREDITS_MESSAGE,
    SUPPORTED_MODELS,
    UNAUTHORIZED_MESSAGE,
    AudioOutcome,
    AudioTimings,
    FakeAimlAudioApi,
)

PATH = "/v2/generate/audio"
GATEWAY_KEYS = {"message", "path", "requestId", "statusCode", "timestamp"}
USAGE = {"credits_used": 390000, "usd_spent": 0.195}
GOOD_BODIES: dict[str, dict[str, Any]] = {
    "minimax/music-2.6": {
        "model": "minimax/music-2.6",
        "prompt": "Lo-fi pop, slow intro then loud bass",
        "lyrics": "[Verse]\nStreetlights flicker\n[Chorus]\nIn this small cafe",
        "is_instrumental": False,
        "lyrics_optimizer": True,
        "audio_setting": {"audio_sample_rate": 44100, "bitrate": 256000, "format": "mp3"},
    },
    "elevenlabs/eleven_music": {
        "model": "elevenlabs/eleven_music",
        "prompt": "solo piano in C minor, 90 BPM",
        "music_length_ms": 20000,
    },
    "google/lyria2": {"model": "google/lyria2", "prompt": "calm ambient pads", "negative_prompt": "drums", "seed": 7},
    "stable-audio": {
        "model": "stable-audio",
        "prompt": "techno loop",
        "seconds_total": 47,
        "seconds_start": 1,
        "steps": 100,
    },
}
ELEVEN = GOOD_BODIES["elevenlabs/eleven_music"]


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def fake(monotonic: ManualClock) -> AsyncIterator[FakeAimlAudioApi]:
    async with FakeAimlAudioApi(clock=monotonic) as api:
        yield api


@pytest.fixture
async def session(fake: FakeAimlAudioApi) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {fake.api_key}"}) as client:
        yield client


async def submit(fake: FakeAimlAudioApi, session: aiohttp.ClientSession, body: object) -> tuple[int, Any]:
    async with session.post(f"{fake.base_url}{PATH}", json=body) as response:
        return response.status, await response.json()


async def poll(fake: FakeAimlAudioApi, session: aiohttp.ClientSession, generation_id: str) -> tuple[int, Any]:
    async with session.get(f"{fake.base_url}{PATH}", params={"generation_id": generation_id}) as response:
        return response.status, await response.json()


async def submit_ok(fake: FakeAimlAudioApi, session: aiohttp.ClientSession, body: object = ELEVEN) -> str:
    status, answer = await submit(fake, session, body)
    assert status == 201, answer
    generation_id: str = answer["id"]
    return generation_id


def assert_gateway_error(body: dict[str, Any], status: int, path: str = PATH) -> None:
    assert set(body) == GATEWAY_KEYS
    assert body["statusCode"] == status
    assert body["path"] == path
    assert body["timestamp"].endswith("Z")


# ------------------------------------------------------------------------- auth and validation


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", "test-key", "Basic test-key"])
async def test_submit_without_a_valid_bearer_key_is_401(fake: FakeAimlAudioApi, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with (
        aiohttp.ClientSession(headers=headers) as client,
        client.post(f"{fake.base_url}{PATH}", json=ELEVEN) as response,
    ):
        assert response.status == 401
        body = await response.json()
    assert_gateway_error(body, 401)
    assert body["message"] == UNAUTHORIZED_MESSAGE
    assert fake.generations == {}
    assert fake.submit_calls() == 1


async def test_poll_requires_the_key_too(fake: FakeAimlAudioApi, session: aiohttp.ClientSession) -> None:
    generation_id = await submit_ok(fake, session)
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"{fake.base_url}{PATH}", params={"generation_id": generation_id}) as response,
    ):
        assert response.status == 401
        assert_gateway_error(await response.json(), 401)


@pytest.mark.parametrize("model", SUPPORTED_MODELS)
async def test_each_model_accepts_its_documented_body(
    fake: FakeAimlAudioApi, session: aiohttp.ClientSession, model: str
) -> None:
    status, answer = await submit(fake, session, GOOD_BODIES[model])
    assert status == 201
    assert set(answer) == {"id", "status", "meta"}
    assert answer["status"] == "queued"
    assert answer["meta"] == {"usage": USAGE}
    generation = fake.generations[answer["id"]]
    assert generation.model == model
    assert generation.body == GOOD_BODIES[model]


@pytest.mark.parametrize(
    "body",
    [
        {"model": "minimax/music-2.6"},
        {"model": "minimax/music-2.6", "is_instrumental": True, "prompt": "x" * 2000},
        {"model": "minimax/music-2.6", "audio_setting": {}},
        {"model": "elevenlabs/eleven_music", "prompt": "p", "music_length_ms": 300000.0},
        {"model": "google/lyria2", "prompt": "p", "provider": "fal-ai", "seed": 0},
        {"model": "stable-audio", "prompt": "p"},
    ],
)
async def test_minimal_and_edge_bodies_are_accepted(
    fake: FakeAimlAudioApi, session: aiohttp.ClientSession, body: dict[str, Any]
) -> None:
    await submit_ok(fake, session, body)


MINIMAX = GOOD_BODIES["minimax/music-2.6"]
LYRIA = GOOD_BODIES["google/lyria2"]
STABLE = GOOD_BODIES["stable-audio"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"prompt": "no model"}, 'Required at "model"'),
        (ELEVEN | {"model": "suno/v5"}, "received 'suno/v5' at \"model\""),
        (MINIMAX | {"model": "minimax/music-2.0"}, "Invalid discriminator value. Expected 'minimax/music-2.6'"),
        (MINIMAX | {"model": "minimax/music-2.0"}, "received 'minimax/music-2.0' at \"model\""),
        (ELEVEN | {"model": 3}, 'received number at "model"'),
        (MINIMAX | {"prompt": "x" * 2001}, 'String must contain at most 2000 character(s) at "prompt"'),
        (MINIMAX | {"lyrics": "x" * 3001}, 'String must contain at most 3000 character(s) at "lyrics"'),
        (MINIMAX | {"is_instrumental": "true"}, 'Expected boolean, received string at "is_instrumental"'),
        (MINIMAX | {"lyrics_optimizer": 1}, 'Expected boolean, received number at "lyrics_optimizer"'),
        (MINIMAX | {"audio_setting": "mp3"}, 'Expected object, received string at "audio_setting"'),
        (MINIMAX | {"audio_setting": {"format": "ogg"}}, "Invalid enum value. Expected 'mp3' | 'wav' | 'pcm'"),
        (MINIMAX | {"audio_setting": {"sample_rate": 44100}}, "Unrecognized key(s) in object: 'sample_rate'"),
        (MINIMAX | {"make_instrumental": True}, "Unrecognized key(s) in object: 'make_instrumental'"),
        ({"model": "elevenlabs/eleven_music"}, 'Required at "prompt"'),
        (ELEVEN | {"prompt": "x" * 2001}, "at most 2000 character(s)"),
        (ELEVEN | {"music_length_ms": 9999}, 'greater than or equal to 10000 at "music_length_ms"'),
        (ELEVEN | {"music_length_ms": 300001}, 'less than or equal to 300000 at "music_length_ms"'),
        (ELEVEN | {"music_length_ms": 15000.5}, "Expected integer, received float"),
        (ELEVEN | {"duration": 30}, "Unrecognized key(s) in object: 'duration'"),
        ({"model": "google/lyria2", "seed": 1}, 'Required at "prompt"'),
        (LYRIA | {"seed": "42"}, 'Expected number, received string at "seed"'),
        (LYRIA | {"seed": -1}, "greater than or equal to 0"),
        (LYRIA | {"lyrics": "la la"}, "Unrecognized key(s) in object: 'lyrics'"),
        ({"model": "stable-audio"}, 'Required at "prompt"'),
        (STABLE | {"seconds_total": 48}, 'less than or equal to 47 at "seconds_total"'),
        (STABLE | {"seconds_total": 0}, 'greater than or equal to 1 at "seconds_total"'),
        (STABLE | {"seconds_start": 48}, 'at "seconds_start"'),
        (STABLE | {"steps": 1001}, 'less than or equal to 1000 at "steps"'),
        (STABLE | {"steps": True}, 'Expected number, received boolean at "steps"'),
        (["not", "an", "object"], "Expected object, received array"),
    ],
)
async def test_body_validation_is_400(
    fake: FakeAimlAudioApi, session: aiohttp.ClientSession, body: object, detail: str
) -> None:
    status, error = await submit(fake, session, body)
    assert status == 400
    assert_gateway_error(error, 400)
    assert error["message"].startswith("Body validation error!\n")
    assert detail in error["message"]
    assert fake.generations == {}


async def test_non_json_body_is_400(fake: FakeAimlAudioApi, session: aiohttp.ClientSession) -> None:
    async with session.post(
        f"{fake.base_url}{PATH}", data="{not json", headers={"Content-Type": "application/json"}
    ) as r:
        assert r.status == 400
        assert (await r.json())["message"].startswith("Body validation error!")


async def test_unknown_fields_can_be_allowed(monotonic: ManualClock) -> None:
    async with (
        FakeAimlAudioApi(reject_unknown_fields=False, clock=monotonic) as fake,
        aiohttp.ClientSession(headers={"Authorization": "Bearer test-key"}) as client,
    ):
        await submit_ok(fake, client, ELEVEN | {"extra": 1})


# ------------------------------------------------------------------------- lifecycle and download


async def test_lifecycle_queued_generating_completed_then_download(
    fake: FakeAimlAudioApi, session: aiohttp.ClientSession, monotonic: ManualClock
) -> None:
    generation_id = await submit_ok(fake, session, MINIMAX)
    file_url = fake.file_url(generation_id)

    assert await poll(fake, session, generation_id) == (200, {"id": generation_id, "status": "queued"})
    async with session.get(file_url) as response:
        assert response.status == 403

    monotonic.now += fake.timings.generating_after
    assert await poll(fake, session, generation_id) == (200, {"id": generation_id, "status": "generating"})
    assert fake.status_of(generation_id) == "generating"
    async with session.get(file_url) as response:
        assert response.status == 403

    monotonic.now += fake.timings.complete_after
    status, view = await poll(fake, session, generation_id)
    assert status == 200
    assert view == {
        "id": generation_id,
        "status": "completed",
        "audio_file": {
            "url": file_url,
            "content_type": "audio/mpeg",
            "file_name": f"{generation_id}.mp3",
            "file_size": 64 * 1024,
        },
        "meta": {"usage": USAGE},
    }
    async with aiohttp.ClientSession() as anonymous, anonymous.get(view["audio_file"]["url"]) as response:
        assert response.status == 200
        assert response.content_type == "audio/mpeg"
        assert response.content_length == 64 * 1024
        data = await response.read()
    assert data == fake.audio_bytes(generation_id)
    assert data.startswith(b"ID3")
    assert fake.poll_calls() == 3


async def test_lifecycle_in_real_time() -> None:
    timings = AudioTimings(generating_after=0.05, complete_after=0.15)
    async with (
        FakeAimlAudioApi(timings=timings, audio_size=1000) as fake,
        aiohttp.ClientSession(headers={"Authorization": "Bearer test-key"}) as client,
    ):
        generation_id = await submit_ok(fake, client)
        seen: list[str] = []
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            _, view = await poll(fake, client, generation_id)
            if not seen or seen[-1] != view["status"]:
                seen.append(view["status"])
            if view["status"] == "completed":
                break
            await asyncio.sleep(0.02)
        assert seen == ["queued", "generating", "completed"]
        async with client.get(view["audio_file"]["url"]) as response:
            assert await response.read() == fake.audio_bytes(generation_id)
        assert len(fake.audio_bytes(generation_id)) == view["audio_file"]["file_size"] == 1000


async def test_audio_size_override_and_no_content_length(
    fake: FakeAimlAudioApi, session: aiohttp.ClientSession, monotonic: ManualClock
) -> None:
    fake.send_content_length = False
    generation_id = await submit_ok(fake, session)
    other_id = await submit_ok(fake, session)
    fake.generations[generation_id].audio_size = 300_000
    monotonic.now += 10
    _, view = await poll(fake, session, generation_id)
    assert view["audio_file"]["file_size"] == 300_000
    async with session.get(view["audio_file"]["url"]) as response:
        assert "Content-Length" not in response.headers
        data = await response.read()
    assert len(data) == 300_000
    assert data == fake.audio_bytes(generation_id)
    assert fake.audio_bytes(generation_id)[:1000] != fake.audio_bytes(other_id)[:1000]


async def test_error_outcome_is_http_200_with_status_error(
    fake: FakeAimlAudioApi, session: aiohttp.ClientSession, monotonic: ManualClock
) -> None:
    fake.next_outcome(AudioOutcome.content_policy(), AudioOutcome.error("UpstreamError", "boom", after=0))
    flagged = await submit_ok(fake, session)
    failed = await submit_ok(fake, session)
    fine = await submit_ok(fake, session)

    assert await poll(fake, session, failed) == (
        200,
        {"id": failed, "status": "error", "error": {"name": "UpstreamError", "message": "boom"}},
    )
    monotonic.now += fake.timings.generating_after
    assert (await poll(fake, session, flagged))[1]["status"] == "generating"
    monotonic.now += fake.timings.complete_after
    status, view = await poll(fake, session, flagged)
    assert status == 200
    assert view == {
        "id": flagged,
        "status": "error",
        "error": {"name": CONTENT_POLICY_ERROR_NAME, "message": CONTENT_POLICY_MESSAGE},
    }
    assert fake.generations[flagged].outcome.kind == "error"
    async with session.get(fake.file_url(flagged)) as response:
        assert response.status == 403
    assert fake.status_of(fine) == "completed"


async def test_stuck_outcome_never_completes(
    fake: FakeAimlAudioApi, session: aiohttp.ClientSession, monotonic: ManualClock
) -> None:
    fake.next_outcome(AudioOutcome.stuck("queued"), AudioOutcome.stuck())
    queued = await submit_ok(fake, session)
    generating = await submit_ok(fake, session)
    monotonic.now += 3600
    assert (await poll(fake, session, queued))[1] == {"id": queued, "status": "queued"}
    assert fake.status_of(generating) == "generating"


async def test_status_spelling_options(monotonic: ManualClock) -> None:
    async with (
        FakeAimlAudioApi(complete_spelling="complete", waiting_instead_of_queued=True, clock=monotonic) as fake,
        aiohttp.ClientSession(headers={"Authorization": "Bearer test-key"}) as client,
    ):
        generation_id = await submit_ok(fake, client)
        assert (await poll(fake, client, generation_id))[1]["status"] == "waiting"
        monotonic.now += 10
        _, view = await poll(fake, client, generation_id)
        assert view["status"] == "complete"
        assert "audio_file" in view
        assert fake.status_of(generation_id) == "completed"


async def test_poll_unknown_id_is_404_and_missing_param_is_400(
    fake: FakeAimlAudioApi, session: aiohttp.ClientSession
) -> None:
    status, body = await poll(fake, session, "no-such-generation")
    assert status == 404
    assert_gateway_error(body, 404)
    assert body["message"] == GENERATION_NOT_FOUND_MESSAGE
    async with session.get(f"{fake.base_url}{PATH}") as response:
        assert response.status == 400
        body = await response.json()
    assert_gateway_error(body, 400)
    assert body["message"].startswith("Query validation error!")
    assert "generation_id" in body["message"]
    async with session.get(f"{fake.base_url}/files/no-such-generation.mp3") as response:
        assert response.status == 403


async def test_unknown_path_is_a_gateway_404(fake: FakeAimlAudioApi, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{fake.base_url}/generate", json={}) as response:
        assert response.status == 404
        assert_gateway_error(await response.json(), 404, "/generate")


async def test_ids_are_deterministic_per_seed_and_uuid_model_style_works(monotonic: ManualClock) -> None:
    ids: list[list[str]] = []
    for _ in range(2):
        async with (
            FakeAimlAudioApi(seed=42, clock=monotonic) as fake,
            aiohttp.ClientSession(headers={"Authorization": "Bearer test-key"}) as client,
        ):
            ids.append([await submit_ok(fake, client), await submit_ok(fake, client)])
    assert ids[0] == ids[1]
    assert ids[0][0] != ids[0][1]
    async with (
        FakeAimlAudioApi(id_style="uuid_model", clock=monotonic) as fake,
        aiohttp.ClientSession(headers={"Authorization": "Bearer test-key"}) as client,
    ):
        generation_id = await submit_ok(fake, client, MINIMAX)
        assert generation_id.endswith(":minimax/music-2.6")
        monotonic.now += 10
        _, view = await poll(fake, client, generation_id)
        assert view["id"] == generation_id
        assert view["audio_file"]["file_name"].endswith("_minimax_music-2.6.mp3")
        async with client.get(view["audio_file"]["url"]) as response:
            assert response.status == 200
            assert await response.read() == fake.audio_bytes(generation_id)


async def test_requests_are_recorded(fake: FakeAimlAudioApi, session: aiohttp.ClientSession) -> None:
    generation_id = await submit_ok(fake, session)
    await poll(fake, session, generation_id)
    submit_record, poll_record = fake.requests
    assert (submit_record.method, submit_record.path, submit_record.route) == ("POST", PATH, "submit")
    assert submit_record.json == ELEVEN
    assert submit_record.status == 201
    assert (poll_record.method, poll_record.route, poll_record.status) == ("GET", "poll", 200)
    assert poll_record.query == {"generation_id": generation_id}
    assert (fake.submit_calls(), fake.poll_calls()) == (1, 1)
    assert fake.generations[generation_id].created_at.endswith("Z")


# ------------------------------------------------------------------------- injected failures


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
