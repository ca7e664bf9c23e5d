"""End to end: sunoapi's pushes to `{PUBLIC_BASE_URL}/callbacks/sunoapi/<per-job secret>` wake the job's polling
through the real bot's HTTP server; forged, repeated and lying pushes change nothing but when it polls."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import FakeMusicApi
from tests.fakes.sunoapi import FakeSunoTaskApi, TaskTimings
from tests.harness import RunningBot
from tests.test_e2e_backends import task_bot
from tests.test_health import free_port

# Without a push, the first poll of a song comes 30 s after the submit: a test that gets its song in a few
# seconds got it because a push woke the job.
SLOW_POLLING = {"poll_interval_seconds": 30.0, "fast_poll_interval_seconds": 5.0}


@asynccontextmanager
async def pushed_bot(
    discord_fake: FakeDiscord, api: FakeMusicApi, task_api: FakeSunoTaskApi, tmp_path: Path
) -> AsyncIterator[tuple[RunningBot, str]]:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    async with task_bot(
        discord_fake, api, task_api, tmp_path, http_port=port, public_base_url=public, **SLOW_POLLING
    ) as harness:
        yield harness, public


def callback_url(task_api: FakeSunoTaskApi) -> str:
    body = next(request for request in task_api.requests if request.route == "generate").json
    assert isinstance(body, dict)
    return str(body["callBackUrl"])


async def post(url: str, body: object) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        return response.status


async def test_the_providers_push_gets_the_song_posted_without_waiting_for_the_slow_poll(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    timings = TaskTimings(text_after=0.2, first_after=0.6, success_after=1.2)
    async with (
        FakeSunoTaskApi(timings=timings) as task_api,
        pushed_bot(discord_fake, api, task_api, tmp_path) as (harness, public),
    ):
        interaction = await harness.music("a pushed song")
        final = await harness.finished(interaction, timeout=20)
        url = callback_url(task_api)
        (job,) = await harness.query("SELECT id FROM jobs")
    assert final.content.startswith("✅")
    assert len(interaction.followups) == 2
    assert re.fullmatch(rf"{re.escape(public)}/callbacks/sunoapi/{job['id']}-[0-9a-f]{{32}}", url)
    stages = [(attempt.stage, attempt.status) for attempt in task_api.callbacks.attempts]
    assert stages[-1] == ("complete", 200)
    assert {stage for stage, _ in stages} == {"text", "first", "complete"}
    # Each push was followed by one re-read of the task; never the 30-s pace.
    assert 1 <= task_api.record_calls() <= len(stages) + 1


async def test_forged_repeated_and_lying_pushes_change_nothing_but_when_it_polls(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    slow = TaskTimings(text_after=60, first_after=120, success_after=180)  # still PENDING during the test
    async with (
        FakeSunoTaskApi(timings=slow) as task_api,
        pushed_bot(discord_fake, api, task_api, tmp_path) as (harness, public),
    ):
        interaction = await harness.music("a song that takes its time")
        await harness.discord.wait_for(lambda: task_api.generate_calls() == 1)
        url = callback_url(task_api)
        (task_id,) = task_api.tasks
        lie = {
            "code": 200,
            "msg": "All generated successfully.",
            "data": {
                "callbackType": "complete",
                "task_id": task_id,
                "data": [{"id": "forged", "audio_url": "http://127.0.0.1:9/evil.mp3", "title": "Forged"}],
            },
        }
        job_token = url.rsplit("/", 1)[1]
        other_job = f"{int(job_token.split('-')[0]) + 1}-{job_token.split('-')[1]}"
        assert await post(f"{public}/callbacks/sunoapi/{other_job}", lie) == 404  # the MAC is per job
        assert await post(f"{public}/callbacks/sunoapi/not-a-token", lie) == 404
        assert await post(f"{public}/callbacks/suno-api/{job_token}", lie) == 404
        before = task_api.record_calls()
        answers = await asyncio.gather(*(post(url, lie) for _ in range(30)))  # a valid address, flooded
        assert set(answers) == {200}
        await harness.discord.wait_for(lambda: task_api.record_calls() > before, timeout=5)
        await asyncio.sleep(0.5)
        polled = task_api.record_calls() - before
        assert interaction.followups == []  # the API still says PENDING: nothing posted, the lie ignored
        jobs = await harness.query("SELECT status FROM jobs")
        clips = await harness.query("SELECT id FROM clips WHERE id = 'forged'")
    assert 1 <= polled <= 2  # thirty pushes, at most one re-read per fast pace (5 s here)
    assert jobs == [{"status": "polling"}]
    assert clips == []


async def test_no_public_address_means_the_operators_url_or_the_inert_one(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with (
        FakeSunoTaskApi(timings=TaskTimings()) as task_api,
        task_bot(discord_fake, api, task_api, tmp_path, http_port=free_port()) as harness,
    ):
        await harness.finished(await harness.music("polled as before"))
        url = callback_url(task_api)
    assert url == "https://musicbot-callback.invalid/suno"
