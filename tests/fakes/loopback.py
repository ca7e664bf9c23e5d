"""What every fake server shares: an aiohttp app served on 127.0.0.1 at a random port, started and stopped
(or used with `async with`), with an event its slow handlers watch so a stop cuts them short."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import web

Interception = Callable[[web.Request], Awaitable[web.StreamResponse | None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class RecordedRequest:
    """One request a fake received. `status` (HTTP) is None while it is still being answered; `code` is an
    envelope code, for APIs that put one in their bodies."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    route: str | None
    status: int | None = None
    code: int | None = None


def json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


class LoopbackServer:
    base_url: str = ""
    _runner: web.AppRunner | None = None
    _closing: asyncio.Event
    # Per route name, the answers armed by fail_next/hang_next, used in order before the real handler.
    _interceptions: dict[str, deque[Interception]]
    requests: list[RecordedRequest]

    def _build_app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        self._closing = asyncio.Event()
        runner = web.AppRunner(self._build_app(), shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is None:
            return
        self._closing.set()
        await self._runner.cleanup()
        self._runner = None

    def _answered(self, record: RecordedRequest, response: web.StreamResponse) -> None:
        """Hook: note more about the answer on the record (the HTTP status is always noted)."""

    def _endpoint(self, route: str | None, handler: Handler) -> Handler:
        """Wraps a handler: records the request, serves an armed failure or hang first, then the handler."""

        async def endpoint(request: web.Request) -> web.StreamResponse:
            record = RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                json=json_or_none(await request.text()),
                headers=dict(request.headers),
                route=route,
            )
            self.requests.append(record)
            response = None
            if route is not None and self._interceptions[route]:
                response = await self._interceptions[route].popleft()(request)
            if response is None:
                response = await handler(request)
            record.status = response.status
            self._answered(record, response)
            return response

        return endpoint

    def answer_next(
        self,
        route: str,
        *,
        status: int,
        body: str | dict[str, Any] | list[Any],
        content_type: str = "application/json",
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests to `route` with exactly this status and body (dicts/lists as JSON)."""
        text = body if isinstance(body, str) else json.dumps(body)

        async def respond(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, text=text, content_type=content_type)

        self._intercept(route, respond, times)

    def _intercept(self, route: str, interception: Interception, times: int) -> None:
        if route not in self._interceptions:
            raise ValueError(f"unknown route {route!r}; expected one of {sorted(self._interceptions)}")
        self._interceptions[route].extend([interception] * times)

    async def _sleep(self, seconds: float) -> None:
        """Sleep that stop() cuts short, so hung handlers never block shutdown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
