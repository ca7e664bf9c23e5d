"""Result-file downloads against a hostile file host on 127.0.0.1: address policy at every hop, the resolver,
audio recognition, time and pace limits, write errors, and bounded reads of API answers and error bodies."""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.backends import BackendConfig, aimlapi_suno, create_downloader
from bot.backends.aimlapi_gateway import gateway_error
from bot.backends.base import ERROR_BODY_BYTES, MAX_ANSWER_BYTES, DownloadedAudio, JsonClient
from bot.backends.downloads import AudioDownloader, download_audio
from bot.backends.fetch_policy import (
    DownloadPace,
    PublicAddressResolver,
    RefusedAddressError,
    UrlPolicy,
    address_refusal,
    is_public_http_url,
    make_connector,
    sniff_audio_format,
)
from bot.errors import (
    AudioStoreError,
    AudioTooLargeError,
    DownloadTooSlowError,
    MusicApiAuthError,
    MusicApiBadResponseError,
    MusicApiTimeoutError,
    MusicApiUnavailableError,
    NotAudioError,
    UnsafeUrlError,
)
from tests.fakes.hostile_files import FLAC, M4A, MP3, OGG, WAV, HostileFileServer, Stream

MiB = 1024 * 1024
UNSAFE_WORDS = "the music service gave a file address the bot will not fetch ("


@pytest.fixture
async def host() -> AsyncIterator[HostileFileServer]:
    async with HostileFileServer() as server:
        yield server


@pytest.fixture
async def other_host() -> AsyncIterator[HostileFileServer]:
    async with HostileFileServer() as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    destination: Path,
    *,
    trusted: list[str],
    max_bytes: int = 10 * MiB,
    time_limit: float = 10.0,
    min_bytes_per_second: int = 0,
    pace_window: float = 10.0,
) -> DownloadedAudio:
    return await download_audio(
        session,
        url,
        destination,
        max_bytes=max_bytes,
        time_limit=time_limit,
        min_bytes_per_second=min_bytes_per_second,
        policy=UrlPolicy(trusted),
        read_timeout=5.0,
        error_for_status=gateway_error,
        pace_window=pace_window,
    )


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def nothing_left(folder: Path) -> bool:
    return names(folder) == []


# ------------------------------------------------------------------------- the address policy


async def test_the_backends_own_origin_is_trusted(
    host: HostileFileServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    url = host.file("/clip.mp3", MP3)
    destination = tmp_path / "clip.download"
    assert await fetch(session, url, destination, trusted=[host.base_url]) == DownloadedAudio(len(MP3), "mp3")
    assert destination.read_bytes() == MP3


async def test_the_downloader_is_set_up_once_for_the_chosen_backend(
    host: HostileFileServer, other_host: HostileFileServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    config = BackendConfig("suno-api", host.base_url, request_timeout=5, wait_audio_timeout=5)
    downloader = create_downloader(session, config)
    destination = tmp_path / "clip.download"
    url = host.file("/clip.mp3", MP3)
    assert await downloader.download(url, destination, max_bytes=MiB, time_limit=5) == DownloadedAudio(len(MP3), "mp3")
    with pytest.raises(UnsafeUrlError):  # only the backend's own origin may be private
        await downloader.download(other_host.file("/x.mp3", MP3), tmp_path / "x", max_bytes=MiB, time_limit=5)
    refusal = Stream(head=b'{"error": "no"}', chunk=b"", interval=0, total=0, status=403, content_type="text/plain")
    host.stream("/gone.mp3", refusal)
    with pytest.raises(MusicApiAuthError, match="SUNO_COOKIE"):  # suno-api's own mapping, not the gateway's
        await downloader.download(host.url("/gone.mp3"), tmp_path / "y", max_bytes=MiB, time_limit=5)
    assert names(tmp_path) == ["clip.download"]


async def test_the_downloader_reads_with_the_timeout_it_was_given(
    host: HostileFileServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    downloader = AudioDownloader(
        session, trusted_origin=host.base_url, read_timeout=0.2, min_bytes_per_second=0, error_for_status=gateway_error
    )
    url = host.stream("/stalls.mp3", Stream(head=MP3, chunk=b"x", interval=5, total=None))
    with pytest.raises(MusicApiTimeoutError, match="got no data for"):
        await downloader.download(url, tmp_path / "stalls", max_bytes=MiB, time_limit=5)
    assert nothing_left(tmp_path)


async def test_a_redirect_to_another_port_on_loopback_is_refused_at_the_hop(
    host: HostileFileServer, other_host: HostileFileServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    other_host.file("/secret.mp3", MP3)
    url = host.redirect("/clip.mp3", other_host.url("/secret.mp3"))
    with pytest.raises(UnsafeUrlError) as refused:
        await fetch(session, url, tmp_path / "clip.download", trusted=[host.base_url])
    assert refused.value.detail == UNSAFE_WORDS + "a loopback address)"
    assert refused.value.retryable is False
    assert host.hits("/clip.mp3") == 1
    assert other_host.requests == []  # refused before it was asked
    assert nothing_left(tmp_path)


async def test_redirects_within_the_origin_are_followed_and_bounded(
    host: HostileFileServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    host.file("/final.mp3", MP3)
    host.redirect("/hop2", "/final.mp3", status=307)
    url = host.redirect("/hop1", host.url("/hop2"), status=301)
    assert (await fetch(session, url, tmp_path / "a", trusted=[host.base_url])).format == "mp3"

    for index in range(7):
        host.redirect(f"/loop{index}", f"/loop{index + 1}")
    with pytest.raises(UnsafeUrlError, match="redirects more than 5 times"):
        await fetch(session, host.url("/loop0"), tmp_path / "b", trusted=[host.base_url])
    assert host.hits("/loop6") == 0

    url = host.redirect("/to-file", "file:///etc/passwd")
    with pytest.raises(UnsafeUrlError, match="not an http or https address"):
        await fetch(session, url, tmp_path / "c", trusted=[host.base_url])
    assert names(tmp_path) == ["a"]  # only the one that succeeded


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://10.1.2.3/a.mp3", "a private or reserved address"),
        ("http://192.168.0.10/a.mp3", "a private or reserved address"),
        ("http://169.254.169.254/latest/meta-data/", "a link-local or cloud metadata address"),
        ("http://100.100.100.200/latest/meta-data/", "a carrier-grade NAT or cloud metadata address"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "a private or reserved address"),
        ("http://[::1]:8080/a.mp3", "a loopback address"),
        ("http://[::ffff:127.0.0.1]/a.mp3", "a loopback address"),
        ("http://[::ffff:169.254.169.254]/", "a link-local or cloud metadata address"),
        ("http://[fe80::1]/a.mp3", "a link-local or cloud metadata address"),
        ("http://224.0.0.1/a.mp3", "a multicast address"),
        ("http://0.0.0.0:3000/a.mp3", "an unspecified address"),
        ("http://240.0.0.1/a.mp3", "a private or reserved address"),
        ("http://127.1/a.mp3", "a loopback address"),
        ("http://2130706433/a.mp3", "a loopback address"),
        ("http://localhost/a.mp3", "a loopback address"),
        ("file:///etc/passwd", "not an http or https address"),
        ("ftp://files.example.com/a.mp3", "not an http or https address"),
        ("http://[::1/a.mp3", "not a valid web address"),
    ],
)
async def test_non_public_and_non_web_addresses_are_refused(url: str, why: str) -> None:
    with pytest.raises(UnsafeUrlError) as refused:
        await UrlPolicy(["http://127.0.0.1:3000"]).check(url)
    assert refused.value.detail == f"{UNSAFE_WORDS}{why})"


async def test_refused_before_any_connection(session: aiohttp.ClientSession, tmp_path: Path) -> None:
    for url in ("http://169.254.169.254/latest/meta-data/", "file:///etc/passwd"):
        with pytest.raises(UnsafeUrlError):
            await fetch(session, url, tmp_path / "clip.download", trusted=["https://api.aimlapi.com"])
    assert nothing_left(tmp_path)


async def test_public_literals_pass_and_the_origin_includes_the_port() -> None:
    policy = UrlPolicy(["http://127.0.0.1:3000"])
    assert str(await policy.check("https://93.184.216.34/a.mp3")) == "https://93.184.216.34/a.mp3"
    assert (await policy.check("http://127.0.0.1:3000/a.mp3")).port == 3000
    with pytest.raises(UnsafeUrlError, match="a loopback address"):
        await policy.check("http://127.0.0.1:3001/a.mp3")
    with pytest.raises(UnsafeUrlError, match="a loopback address"):
        await policy.check("https://127.0.0.1:3000/a.mp3")  # another scheme is another origin


async def test_localhost_on_an_untrusted_port_is_refused(
    host: HostileFileServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    host.file("/clip.mp3", MP3)
    port = int(host.base_url.rsplit(":", 1)[1])
    with pytest.raises(UnsafeUrlError, match="a loopback address"):
        await fetch(session, f"http://localhost:{port}/clip.mp3", tmp_path / "a", trusted=["http://localhost:3000"])
    assert host.requests == []


async def test_the_resolver_refuses_non_public_answers_unless_the_origin_is_trusted() -> None:
    resolver = PublicAddressResolver(["http://localhost:3000"])
    with pytest.raises(RefusedAddressError, match="localhost resolves to a loopback address"):
        await resolver.resolve("localhost", 3001, socket.AF_UNSPEC)
    answers = await resolver.resolve("localhost", 3000, socket.AF_UNSPEC)
    assert {answer["host"] for answer in answers} <= {"127.0.0.1", "::1"}
    assert answers
    await resolver.close()


async def test_the_connector_refuses_the_address_the_policy_did_not_see(
    host: HostileFileServer, tmp_path: Path
) -> None:
    """The policy trusts the name, as if DNS had answered a public address at check time; the connection's
    own lookup answers loopback, and the shared session's connector refuses it."""
    host.file("/clip.mp3", MP3)
    port = int(host.base_url.rsplit(":", 1)[1])
    url = f"http://localhost:{port}/clip.mp3"
    async with aiohttp.ClientSession(connector=make_connector(["http://localhost:3000"])) as shared:
        with pytest.raises(UnsafeUrlError, match="a loopback address"):
            await fetch(shared, url, tmp_path / "a", trusted=[f"http://localhost:{port}"])
    assert host.requests == []
    async with aiohttp.ClientSession(connector=make_connector([f"http://localhost:{port}"])) as shared:
        downloaded = await fetch(shared, url, tmp_path / "b", trusted=[f"http://localhost:{port}"])
    assert downloaded.format == "mp3"


def test_address_rules() -> None:
    import ipaddress

    public = ["8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
    assert all(address_refusal(ipaddress.ip_address(address)) is None for address in public)
    private = ["172.16.0.1", "100.64.0.1", "fc00::1", "fec0::1", "2002:7f00:1::", "64:ff9b::a9fe:a9fe", "ff02::1"]
    assert all(address_refusal(ipaddress.ip_address(address)) is not None for address in private)


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("https://cdn1.suno.ai/image_abc.png", True),
        ("http://93.184.216.34/cover.png", True),
        ("https://user:secret@cdn1.suno.ai/image.png", False),
        ("http://localhost:3000/image.png", False),
        ("http://app.localhost/image.png", False),
        ("http://10.0.0.5/image.png", False),
        ("http://[::1]/image.png", False),
        ("http://169.254.169.254/", False),
        ("http://0x7f000001/image.png", False),
        ("javascript:alert(1)", False),
        ("ftp://cdn.example.com/image.png", False),
        ("not a url", False),
        ("", False),
    ],
)
def test_thumbnail_addresses_are_checked_without_dns(url: str, public: bool) -> None:
    assert is_public_http_url(url) is public


# ------------------------------------------------------------------------- what arrives must be audio


@pytest.mark.parametrize(
    ("body", "content_type", "audio_format"),
    [
        (MP3, "audio/mpeg", "mp3"),
        (b"\xff\xfb\x90\x64" + bytes(500), "audio/mpeg", "mp3"),
        (WAV, "audio/wav", "wav"),
        (FLAC, "audio/flac", "flac"),
        (OGG, "application/ogg", "ogg"),
        (M4A, "audio/mp4", "m4a"),
        (MP3, "application/octet-stream", "mp3"),
        (WAV, "binary/octet-stream", "wav"),
    ],
)
async def test_audio_is_accepted_with_its_format(
    body: bytes,
    content_type: str,
    audio_format: str,
    host: HostileFileServer,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    url = host.file("/clip", body, content_type)
    destination = tmp_path / "clip.download"
    downloaded = await fetch(session, url, destination, trusted=[host.base_url])
    assert downloaded == DownloadedAudio(len(body), audio_format)
    assert destination.read_bytes() == body


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (json.dumps({"error": "not found"}).encode(), "audio/mpeg", "its first bytes are not MP3, WAV, FLAC, Ogg"),
        (b"<!doctype html><html><body>Sign in</body></html>", "text/html", "it was sent as text/html"),
        (json.dumps({"audio": "x"}).encode(), "application/json", "it was sent as application/json"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "image/png", "it was sent as image/png"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "application/octet-stream", "its first bytes are not"),
        (b"\xff\x00" + bytes(100), "audio/mpeg", "its first bytes are not"),
        (b"", "audio/mpeg", "the music service's file is empty"),
    ],
)
async def test_what_is_not_audio_is_refused_and_nothing_is_kept(
    body: bytes,
    content_type: str,
    words: str,
    host: HostileFileServer,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    url = host.file("/clip.mp3", body, content_type)
    with pytest.raises(NotAudioError, match=words) as refused:
        await fetch(session, url, tmp_path / "clip.download", trusted=[host.base_url])
    assert refused.value.detail.startswith("the music service's file is")
    assert refused.value.retryable is False
    assert nothing_left(tmp_path)


def test_sniffing_needs_only_the_first_bytes() -> None:
    assert sniff_audio_format(b"ID3") == "mp3"
    assert sniff_audio_format(b"\xff\xe0") == "mp3"
    assert sniff_audio_format(b"\xff\xd8\xff\xe0") is None  # a JPEG
    assert sniff_audio_format(b"RIFF\x00\x00\x00\x00AVI ") is None
    assert sniff_audio_format(b"") is None


# ------------------------------------------------------------------------- size, time and pace


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


# ------------------------------------------------------------------------- write errors


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


# ------------------------------------------------------------------------- bounded reads


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
