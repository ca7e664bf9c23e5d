"""Request helpers for the fake ACE-Step server tests: submit, query (decoding `result` a second time), fetch."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.fakes.acestep import FakeAceStepApi

DESCRIPTION_BODY: dict[str, Any] = {"sample_query": "a soft love song", "thinking": True, "batch_size": 2}
CUSTOM_BODY: dict[str, Any] = {"prompt": "folk, accordion", "lyrics": "[Verse]\nHeave away", "audio_duration": 42}


async def call(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with session.request(method, url, **kwargs) as response:
        return response.status, await response.json(content_type=None)


async def release(
    ace: FakeAceStepApi, session: aiohttp.ClientSession, body: Any = None, **kwargs: Any
) -> tuple[int, Any]:
    return await call(
        session, "POST", f"{ace.base_url}/release_task", json=CUSTOM_BODY if body is None else body, **kwargs
    )


async def submit(ace: FakeAceStepApi, session: aiohttp.ClientSession, body: Any = None, **kwargs: Any) -> str:
    status, answer = await release(ace, session, body, **kwargs)
    assert status == 200, answer
    task_id: str = answer["data"]["task_id"]
    return task_id


async def query(
    ace: FakeAceStepApi, session: aiohttp.ClientSession, *task_ids: str, **kwargs: Any
) -> list[dict[str, Any]]:
    """query_result's entries, each with its `result` decoded into `items`."""
    status, answer = await call(
        session, "POST", f"{ace.base_url}/query_result", json={"task_id_list": list(task_ids)}, **kwargs
    )
    assert status == 200, answer
    assert (answer["code"], answer["error"], answer["extra"]) == (200, None, None)
    entries: list[dict[str, Any]] = answer["data"]
    for entry in entries:
        assert isinstance(entry["result"], str)  # JSON inside the JSON
        entry["items"] = json.loads(entry["result"])
    return entries


async def fetch(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, bytes, str]:
    async with session.get(url, **kwargs) as response:
        return response.status, await response.read(), response.content_type
