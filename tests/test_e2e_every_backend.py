"""The same end-to-end suite for every backend in ADAPTERS, each through the real bot against its fake (the
sandbox against itself): songs posted as playable attachments, a refused request that never reaches the
service, a failed submit reported and refunded, and a restart mid-job that posts each song once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.backends import adapters
from tests.fakes.acestep import FakeAceStepApi
from tests.fakes.acestep import TaskTimings as AceTimings
from tests.fakes.aimlapi_audio import AudioTimings, FakeAimlAudioApi
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import ClipTimings, FakeMusicApi
from tests.fakes.sunoapi import FakeSunoTaskApi, TaskTimings
from tests.harness import World, running_bot
from tests.test_e2e_acestep import clip_messages

FOREVER = 3600.0


@dataclass
class Service:
    """One backend as the suite drives it: the bot's settings for it, and the few controls of its service."""

    name: str
    settings: dict[str, Any]
    submits: Callable[[], int] | None  # paid calls the service received; None for the sandbox (no service)
    hold: Callable[[bool], None]  # True: songs being made do not finish; False: they finish now
    # The next submits are answered with a server error; None for the sandbox, which has no service to fail.
    fail_submits: Callable[[], None] | None

    @property
    def songs(self) -> int:
        return adapters()[self.name].capabilities.outputs_per_request


def _music_api(api: FakeMusicApi, name: str, route: str, settings: dict[str, Any]) -> Service:
    def hold(held: bool) -> None:
        api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=FOREVER if held else 0.3)

    def fail() -> None:
        api.fail_next(route, status=500, body={"message": "Internal server error"}, times=5)  # type: ignore[arg-type]

    counted = "generate" if route == "generate" else "gcui_generate"
    return Service(name, settings, lambda: sum(r.route == counted for r in api.requests), hold, fail)


async def service_for(name: str, api: FakeMusicApi, stack: AsyncExitStack) -> Service:
    if name == "aimlapi-suno":
        return _music_api(api, name, "generate", {})
    if name == "suno-api":
        return _music_api(api, name, "gcui_generate", {"suno_api_base_url": api.base_url})
    if name == "aimlapi-audio":
        audio = await stack.enter_async_context(FakeAimlAudioApi(timings=AudioTimings(0.1, 0.4)))

        def hold_audio(held: bool) -> None:
            audio.timings = AudioTimings(generating_after=0.1, complete_after=FOREVER if held else 0.3)

        def fail_audio() -> None:
            audio.fail_next("submit", status=500, body={"message": "Internal server error"}, times=5)

        settings = {"aiml_api_base_url": audio.base_url, "aiml_api_key": audio.api_key}
        return Service(name, settings, audio.submit_calls, hold_audio, fail_audio)
    if name == "sunoapi":
        tasks = await stack.enter_async_context(FakeSunoTaskApi(timings=TaskTimings(0.1, 0.3, 0.6)))

        def hold_tasks(held: bool) -> None:
            tasks.timings = TaskTimings(0.1, 0.2, FOREVER) if held else TaskTimings(0.1, 0.2, 0.3)

        def fail_tasks() -> None:
            tasks.fail_next("generate", code=500, times=5)

        settings = {"sunoapi_base_url": tasks.base_url, "sunoapi_key": tasks.api_key}
        return Service(name, settings, tasks.generate_calls, hold_tasks, fail_tasks)
    if name == "acestep":
        ace = await stack.enter_async_context(FakeAceStepApi(timings=AceTimings(run_seconds=0.6)))

        def hold_ace(held: bool) -> None:
            ace.timings.run_seconds = FOREVER if held else 0.3

        def fail_ace() -> None:
            ace.fail_next("release", 500, times=5)

        return Service(name, {"acestep_base_url": ace.base_url}, lambda: len(ace.release_bodies()), hold_ace, fail_ace)
    if name == "sandbox":  # songs are made inside the bot, complete 3 and 4.5 s after the submit
        return Service(name, {}, None, lambda held: None, None)
    raise AssertionError(f"backend {name!r} is not in the shared suite: add it to service_for")


@pytest.fixture(params=list(adapters()))
async def service(request: pytest.FixtureRequest, api: FakeMusicApi) -> AsyncIterator[Service]:
    async with AsyncExitStack() as stack:
        yield await service_for(request.param, api, stack)


# The backends that call a service of their own (all but the sandbox, which makes its songs inside the bot).
REMOTE = [name for name in adapters() if name != "sandbox"]


@pytest.fixture(params=REMOTE)
async def remote_service(request: pytest.FixtureRequest, api: FakeMusicApi) -> AsyncIterator[Service]:
    async with AsyncExitStack() as stack:
        yield await service_for(request.param, api, stack)


def paid_calls(service: Service) -> int:
    """The service's generate calls; the sandbox's (made inside the bot) count as the songs' job."""
    return service.submits() if service.submits is not None else 1


def bot(discord: FakeDiscord, api: FakeMusicApi, service: Service, database: Path, **overrides: Any) -> Any:
    return running_bot(discord, api, database, music_backend=service.name, **(service.settings | overrides))


def is_mp3(data: bytes) -> bool:
    return data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


async def test_music_posts_each_song_as_a_playable_attachment(
    discord_fake: FakeDiscord, api: FakeMusicApi, service: Service, tmp_path: Path
) -> None:
    async with bot(discord_fake, api, service, tmp_path / "db.sqlite3") as harness:
        interaction = await harness.music("a song for every backend")
        final = await harness.finished(interaction, timeout=30)
        ledger = await harness.query("SELECT change FROM quota_ledger")
        posted = await harness.query("SELECT id FROM clips WHERE message_id IS NOT NULL")
    assert final.content.startswith("✅"), final.content
    songs = [message for message in interaction.followups if message.attachments]
    assert len(songs) == len(posted) == service.songs
    for message in songs:
        (attachment,) = message.attachments
        assert attachment.filename.endswith(".mp3")
        assert is_mp3(attachment.data), attachment.data[:8]
    assert [row["change"] for row in ledger] == ["reserve"]
    assert paid_calls(service) == 1


async def test_a_refused_request_never_reaches_the_service(
    discord_fake: FakeDiscord, api: FakeMusicApi, service: Service, tmp_path: Path
) -> None:
    async with bot(discord_fake, api, service, tmp_path / "db.sqlite3", default_per_member_daily=1) as harness:
        await harness.finished(await harness.music("the one allowed today"), timeout=30)
        submitted = paid_calls(service)
        refused = await harness.music("one too many")
        await harness.discord.wait_for(lambda: bool(refused.callbacks))
        jobs = await harness.query("SELECT id FROM jobs")
    assert refused.ephemeral
    assert "today" in refused.callbacks[0]["data"]["content"].lower()
    assert paid_calls(service) == submitted
    assert len(jobs) == 1


async def test_a_failed_submit_is_reported_and_refunded(
    discord_fake: FakeDiscord, api: FakeMusicApi, remote_service: Service, tmp_path: Path
) -> None:
    service = remote_service
    assert service.fail_submits is not None
    service.fail_submits()
    async with bot(discord_fake, api, service, tmp_path / "db.sqlite3", retry_base_delay_seconds=0.01) as harness:
        final = await harness.finished(await harness.music("a song the service fails"), timeout=30)
        jobs = await harness.query("SELECT status, charged FROM jobs")
        ledger = await harness.query("SELECT change FROM quota_ledger ORDER BY id")
    assert final.content.startswith("❌"), final.content
    assert "not counted against the server's quota" in final.content
    assert jobs == [{"status": "failed", "charged": 0}]
    assert [row["change"] for row in ledger] == ["reserve", "refund"]


async def test_a_restart_mid_job_posts_each_song_once(
    discord_fake: FakeDiscord, api: FakeMusicApi, service: Service, tmp_path: Path
) -> None:
    database, world = tmp_path / "db.sqlite3", World.create(discord_fake)
    service.hold(True)
    async with bot(discord_fake, api, service, database, world=world) as first:
        await first.music("a song across a restart")
        for _ in range(400):
            if await first.query("SELECT id FROM jobs WHERE status = 'polling'"):
                break
            await asyncio.sleep(0.025)
    service.hold(False)
    async with bot(discord_fake, api, service, database, world=world) as second:
        for _ in range(600):
            if await second.query("SELECT id FROM jobs WHERE status = 'delivered'"):
                break
            await asyncio.sleep(0.05)
        jobs = await second.query("SELECT status, charged FROM jobs")
    assert jobs == [{"status": "delivered", "charged": 1}]
    footers = sorted(message.embeds[0]["footer"]["text"] for message in clip_messages(discord_fake, world.channel_id))
    assert footers == [f"Song {n} · job #1" for n in range(1, service.songs + 1)]  # each once, none twice
    assert paid_calls(service) == 1
