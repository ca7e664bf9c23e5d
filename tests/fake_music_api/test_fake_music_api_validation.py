"""Fake music API: the bearer key and zod-style body validation."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.fake_music_api.support import CUSTOM_BODY, SIMPLE_BODY, assert_gateway_error, generate
from tests.fakes.music_api import UNAUTHORIZED_MESSAGE, FakeMusicApi


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
