"""Downloads: size, whole-download time and minimum pace limits, and cancellation."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from bot.backends.fetch_policy import DownloadPace
from bot.errors import AudioTooLargeError, DownloadTooSlowError
from tests.downloads.support import MiB, fetch, nothing_left
from tests.fakes.hostile_files import MP3, HostileFileServer, Stream


async def test_too_large_declared_or_counted_leaves_nothing(
    host: HostileFileServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    url = host.file("/declared.mp3", MP3)
    with pytest.raises(AudioTooLargeError) as declared:
        await fetch(session, url, tmp_path / "a", trusted=[host.base_url], max_bytes=1000)
    assert declared.value.size == len(MP3)
    url = host.stream("/chunked.mp3", Stream(head=MP3[:4096], chunk=bytes(4096), interval=0, total=20_000))
    with pytest.raises(AudioTooLargeError) as counted:
        await fetch(session, url, tmp_path / "b", trusted=[host.base_url], max_bytes=10_000)
    assert counted.value.size is None
    assert nothing_left(tmp_path)


async def test_a_dribbling_server_is_cut_off_by_the_minimum_pace(
    host: HostileFileServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    url = host.stream("/slow.mp3", Stream(head=MP3[:16], chunk=b"\x00" * 10, interval=0.1, total=None))  # ~100 B/s
    started = time.monotonic()
    with pytest.raises(DownloadTooSlowError, match="fell below 1000 bytes/s over 1 s") as slow:
        await fetch(session, url, tmp_path / "a", trusted=[host.base_url], min_bytes_per_second=1000, pace_window=1.0)
    assert time.monotonic() - started < 1.0 + 3.0
    assert slow.value.retryable is False
    assert nothing_left(tmp_path)


async def test_a_server_that_stops_sending_is_cut_off_by_the_pace_too(
    host: HostileFileServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    url = host.stream("/stalled.mp3", Stream(head=MP3, chunk=b"", interval=60, total=None))
    started = time.monotonic()
    with pytest.raises(DownloadTooSlowError, match="fell below"):
        await fetch(session, url, tmp_path / "a", trusted=[host.base_url], min_bytes_per_second=1, pace_window=1.0)
    assert time.monotonic() - started < 1.0 + 3.0  # the read time-out (5 s) was not what ended it
    assert nothing_left(tmp_path)


async def test_the_whole_download_limit_holds_while_bytes_keep_coming_fast_enough(
    host: HostileFileServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    url = host.stream("/endless.mp3", Stream(head=MP3, chunk=bytes(1000), interval=0.05, total=None))  # ~20 kB/s
    started = time.monotonic()
    with pytest.raises(DownloadTooSlowError, match=r"did not finish within 2\.0 s"):
        await fetch(
            session,
            url,
            tmp_path / "a",
            trusted=[host.base_url],
            time_limit=2.0,
            min_bytes_per_second=1000,
            pace_window=1.0,
        )
    assert time.monotonic() - started < 2.0 + 3.0
    assert host.written["/endless.mp3"] > 2 * 1000 * 2  # it was fast enough for the pace rule
    assert nothing_left(tmp_path)


def test_the_pace_rule_over_a_sliding_window() -> None:
    pace = DownloadPace(100, window=10.0, started=0.0)  # 1000 bytes in any 10 s, from t=10
    assert pace.give_up_at() == 10.0
    pace.record(1.0, 500)
    pace.record(2.0, 600)
    assert pace.give_up_at() == 11.0  # the first 500 bytes leave the window at t=11
    pace.record(11.5, 900)
    assert pace.give_up_at() == 12.0  # 600 + 900 until t=12, then 900 alone is too little
    assert DownloadPace(0, window=10.0, started=0.0).give_up_at() is None


async def test_a_cancelled_download_leaves_nothing(
    host: HostileFileServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    url = host.stream("/long.mp3", Stream(head=MP3, chunk=bytes(64 * 1024), interval=0.01, total=None))
    download = asyncio.create_task(fetch(session, url, tmp_path / "a", trusted=[host.base_url], max_bytes=100 * MiB))
    await host.wait_written("/long.mp3", 512 * 1024)
    download.cancel()
    with pytest.raises(asyncio.CancelledError):
        await download
    await asyncio.sleep(0.2)  # a write still running in its thread removes the file when it ends
    assert nothing_left(tmp_path)
