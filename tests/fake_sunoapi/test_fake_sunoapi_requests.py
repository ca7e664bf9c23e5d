"""Fake Suno task API: the key check and generate body validation."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from tests.fake_sunoapi.support import CUSTOM_BODY, SIMPLE_BODY, call, generate, submit
from tests.fakes.sunoapi import MODELS, FakeSunoTaskApi


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
