"""Downloads: the address policy at every hop, the resolver and the connector."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.backends import BackendConfig, create_downloader
from bot.backends.aimlapi_gateway import gateway_error
from bot.backends.base import DownloadedAudio
from bot.backends.downloads import AudioDownloader
from bot.backends.fetch_policy import (
    PublicAddressResolver,
    RefusedAddressError,
    UrlPolicy,
    address_refusal,
    is_public_http_url,
    make_connector,
)
from bot.errors import MusicApiAuthError, MusicApiTimeoutError, UnsafeUrlError
from tests.downloads.support import MiB, fetch, names, nothing_left
from tests.fakes.hostile_files import MP3, HostileFileServer, Stream

UNSAFE_WORDS = "the music service gave a file address the bot will not fetch ("


@pytest.fixture
async def other_host() -> AsyncIterator[HostileFileServer]:
    async with HostileFileServer() as server:
        yield server


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
