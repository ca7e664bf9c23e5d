"""Downloads: write errors and bounded reads of error bodies and API answers."""

from __future__ import annotations

import json
import resource
import signal
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.backends import BackendConfig, aimlapi_suno
from bot.backends.aimlapi_gateway import gateway_error
from bot.backends.base import ERROR_BODY_BYTES, MAX_ANSWER_BYTES, JsonClient
from bot.errors import AudioStoreError, MusicApiBadResponseError, MusicApiUnavailableError
from tests.downloads.support import MiB, fetch, nothing_left
from tests.fakes.hostile_files import MP3, HostileFileServer, Stream


async def test_a_full_disk_raises_audio_store_error_and_leaves_nothing(
    host: HostileFileServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    url = host.file("/clip.mp3", MP3 * 20)
    destination = tmp_path / "clip.download"
    destination.symlink_to("/dev/full")  # writes fail with ENOSPC, as on a full disk
    with pytest.raises(AudioStoreError, match="No space left on device"):
        await fetch(session, url, destination, trusted=[host.base_url])
    assert nothing_left(tmp_path)


@pytest.fixture
def file_size_limit() -> Iterator[int]:
    """RLIMIT_FSIZE for this process (root ignores read-only folders, not this), SIGXFSZ ignored so a write
    past it fails with EFBIG; both restored afterwards."""
    limit = 100_000
    previous_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, previous_limit[1]))
    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous_limit)
        signal.signal(signal.SIGXFSZ, previous_handler)


async def test_a_file_past_the_systems_limit_raises_audio_store_error(
    host: HostileFileServer, session: aiohttp.ClientSession, tmp_path: Path, file_size_limit: int
) -> None:
    url = host.file("/clip.mp3", MP3 * 20)
    assert len(MP3) * 20 > file_size_limit
    with pytest.raises(AudioStoreError, match="File too large"):
        await fetch(session, url, tmp_path / "clip.download", trusted=[host.base_url])
    assert nothing_left(tmp_path)


HUGE_ERROR = Stream(
    head=b"Internal error: ", chunk=b"x" * 64 * 1024, interval=0, total=150 * MiB, status=500, content_type="text/plain"
)


async def test_a_huge_error_body_on_a_download_is_read_only_a_few_kib(
    host: HostileFileServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    url = host.stream("/clip.mp3", HUGE_ERROR)
    with pytest.raises(MusicApiUnavailableError) as failed:
        await fetch(session, url, tmp_path / "a", trusted=[host.base_url])
    assert failed.value.status == 500
    assert failed.value.detail.startswith("HTTP 500: Internal error: xxx")
    assert len(failed.value.detail) < ERROR_BODY_BYTES
    await host.wait_finished("/clip.mp3")
    assert host.written["/clip.mp3"] < 16 * MiB  # socket buffers at most, never the 150 MiB
    assert nothing_left(tmp_path)


async def test_a_huge_error_body_on_an_api_call_is_read_only_a_few_kib(
    host: HostileFileServer, session: aiohttp.ClientSession
) -> None:
    host.stream("/", HUGE_ERROR)
    backend = aimlapi_suno.create(session, BackendConfig("aimlapi-suno", host.base_url, 5, 5, api_key="k"))
    for _ in range(3):  # as the poller's retries would
        with pytest.raises(MusicApiUnavailableError, match="HTTP 500: Internal error: xxx"):
            await backend.poll(["clip"])
    await host.wait_finished("/")
    assert host.written["/"] < 3 * 16 * MiB


@pytest.mark.parametrize("declared", [True, False])
async def test_an_answer_over_the_cap_is_a_bad_response(
    declared: bool, host: HostileFileServer, session: aiohttp.ClientSession
) -> None:
    size = MAX_ANSWER_BYTES + 1024 * 1024
    stream = Stream(
        head=b'[{"id": "clip", "status": "complete", "padding": "',
        chunk=b"x" * 64 * 1024,
        interval=0,
        total=size,
        content_type="application/json",
        length=size if declared else None,
    )
    host.stream("/", stream)
    backend = aimlapi_suno.create(session, BackendConfig("aimlapi-suno", host.base_url, 5, 5, api_key="k"))
    with pytest.raises(MusicApiBadResponseError, match="answer larger than 2 MiB"):
        await backend.poll(["clip"])


async def test_answers_under_the_cap_are_parsed_large_ones_off_the_loop(
    host: HostileFileServer, session: aiohttp.ClientSession
) -> None:
    clip = {"id": "c1", "status": "complete", "audio_url": "https://cdn1.suno.ai/c1.mp3", "lyric": "la " * 200_000}
    host.file("/", json.dumps([clip]).encode(), "application/json")
    client = JsonClient(session, host.base_url, gateway_error)
    answer = await client.request("GET", "/")
    assert isinstance(answer, list)
    assert answer[0]["id"] == "c1"
