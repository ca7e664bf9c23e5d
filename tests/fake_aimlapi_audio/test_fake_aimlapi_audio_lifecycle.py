"""Fake aimlapi audio: generation lifecycle, outcomes, downloads and the request log."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from tests.fake_aimlapi_audio.support import (
    ELEVEN,
    MINIMAX,
    PATH,
    USAGE,
    ManualClock,
    assert_gateway_error,
    poll,
    submit_ok,
)
from tests.fakes.aimlapi_audio import (
    CONTENT_POLICY_ERROR_NAME,
    CONTENT_POLICY_MESSAGE,
    GENERATION_NOT_FOUND_MESSAGE,
    AudioOutcome,
    AudioTimings,
    FakeAimlAudioApi,
)


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
