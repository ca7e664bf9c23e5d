"""The `acestep` adapter: the request it sends, its answers read as untrusted (the envelope, `result` decoded twice,
integer statuses, unknown ids), its errors, its models read from the server, and its key kept to its own origin."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from bot.backends import BackendConfig
from bot.backends.acestep import AceStepBackend, request_body
from bot.backends.acestep_answers import (
    TaskLostError,
    acestep_error,
    file_url,
    parse_models,
    parse_results,
    parse_submission,
    unwrap,
)
from bot.backends.downloads import download_audio
from bot.backends.fetch_policy import UrlPolicy
from bot.errors import (
    MusicApiAuthError,
    MusicApiBadResponseError,
    MusicApiGenerationFailedError,
    MusicApiInvalidRequestError,
    MusicApiRateLimitedError,
    MusicApiUnavailableError,
)
from bot.models import ClipStatus, FailureReason, GenerationMode, GenerationRequest
from tests.fakes.acestep import FakeAceStepApi

BASE = "http://127.0.0.1:8001"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def config(base_url: str, api_key: str = "") -> BackendConfig:
    return BackendConfig("acestep", base_url, request_timeout=2, wait_audio_timeout=5, api_key=api_key)


@pytest.mark.parametrize(
    ("request_", "body"),
    [
        (
            GenerationRequest(GenerationMode.DESCRIPTION, "a love song"),
            {"batch_size": 2, "audio_format": "mp3", "sample_query": "a love song", "thinking": True},
        ),
        (
            GenerationRequest(GenerationMode.DESCRIPTION, "lofi", instrumental=True, duration_seconds=60, model="m2"),
            {
                "batch_size": 2,
                "audio_format": "mp3",
                "sample_query": "lofi (instrumental)",
                "thinking": True,
                "audio_duration": 60,
                "model": "m2",
            },
        ),
        (
            GenerationRequest(GenerationMode.DESCRIPTION, "an instrumental jam", instrumental=True),
            {"batch_size": 2, "audio_format": "mp3", "sample_query": "an instrumental jam", "thinking": True},
        ),
        (
            GenerationRequest(GenerationMode.CUSTOM, "[Verse] la", title="T", tags="pop"),
            {"batch_size": 2, "audio_format": "mp3", "prompt": "pop", "lyrics": "[Verse] la"},
        ),
        (
            GenerationRequest(GenerationMode.CUSTOM, "", instrumental=True, title="T", tags="ambient"),
            {"batch_size": 2, "audio_format": "mp3", "prompt": "ambient", "lyrics": "[Instrumental]"},
        ),
    ],
)
def test_request_body(request_: GenerationRequest, body: dict[str, Any]) -> None:
    assert request_body(request_) == body


def entry(task_id: str, status: object, items: object) -> dict[str, Any]:
    return {"task_id": task_id, "status": status, "result": json.dumps(items)}


def test_results_are_decoded_twice_and_mapped_per_take() -> None:
    done = [
        {"file": "/v1/audio?path=%2Fa.mp3", "status": 1, "prompt": "folk", "lyrics": "la", "metas": {"duration": 61}},
        {"file": "/v1/audio?path=%2Fb.mp3", "status": 1, "dit_model": "acestep-v15-turbo", "metas": "junk"},
    ]
    running = [{"file": "", "status": 0, "progress": 0.456, "stage": "DiT"}]
    queued = [{"file": "", "status": 0, "progress": 0.0, "stage": "queued"}]
    data = [entry("t1", 1, done), entry("t2", 0, running), entry("t3", 0, queued), entry("other", 1, done)]
    first, second, third = parse_results(["t1", "t2", "t3"], data, BASE + "/prefix/")
    assert first.done
    assert [clip.id for clip in first.clips] == ["t1:1", "t1:2"]
    assert first.clips[0].audio_url == BASE + "/prefix/v1/audio?path=%2Fa.mp3"  # joined like the API's routes
    assert (first.clips[0].tags, first.clips[0].lyrics, first.clips[0].duration) == ("folk", "la", 61.0)
    assert first.clips[1].duration is None
    assert first.clips[1].model_name == "acestep-v15-turbo"
    assert all(clip.has_audio for clip in first.clips)
    assert not second.done
    assert {clip.status for clip in second.clips} == {ClipStatus.STREAMING}
    assert second.progress is not None
    assert second.progress.fraction == 0.46
    assert {clip.status for clip in third.clips} == {ClipStatus.QUEUED}
    assert third.progress is None  # its place is the one release_task gave


def test_an_unknown_id_is_reported_lost_and_left_to_the_deadline() -> None:
    (update,) = parse_results(["gone"], [{"task_id": "gone", "result": "[]", "status": 0}], BASE)
    assert not update.done
    assert update.clips == ()
    assert isinstance(update.error, TaskLostError)
    assert update.error.reason is FailureReason.DEADLINE
    assert "probably restarted" in update.error.detail


@pytest.mark.parametrize(
    ("status", "items", "done"),
    [
        (7, [{"status": 0}], False),  # an unknown status counts as still running
        (True, [{"status": 0}], False),
        (0, "not json", False),
        (1, "not json", True),
    ],
)
def test_odd_statuses_and_results(status: object, items: object, done: bool) -> None:
    raw = {"task_id": "t", "status": status, "result": items if isinstance(items, str) else json.dumps(items)}
    (update,) = parse_results(["t"], [raw], BASE)
    assert update.done is done
    assert update.error is None
    if done:
        assert [clip.status for clip in update.clips] == [ClipStatus.ERROR, ClipStatus.ERROR]


def test_failures_fewer_takes_and_files_that_are_not_there() -> None:
    failed, short, empty = parse_results(
        ["f", "s", "e"],
        [
            entry("f", 2, [{"file": "", "status": 2, "error": "CUDA out of memory"}]),
            entry("s", 1, [{"file": "/v1/audio?path=%2Fa.mp3", "status": 1}]),
            entry("e", 1, [{"file": "", "status": 1}, {"file": "x" * 3000, "status": 1}]),
        ],
        BASE,
    )
    assert isinstance(failed.error, MusicApiGenerationFailedError)
    assert failed.error.detail == "CUDA out of memory"
    assert [clip.error_message for clip in failed.clips] == ["CUDA out of memory"] * 2
    (cached,) = parse_results(["f"], [entry("f", 2, [{"file": "", "status": 2}])], BASE)
    assert cached.error is not None
    assert cached.error.detail == "ACE-Step could not make the songs"
    assert [clip.status for clip in short.clips] == [ClipStatus.COMPLETE, ClipStatus.ERROR]
    assert [clip.has_audio for clip in empty.clips] == [False, False]


def test_answers_are_checked() -> None:
    with pytest.raises(MusicApiBadResponseError):
        parse_results(["t"], {"t": 1}, BASE)
    with pytest.raises(MusicApiBadResponseError):
        parse_submission({"task_id": "../../etc"})
    with pytest.raises(MusicApiBadResponseError):
        parse_submission({"task_id": "x" * 200})
    with pytest.raises(MusicApiBadResponseError):
        unwrap({"detail": "not an envelope"})
    with pytest.raises(MusicApiUnavailableError, match="format_sample failed"):
        unwrap({"data": None, "code": 500, "error": "format_sample failed", "timestamp": 1, "extra": None})
    submission = parse_submission({"task_id": "abc-1", "status": "queued", "queue_position": 3})
    assert submission.poll_keys == ("abc-1",)
    assert submission.progress is not None
    assert submission.progress.queue_position == 3
    assert parse_submission({"task_id": "abc-1", "queue_position": True}).progress is None


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, MusicApiAuthError),
        (429, MusicApiRateLimitedError),
        (400, MusicApiInvalidRequestError),
        (415, MusicApiInvalidRequestError),
        (403, MusicApiInvalidRequestError),
        (500, MusicApiUnavailableError),
        (503, MusicApiUnavailableError),
    ],
)
def test_errors(status: int, kind: type) -> None:
    error = acestep_error(status, '{"detail": "Server busy: queue is full"}')
    assert type(error) is kind
    assert "Server busy: queue is full" in error.detail
    assert acestep_error(429, "").nothing_created


def test_file_urls() -> None:
    assert file_url(BASE, "/v1/audio?path=%2Fx.mp3") == BASE + "/v1/audio?path=%2Fx.mp3"
    assert file_url(BASE, "https://cdn.example.org/x.mp3") == "https://cdn.example.org/x.mp3"
    assert file_url(BASE, "//elsewhere.example/x.mp3") == "http://elsewhere.example/x.mp3"  # for the policy to judge


def test_models_read_from_the_server_are_capped() -> None:
    listed = [{"name": f"m{n}", "is_default": n == 3} for n in range(40)] + [{"name": "x" * 101}, "junk"]
    capabilities = parse_models({"models": listed, "default_model": "not-listed"})
    assert capabilities is not None
    assert len(capabilities.model_names) == 25
    assert capabilities.default_model == "m3"
    assert capabilities.outputs_per_request == 2
    assert not capabilities.cover_art
    assert parse_models({"models": [], "default_model": None}) is None
    with pytest.raises(MusicApiBadResponseError):
        parse_models({"models": "m1"})


async def test_the_probe_and_the_model_list(session: aiohttp.ClientSession) -> None:
    async with FakeAceStepApi(api_key="k", models=("acestep-v15-base", "acestep-v15-sft")) as ace:
        backend = AceStepBackend(session, config(ace.base_url, "k"))
        assert backend.capabilities.model_names == ("acestep-v15-turbo",)  # asking starts a read
        for _ in range(100):
            if backend.capabilities.model_names != ("acestep-v15-turbo",):
                break
            await asyncio.sleep(0.01)
        assert backend.capabilities.model_names == ("acestep-v15-base", "acestep-v15-sft")
        assert backend.capabilities.default_model == "acestep-v15-base"
        words = await backend.probe()
        assert words.startswith("answers and accepts the key; models: acestep-v15-base (default), acestep-v15-sft")
        assert "queue 0 of 200 waiting" in words
        assert not ace.tasks
        with pytest.raises(MusicApiAuthError):
            await AceStepBackend(session, config(ace.base_url)).probe()
        ace.models = ()
        with pytest.raises(MusicApiUnavailableError, match="no model"):
            await backend.probe()
    async with FakeAceStepApi() as keyless:
        assert "needs no key" in await AceStepBackend(session, config(keyless.base_url)).probe()


async def test_the_key_goes_to_the_servers_own_files_only(session: aiohttp.ClientSession, tmp_path: Path) -> None:
    """The own origin's files get the key; a host its redirect names (however it is allowed) never does."""
    seen: dict[str, str | None] = {}

    async def own(request: web.Request) -> web.StreamResponse:
        seen["own"] = request.headers.get("Authorization")
        raise web.HTTPFound(f"http://127.0.0.1:{other_port}/file.mp3")

    async def other(request: web.Request) -> web.StreamResponse:
        seen["other"] = request.headers.get("Authorization")
        return web.Response(body=b"ID3" + bytes(100), content_type="audio/mpeg")

    runners = []
    ports = []
    for handler in (own, other):
        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        ports.append(runner.addresses[0][1])
    own_port, other_port = ports

    class LetEverythingThrough(UrlPolicy):
        async def check(self, url: str | URL) -> URL:
            return URL(url)

    try:
        origin = f"http://127.0.0.1:{own_port}"
        downloaded = await download_audio(
            session,
            f"{origin}/v1/audio?path=x",
            tmp_path / "take.mp3",
            max_bytes=10_000,
            time_limit=5,
            min_bytes_per_second=0,
            policy=LetEverythingThrough([origin]),
            read_timeout=2,
            error_for_status=acestep_error,
            origin_headers={"Authorization": "Bearer k"},
        )
    finally:
        for runner in runners:
            await runner.cleanup()
    assert downloaded.format == "mp3"
    assert seen == {"own": "Bearer k", "other": None}
