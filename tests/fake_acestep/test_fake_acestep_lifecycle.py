"""Fake ACE-Step server: the task lifecycle on its one worker, the double-encoded results, files, restarts."""

from __future__ import annotations

import aiohttp

from tests.fake_acestep.support import CUSTOM_BODY, DESCRIPTION_BODY, call, fetch, query, submit
from tests.fake_sunoapi.support import ManualClock
from tests.fakes.acestep import OUTPUT_DIR, FakeAceStepApi, TaskOutcome


async def test_release_answers_in_the_envelope_with_a_string_status(
    ace: FakeAceStepApi, session: aiohttp.ClientSession
) -> None:
    status, answer = await call(session, "POST", f"{ace.base_url}/release_task", json=CUSTOM_BODY)
    assert status == 200
    assert set(answer) == {"data", "code", "error", "timestamp", "extra"}
    assert (answer["code"], answer["error"], answer["extra"]) == (200, None, None)
    assert isinstance(answer["timestamp"], int)
    assert answer["data"]["status"] == "queued"  # a string only here
    assert answer["data"]["queue_position"] == 1
    assert answer["data"]["task_id"] in ace.tasks


async def test_one_worker_runs_the_tasks_in_order_with_progress_then_files(
    ace: FakeAceStepApi, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    first = await submit(ace, session)
    second = await submit(ace, session, DESCRIPTION_BODY)
    assert ace.queue_position(second) == 1  # the first started at once; the second waits for the worker
    entries = await query(ace, session, first, second)
    assert [entry["status"] for entry in entries] == [0, 0]  # integers from here on
    running, waiting = (entry["items"] for entry in entries)
    assert running[0]["stage"] == "running"
    assert waiting[0]["stage"] == "queued"
    assert waiting[0]["progress"] == 0.0

    clock.advance(5)
    (entry,) = await query(ace, session, first)
    assert entry["status"] == 0
    assert 0.4 <= entry["items"][0]["progress"] < 1
    assert entry["items"][0]["file"] == ""

    clock.advance(5)
    first_entry, second_entry = await query(ace, session, first, second)
    assert first_entry["status"] == 1
    assert second_entry["status"] == 0  # started when the first ended
    takes = first_entry["items"]
    assert len(takes) == 2
    for take, item in enumerate(takes, start=1):
        assert item["status"] == 1
        assert item["file"].startswith("/v1/audio?path=%2F")  # relative, the path url-encoded
        assert set(item["metas"]) >= {"bpm", "duration", "genres", "keyscale", "timesignature"}
        assert item["metas"]["duration"] == 42  # custom mode: the requested length
        assert item["prompt"] == CUSTOM_BODY["prompt"]
        assert item["lyrics"] == CUSTOM_BODY["lyrics"]
        status, data, content_type = await fetch(session, ace.base_url + item["file"])
        assert (status, content_type) == (200, "audio/mpeg")
        assert data == ace.audio_bytes(first, take)
        assert data.startswith(b"ID3")


async def test_a_description_lets_its_language_model_write_and_plan_the_length(
    ace: FakeAceStepApi, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    task_id = await submit(ace, session, {**DESCRIPTION_BODY, "audio_duration": 30})
    clock.advance(10)
    (entry,) = await query(ace, session, task_id)
    item = entry["items"][0]
    assert item["prompt"]  # the caption it wrote
    assert "[Verse]" in item["lyrics"]
    assert item["metas"]["duration"] == ace.tasks[task_id].duration != 30  # overwritten, as the real server does
    instrumental = await submit(ace, session, {"sample_query": "rainy piano (instrumental)"})
    clock.advance(10)
    (entry,) = await query(ace, session, instrumental)
    assert entry["items"][0]["lyrics"] == "[Instrumental]"


async def test_an_unknown_id_is_running_for_ever_and_a_restart_forgets_every_task(
    ace: FakeAceStepApi, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    (entry,) = await query(ace, session, "never-issued")
    assert entry == {"task_id": "never-issued", "result": "[]", "status": 0, "items": []}
    done = await submit(ace, session)
    clock.advance(10)
    (finished,) = await query(ace, session, done)
    running = await submit(ace, session)
    ace.restart()
    clock.advance(10_000)
    for task_id in (done, running):
        (entry,) = await query(ace, session, task_id)
        assert (entry["status"], entry["items"]) == (0, [])
        assert "progress_text" not in entry
    status, _, _ = await fetch(session, ace.base_url + finished["items"][0]["file"])
    assert status == 200  # its files stay in the output folder


async def test_failures_stuck_tasks_and_the_hour_limit(
    ace: FakeAceStepApi, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    ace.next_outcome(TaskOutcome.failed(), TaskOutcome.failed("out of memory", shape="store"), TaskOutcome.stuck())
    cached, stored, stuck = [await submit(ace, session) for _ in range(3)]
    clock.advance(25)
    entries = await query(ace, session, cached, stored, stuck)
    assert [entry["status"] for entry in entries] == [2, 2, 0]
    assert "error" not in entries[0]["items"][0]  # the disk cache's shape carries no words
    assert entries[1]["items"][0]["error"] == "out of memory"
    assert entries[2]["items"][0]["progress"] == 0.5
    behind = await submit(ace, session)
    clock.advance(3600)
    stuck_entry, behind_entry = await query(ace, session, stuck, behind)
    assert stuck_entry["status"] == 2  # status 0 for over an hour: given up
    assert behind_entry["items"][0]["stage"] == "queued"  # the stuck task still holds the worker


async def test_health_models_and_stats(ace: FakeAceStepApi, session: aiohttp.ClientSession) -> None:
    status, health = await call(session, "GET", f"{ace.base_url}/health")
    assert (status, health["data"]) == (200, {"status": "ok", "service": "ACE-Step API", "version": "1.0"})
    _, models = await call(session, "GET", f"{ace.base_url}/v1/models")
    assert models["data"] == {
        "models": [
            {"name": "acestep-v15-turbo", "is_default": True},
            {"name": "acestep-v15-turbo-shift3", "is_default": False},
        ],
        "default_model": "acestep-v15-turbo",
    }
    ace.paused = True
    await submit(ace, session)
    _, stats = await call(session, "GET", f"{ace.base_url}/v1/stats")
    assert stats["data"]["queue_size"] == 1
    assert stats["data"]["queue_maxsize"] == 200
    assert stats["data"]["jobs"] == {"total": 1, "queued": 1, "running": 0, "succeeded": 0, "failed": 0}
    ace.models = ()
    _, models = await call(session, "GET", f"{ace.base_url}/v1/models")
    assert models["data"] == {"models": [], "default_model": None}


async def test_files_outside_its_folder_or_missing_are_refused(
    ace: FakeAceStepApi, session: aiohttp.ClientSession
) -> None:
    url = f"{ace.base_url}/v1/audio"
    assert (await fetch(session, url, params={"path": "/etc/passwd"}))[0] == 403
    assert (await fetch(session, url, params={"path": f"{OUTPUT_DIR}/../../../etc/passwd"}))[0] == 403
    status, body, _ = await fetch(session, url, params={"path": f"{OUTPUT_DIR}/nothing.mp3"})
    assert status == 404
    assert b"Audio file not found" in body
    assert (await fetch(session, url))[0] == 422
