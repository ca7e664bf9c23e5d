"""A file host that misbehaves on demand: wrong content, redirects, dribbled or endless bodies, huge errors."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(range(256)) * 64
WAV = b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(2000)
FLAC = b"fLaC\x00\x00\x00\x22" + bytes(2000)
OGG = b"OggS\x00\x02" + bytes(2000)
M4A = b"\x00\x00\x00\x20ftypM4A " + bytes(2000)


@dataclass(frozen=True)
class Stream:
    """A body sent as `head`, then `chunk` every `interval` seconds until `total` bytes (None: until the
    client leaves). `length` is the Content-Length announced, if any."""

    head: bytes
    chunk: bytes
    interval: float
    total: int | None
    status: int = 200
    content_type: str = "audio/mpeg"
    length: int | None = None


class HostileFileServer(LoopbackServer):
    """Paths are armed with `file`, `redirect` or `stream`; `written[path]` counts the body bytes each stream
    managed to hand to the socket, and `finished` holds the paths whose stream handler has returned."""

    def __init__(self) -> None:
        self.requests = []
        self._interceptions = {}
        self._files: dict[str, tuple[bytes, str]] = {}
        self._redirects: dict[str, tuple[str, int]] = {}
        self._streams: dict[str, Stream] = {}
        self.written: defaultdict[str, int] = defaultdict(int)
        self.finished: deque[str] = deque()
        self._progress = asyncio.Event()

    def url(self, path: str) -> str:
        return self.base_url + path

    def file(self, path: str, body: bytes, content_type: str = "audio/mpeg") -> str:
        self._files[path] = (body, content_type)
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        self._redirects[path] = (location, status)
        return self.url(path)

    def stream(self, path: str, stream: Stream) -> str:
        self._streams[path] = stream
        return self.url(path)

    def hits(self, path: str) -> int:
        return sum(1 for request in self.requests if request.path == path)

    async def wait_written(self, path: str, at_least: int, timeout: float = 5.0) -> None:
        await self._wait_until(lambda: self.written[path] >= at_least, timeout)

    async def wait_finished(self, path: str, timeout: float = 5.0) -> None:
        await self._wait_until(lambda: path in self.finished, timeout)

    async def _wait_until(self, condition: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self._progress.clear()
                await self._progress.wait()

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._endpoint(None, self._handle))
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path in self._redirects:
            location, status = self._redirects[path]
            return web.Response(status=status, headers={"Location": location})
        if path in self._files:
            body, content_type = self._files[path]
            return web.Response(body=body, content_type=content_type)
        if path in self._streams:
            return await self._send_stream(request, self._streams[path])
        return web.Response(status=404, text="no such file")

    async def _send_stream(self, request: web.Request, stream: Stream) -> web.StreamResponse:
        response = web.StreamResponse(status=stream.status)
        response.content_type = stream.content_type
        if stream.length is not None:
            response.content_length = stream.length
        try:
            await response.prepare(request)
            await self._write(request.path, response, stream.head)
            while stream.total is None or self.written[request.path] < stream.total:
                await self._sleep(stream.interval)
                if self._closing.is_set():
                    break
                await self._write(request.path, response, stream.chunk)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client left, as it should when it has read enough
        finally:
            self.finished.append(request.path)
            self._progress.set()
        return response

    async def _write(self, path: str, response: web.StreamResponse, data: bytes) -> None:
        await response.write(data)
        self.written[path] += len(data)
        self._progress.set()
