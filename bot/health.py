"""The optional HTTP server (HTTP_PORT): `GET /healthz`, `GET /metrics` (Prometheus' text) and, with
PUBLIC_BASE_URL, `POST /callbacks/{backend}/{token}` for providers that push their progress.

`/healthz` answers 200 with `{"status": "ok", ...}` when the gateway is connected (every shard this process
runs), the database answers a write, and the job runtime's heartbeat is fresh; 503 with `{"status": "unhealthy",
"problems": [...]}` naming what is wrong otherwise. `/metrics` is bot/metrics.py's exposition. Built on aiohttp's
own `web`, which the bot already has."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from bot.callbacks import CallbackAddresses
from bot.metrics import Metrics

log = logging.getLogger(__name__)

DATABASE_CHECK_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class HealthChecks:
    """What /healthz asks, each answering None when fine or the problem in a few words."""

    gateway: Callable[[], str | None]
    database: Callable[[], Awaitable[None]]  # one small write; raises (or takes too long) when it cannot
    heartbeat: Callable[[], str | None]


async def _database_problem(checks: HealthChecks) -> str | None:
    started = time.monotonic()
    try:
        async with asyncio.timeout(DATABASE_CHECK_SECONDS):
            await checks.database()
    except TimeoutError:
        return f"database: a write did not finish within {DATABASE_CHECK_SECONDS:g} s (locked or unreachable)"
    except Exception as error:  # what failed is the answer; the details go to the log
        log.warning("health check: the database write failed: %s", error)
        return f"database: a write failed ({type(error).__name__})"
    log.debug("health check: database write took %.3f s", time.monotonic() - started)
    return None


@dataclass(frozen=True, slots=True)
class CallbackReceiver:
    """`POST /callbacks/{backend}/{token}`: a provider's push for the job the token names wakes its polling."""

    addresses: CallbackAddresses
    wake: Callable[[int], bool]


# A provider's push is small JSON; the bot does not act on it (it re-reads the task), so larger is refused.
CALLBACK_MAX_BYTES = 256 * 1024


def _callback_route(receiver: CallbackReceiver) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def callback(request: web.Request) -> web.Response:
        job_id = receiver.addresses.job_of(request.match_info["token"])
        if request.match_info["backend"] != receiver.addresses.backend or job_id is None:
            return web.json_response({"status": "unknown"}, status=404)
        if request.content_length is not None and request.content_length > CALLBACK_MAX_BYTES:
            return web.json_response({"status": "too large"}, status=413)
        woken = receiver.wake(job_id)
        log.info("job=%d phase=callback backend=%s woken=%s", job_id, receiver.addresses.backend, woken)
        return web.json_response({"status": "received"})

    return callback


def health_app(
    checks: HealthChecks, metrics: Metrics | None = None, callbacks: CallbackReceiver | None = None
) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        problems = [problem for problem in (checks.gateway(), checks.heartbeat()) if problem]
        if (database := await _database_problem(checks)) is not None:
            problems.append(database)
        if problems:
            return web.json_response({"status": "unhealthy", "problems": problems}, status=503)
        return web.json_response({"status": "ok", "checks": ["gateway", "database", "heartbeat"]})

    app = web.Application(client_max_size=CALLBACK_MAX_BYTES)
    app.router.add_get("/healthz", healthz)
    if callbacks is not None:
        app.router.add_post("/callbacks/{backend}/{token}", _callback_route(callbacks))
    if metrics is not None:
        app.router.add_get("/metrics", _exposition(metrics))
    return app


def _exposition(metrics: Metrics) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def exposition(request: web.Request) -> web.Response:
        return web.Response(body=await metrics.render(), headers={"Content-Type": metrics.content_type})

    return exposition


@asynccontextmanager
async def serving(
    checks: HealthChecks,
    *,
    host: str,
    port: int,
    metrics: Metrics | None = None,
    callbacks: CallbackReceiver | None = None,
) -> AsyncIterator[None]:
    """Serves /healthz (and /metrics, given `metrics`; the callbacks, given `callbacks`) on host:port until the
    block ends."""
    runner = web.AppRunner(health_app(checks, metrics, callbacks), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("health endpoint on http://%s:%d/healthz%s", host, port, " and /metrics" if metrics else "")
        yield
    finally:
        await runner.cleanup()
