"""Fetching a result file to disk: every redirect hop checked, audio recognised, time and pace bounded, no
partial file left behind; AudioDownloader is that, set up once for the chosen backend."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO

import aiohttp
from yarl import URL

from bot.backends.base import DownloadedAudio, read_error_text
from bot.backends.fetch_policy import (
    SNIFF_BYTES,
    DownloadPace,
    RefusedAddressError,
    UrlPolicy,
    refuse_unless_audio,
    refuse_unless_audio_type,
    unsafe_address_error,
)
from bot.errors import (
    AudioStoreError,
    AudioTooLargeError,
    DownloadTooSlowError,
    MusicApiError,
    MusicApiTimeoutError,
    MusicApiUnavailableError,
    UnsafeUrlError,
)

DOWNLOAD_CHUNK_BYTES = 64 * 1024
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PACE_WINDOW_SECONDS = 10.0


class AudioDownloader:
    """Result files of one backend, over the shared session: its own origin trusted (a self-hosted server on
    localhost serves its files there), its error answers typed, HTTP_TIMEOUT_SECONDS as the read timeout and
    DOWNLOAD_MIN_BYTES_PER_SECOND as the pace. The providers' file links are public or signed; a self-hosted
    server that keeps its files behind its key is sent `origin_headers`, on its own origin only (never to a
    host a redirect points at)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        trusted_origin: str,
        read_timeout: float,
        min_bytes_per_second: int,
        error_for_status: Callable[[int, str], MusicApiError],
        origin_headers: Mapping[str, str] | None = None,
    ) -> None:
        self._session = session
        self._policy = UrlPolicy([trusted_origin])
        self._read_timeout = read_timeout
        self._min_bytes_per_second = min_bytes_per_second
        self._error_for_status = error_for_status
        self._origin_headers = dict(origin_headers or {})

    async def download(self, url: str, destination: Path, *, max_bytes: int, time_limit: float) -> DownloadedAudio:
        """The file at `url` into `destination` within `time_limit` seconds; see download_audio for the errors."""
        return await download_audio(
            self._session,
            url,
            destination,
            max_bytes=max_bytes,
            time_limit=time_limit,
            min_bytes_per_second=self._min_bytes_per_second,
            policy=self._policy,
            read_timeout=self._read_timeout,
            error_for_status=self._error_for_status,
            origin_headers=self._origin_headers,
        )


async def download_audio(
    session: aiohttp.ClientSession,
    url: str,
    destination: Path,
    *,
    max_bytes: int,
    time_limit: float,
    min_bytes_per_second: int,
    policy: UrlPolicy,
    read_timeout: float,
    error_for_status: Callable[[int, str], MusicApiError],
    pace_window: float = PACE_WINDOW_SECONDS,
    origin_headers: Mapping[str, str] | None = None,
) -> DownloadedAudio:
    """Streams an audio file to `destination` off the event loop, and says what it is.

    Every hop (redirects are followed here, at most MAX_REDIRECTS) is checked by `policy`: UnsafeUrlError.
    A content type or first bytes that are not audio: NotAudioError, before anything is written. Past
    `max_bytes`, declared or counted: AudioTooLargeError. Longer than `time_limit` in all, or slower than the
    DownloadPace rule (`min_bytes_per_second` over `pace_window` seconds): DownloadTooSlowError. No data for
    `read_timeout`: MusicApiTimeoutError. A write that fails: AudioStoreError. On every failure, cancellation
    included, `destination` is removed. `origin_headers` go with the hops on the policy's trusted origin only.
    """
    limits = aiohttp.ClientTimeout(total=None, sock_connect=read_timeout, sock_read=read_timeout)
    whole = asyncio.timeout(time_limit)
    try:
        async with whole, _follow_redirects(session, url, policy, limits, origin_headers or {}) as response:
            if response.status != 200:
                raise error_for_status(response.status, await read_error_text(response))
            refuse_unless_audio_type(response.content_type)
            pace = DownloadPace(min_bytes_per_second, window=pace_window, started=asyncio.get_running_loop().time())
            return await _stream_to_file(response, destination, max_bytes=max_bytes, pace=pace)
    except TimeoutError as exc:
        if whole.expired():
            raise DownloadTooSlowError(f"the download did not finish within {time_limit:.1f} s") from exc
        raise MusicApiTimeoutError(f"the download got no data for {read_timeout:.0f} s") from exc
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, RefusedAddressError):
            raise unsafe_address_error(f"{exc.host}:{exc.port}", exc.os_error) from exc
        raise MusicApiUnavailableError(f"download failed: {type(exc).__name__}: {exc}") from exc
    except aiohttp.ClientError as exc:
        raise MusicApiUnavailableError(f"download failed: {type(exc).__name__}: {exc}") from exc


@asynccontextmanager
async def _follow_redirects(
    session: aiohttp.ClientSession,
    url: str,
    policy: UrlPolicy,
    limits: aiohttp.ClientTimeout,
    origin_headers: Mapping[str, str],
) -> AsyncIterator[aiohttp.ClientResponse]:
    """The first answer that is not a redirect, every hop checked by the policy before it is requested (and
    sent `origin_headers` only when it is on the trusted origin)."""
    hop = await policy.check(url)
    for _ in range(MAX_REDIRECTS + 1):
        headers = dict(origin_headers) if origin_headers and policy.trusts(hop) else None
        async with session.get(hop, allow_redirects=False, timeout=limits, headers=headers) as response:
            location = response.headers.get("Location") if response.status in REDIRECT_STATUSES else None
            if location is None:
                yield response
                return
        try:
            target = hop.join(URL(location))
        except ValueError:
            target = URL()  # refused by the policy as not a web address
        hop = await policy.check(target)
    raise UnsafeUrlError(f"the music service's file address redirects more than {MAX_REDIRECTS} times")


async def _stream_to_file(
    response: aiohttp.ClientResponse, destination: Path, *, max_bytes: int, pace: DownloadPace
) -> DownloadedAudio:
    head = await _read_paced(response, pace, SNIFF_BYTES, until_full=True)
    audio_format = refuse_unless_audio(head)
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        raise AudioTooLargeError(declared, max_bytes)
    file = _PartialFile(destination)
    try:
        written = 0
        chunk = head
        while chunk:
            written += len(chunk)
            if written > max_bytes:
                raise AudioTooLargeError(None, max_bytes)
            await file.write(chunk)
            chunk = await _read_paced(response, pace, DOWNLOAD_CHUNK_BYTES)
        await file.close()
    except BaseException:
        await file.discard()
        raise
    return DownloadedAudio(size=written, format=audio_format)


async def _read_paced(
    response: aiohttp.ClientResponse, pace: DownloadPace, size: int, *, until_full: bool = False
) -> bytes:
    """Up to `size` bytes of the body (exactly `size` unless it ends, with `until_full`); b"" at its end."""
    received = b""
    while True:
        timer = asyncio.timeout_at(pace.give_up_at())
        try:
            async with timer:
                chunk = await response.content.read(size - len(received))
        except TimeoutError as exc:
            if timer.expired():
                raise DownloadTooSlowError(pace.describe()) from exc
            raise
        pace.record(asyncio.get_running_loop().time(), len(chunk))
        received += chunk
        if not (until_full and chunk and len(received) < size):
            return received


class _PartialFile:
    """The file being written: an OSError becomes AudioStoreError, and discard() leaves nothing behind."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: BinaryIO | None = None
        self._running: asyncio.Future[None] | None = None

    async def write(self, chunk: bytes) -> None:
        if self._handle is None:
            await self._in_thread(self._open)
        assert self._handle is not None
        await self._in_thread(self._handle.write, chunk)

    async def close(self) -> None:
        if self._handle is not None:
            await self._in_thread(self._handle.close)

    async def discard(self) -> None:
        """Closes and removes the file once a write or open still running in its thread has ended (else a late
        open would leave a file behind); if this wait is cancelled too, as soon as that thread ends."""
        running = self._running
        if running is not None and not running.done():
            try:
                await asyncio.shield(running)
            except asyncio.CancelledError:
                running.add_done_callback(self._discard_after)
                raise
            except Exception:  # the write's own error is already being raised
                pass
        self._remove()

    def _remove(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)

    def _open(self) -> None:
        self._handle = self.path.open("wb")

    async def _in_thread(self, operation: Callable[..., object], *args: object) -> None:
        self._running = asyncio.ensure_future(asyncio.to_thread(_ignore_result, operation, *args))
        try:
            await asyncio.shield(self._running)
        except OSError as exc:
            raise AudioStoreError(f"could not write the audio file: {exc.strerror or exc}") from exc

    def _discard_after(self, operation: asyncio.Future[None]) -> None:
        if not operation.cancelled():
            operation.exception()  # looked at, so asyncio does not log it as never retrieved
        self._remove()


def _ignore_result(operation: Callable[..., object], *args: object) -> None:
    operation(*args)
