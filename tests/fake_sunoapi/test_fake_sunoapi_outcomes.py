"""Fake Suno task API: failed, sensitive, stuck and per-task outcomes."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.fake_sunoapi.support import ManualClock, call, download, record, submit
from tests.fakes.sunoapi import SENSITIVE_WORDS_MESSAGE, FakeSunoTaskApi, TaskOutcome


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
