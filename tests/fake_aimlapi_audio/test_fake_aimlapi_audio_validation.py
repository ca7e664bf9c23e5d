"""Fake aimlapi audio: the bearer key and per-model body validation."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.fake_aimlapi_audio.support import (
    ELEVEN,
    GOOD_BODIES,
    MINIMAX,
    PATH,
    USAGE,
    ManualClock,
    assert_gateway_error,
    submit,
    submit_ok,
)
from tests.fakes.aimlapi_audio import SUPPORTED_MODELS, UNAUTHORIZED_MESSAGE, FakeAimlAudioApi


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
