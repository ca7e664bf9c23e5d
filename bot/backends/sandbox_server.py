"""The sandbox's own file server: its takes (mp3) and covers (PNG), rendered on request from what the URL names.

It listens on the sandbox's base URL (127.0.0.1 on a free port by default) for as long as the bot runs, so the
bot fetches the sandbox's songs exactly as it fetches a real backend's: by URL, from the backend's own origin.
Everything a file is made from is in its URL, so any process of the bot can serve any take, before and after a
restart.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

from aiohttp import web
from yarl import URL

from bot.backends.sandbox_cover import draw_cover
from bot.backends.sandbox_synth import MAX_SECONDS, MIN_SECONDS, TakePlan, render_mp3
from bot.backends.spec import BackendConfig

log = logging.getLogger(__name__)

_TAKE_NAME = re.compile(r"(?P<seed>[0-9a-f]{16})-(?P<seconds>\d{2})-(?P<voice>[iv])\.mp3")
_COVER_NAME = re.compile(r"(?P<seed>[0-9a-f]{16})-(?P<take>[0-9])\.png")
CACHED_FILES = 8  # a download retried, or both takes fetched again after a restart, is not rendered again


def take_path(seed: int, seconds: int, *, instrumental: bool) -> str:
    return f"/takes/{seed:016x}-{seconds:02d}-{'i' if instrumental else 'v'}.mp3"


def cover_path(song_seed: int, take: int) -> str:
    return f"/covers/{song_seed:016x}-{take}.png"


class SandboxFiles:
    """The routes, and the few files rendered last. One file is rendered at a time, in a thread: a burst of
    downloads then costs the event loop no more than one render does."""

    def __init__(self) -> None:
        self._rendered: OrderedDict[str, bytes] = OrderedDict()
        self._rendering = asyncio.Semaphore(1)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/takes/{name}", self._take)
        app.router.add_get("/covers/{name}", self._cover)
        return app

    async def _take(self, request: web.Request) -> web.Response:
        found = _TAKE_NAME.fullmatch(request.match_info["name"])
        if found is None or not MIN_SECONDS <= int(found["seconds"]) <= MAX_SECONDS:
            raise web.HTTPNotFound(text="no such sandbox take")
        plan = TakePlan(int(found["seed"], 16), int(found["seconds"]), instrumental=found["voice"] == "i")
        body = await self._render(found[0], lambda: render_mp3(plan))
        return web.Response(body=body, content_type="audio/mpeg")

    async def _cover(self, request: web.Request) -> web.Response:
        found = _COVER_NAME.fullmatch(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound(text="no such sandbox cover")
        seed, take = int(found["seed"], 16), int(found["take"])
        body = await self._render(found[0], lambda: draw_cover(seed, take))
        return web.Response(body=body, content_type="image/png")

    async def _render(self, name: str, render: Callable[[], bytes]) -> bytes:
        async with self._rendering:
            body = self._rendered.get(name)
            if body is None:
                body = await asyncio.to_thread(render)
                self._rendered[name] = body
                while len(self._rendered) > CACHED_FILES:
                    self._rendered.popitem(last=False)
            self._rendered.move_to_end(name)
            return body


@asynccontextmanager
async def serve(config: BackendConfig) -> AsyncIterator[BackendConfig]:
    """Listens where the configured base URL says (port 0: a free one) until the block ends; yields the values
    with the base URL it really listens on, which is then the sandbox's own, trusted origin."""
    wanted = URL(config.base_url)
    runner = web.AppRunner(SandboxFiles().app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, wanted.host, wanted.port).start()
        port = int(runner.addresses[0][1])
        base_url = str(wanted.with_port(port)).rstrip("/")
        log.info("sandbox backend: serving its synthesised songs to the bot at %s", base_url)
        yield replace(config, base_url=base_url)
    finally:
        await runner.cleanup()
