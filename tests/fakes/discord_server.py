"""A fake Discord (REST + gateway) on 127.0.0.1 that the real, unmodified discord.py connects to in tests."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import yarl
from aiohttp import web

from tests.fakes.discord_commands import CommandRoutes
from tests.fakes.discord_faults import FAULT_ROUTES, FaultInjector
from tests.fakes.discord_gateway import GatewayServer, GatewaySession
from tests.fakes.discord_interaction_builder import InteractionBuilder
from tests.fakes.discord_interactions import InteractionRoutes
from tests.fakes.discord_messages import ChannelRoutes, MessageStore
from tests.fakes.discord_models import (
    MIB,
    AttachmentOption,
    ChannelOption,
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeInteraction,
    FakeMessage,
    FakeUser,
    RecordedRequest,
    RoleOption,
    UserOption,
)
from tests.fakes.discord_redirect import API_BASE_VARIABLE, GATEWAY_VARIABLE
from tests.fakes.discord_server_http import Handler, HttpPlumbing
from tests.fakes.discord_server_world import WorldBuilding
from tests.fakes.discord_shards import IDENTIFY_WINDOW, IdentifyBudget, InvalidSession, Snowflakes, shard_for

if TYPE_CHECKING:
    import discord

__all__ = [
    "FAULT_ROUTES",
    "AttachmentOption",
    "ChannelOption",
    "FakeAttachment",
    "FakeDiscord",
    "FakeInteraction",
    "FakeMessage",
    "GatewaySession",
    "Handler",
    "InvalidSession",
    "RecordedRequest",
    "RoleOption",
    "UserOption",
]


class FakeDiscord(WorldBuilding, HttpPlumbing):
    """In-process fake of Discord's HTTP API v10 and gateway. See tests/fake_discord/ for use.

    `shard_count` is the number of shards the bot must use (GET /gateway/bot's `shards`); every IDENTIFY must
    then carry `shard: [id, shard_count]`. `max_concurrency` is the number of IDENTIFY buckets: one IDENTIFY
    per `identify_window` seconds (fake clock) in bucket `shard_id % max_concurrency`, else opcode 9 (see
    `invalid_sessions`). `identify_window` defaults to Discord's 5 s when `shard_count` > 1 and to 0 (no
    limit) with one shard, so single-shard tests may restart a bot at once; pass 5.0 to enforce it there too.
    """

    def __init__(
        self,
        *,
        ack_deadline: float = 3.0,
        token_lifetime: float = 900.0,
        default_upload_limit: int = 10 * MIB,
        heartbeat_interval_ms: int = 41_250,
        privileged_intents: int = 0,
        shard_count: int = 1,
        max_concurrency: int = 1,
        identify_window: float | None = None,
    ) -> None:
        if shard_count < 1:
            raise ValueError("shard_count must be at least 1")
        self.ack_deadline = ack_deadline
        self.token_lifetime = token_lifetime
        self.default_upload_limit = default_upload_limit
        self.privileged_intents = privileged_intents  # intents approved "in the developer portal"
        self.shard_count = shard_count
        self.clock_offset = 0.0
        if identify_window is None:
            identify_window = IDENTIFY_WINDOW if shard_count > 1 else 0.0
        self.identify_budget = IdentifyBudget(max_concurrency=max_concurrency, clock=self.now, window=identify_window)
        self.invalid_sessions: list[InvalidSession] = []  # every opcode 9 sent: refused IDENTIFYs and RESUMEs
        self.new_id = Snowflakes(self.now)
        self.application_id = self.new_id()
        self.application_flags = 1 << 23  # APPLICATION_COMMAND_BADGE
        self.bot_user_id = self.application_id  # like most bots, the bot user shares the application's id
        self.bot_token = f"{secrets.token_urlsafe(18)}.fake.{secrets.token_urlsafe(27)}"
        self.base_url = ""
        self.gateway_url = ""
        self.users: dict[int, FakeUser] = {self.bot_user_id: FakeUser(self.bot_user_id, "MusicBot", bot=True)}
        self.owner_user_id = self.new_id()
        self.users[self.owner_user_id] = FakeUser(self.owner_user_id, "app-owner")
        self.guilds: dict[int, FakeGuild] = {}
        self.client_locales: dict[int, str] = {}  # user id -> the language their Discord client is set to
        self.departed_guilds: dict[int, FakeGuild] = {}  # guilds the bot was removed from (see remove_bot)
        self.channels: dict[int, FakeChannel] = {}
        self.store = MessageStore(self)
        self.interactions: dict[int, FakeInteraction] = {}
        self.interactions_by_token: dict[str, FakeInteraction] = {}
        self.option_attachments: dict[int, FakeAttachment] = {}
        self.requests: list[RecordedRequest] = []
        self.unhandled_routes: list[RecordedRequest] = []
        self.internal_errors: list[str] = []
        self.identifies: list[dict[str, Any]] = []
        self.synced_commands: dict[int | None, list[dict[str, Any]]] = {}
        self.gateway = GatewayServer(self, heartbeat_interval_ms=heartbeat_interval_ms)
        self.faults = FaultInjector(sleep=self._hold)
        self._builder = InteractionBuilder(self)
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()  # set by stop(): every request still held by delay_next is let go

    # --- lifecycle ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=1024 * MIB, middlewares=[self._middleware])
        add = self._route_adder(app)
        add("GET", "/users/@me", self._get_me)
        add("GET", "/users/{user_id}", self._get_user)
        add("GET", "/oauth2/applications/@me", self._get_application)
        add("GET", "/applications/@me", self._get_application)
        add("GET", "/gateway", self._get_gateway)
        add("GET", "/gateway/bot", self._get_gateway)
        add("GET", "/guilds/{guild_id}", self._get_guild)
        add("GET", "/guilds/{guild_id}/channels", self._get_guild_channels)
        add("GET", "/guilds/{guild_id}/members/{user_id}", self._get_member)
        channel_routes = ChannelRoutes(self)
        channel_routes.register(add)
        CommandRoutes(self).register(add)
        InteractionRoutes(self).register(add)
        app.router.add_get("/cdn/attachments/{channel_id}/{attachment_id}/{filename}", channel_routes.cdn_attachment)
        app.router.add_get("/gateway-ws/", self.gateway.handle)
        # Held requests end at stop() (see _hold); anything else still running gets a second, not aiohttp's 60.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway-ws/"

    async def stop(self) -> None:
        self._closing.set()
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def cdn_base(self) -> str:
        return f"{self.base_url}/cdn"

    @contextlib.contextmanager
    def patch_discord_py(self) -> Iterator[None]:
        """Point discord.py's REST base and default gateway at this fake; restore them on exit."""
        import discord.gateway
        import discord.http

        saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = f"{self.base_url}/api/v10"
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved

    def env(self) -> dict[str, str]:
        """Environment for a bot subprocess whose sitecustomize calls discord_redirect.install_from_env()."""
        return {API_BASE_VARIABLE: f"{self.base_url}/api/v10", GATEWAY_VARIABLE: self.gateway_url}

    @contextlib.asynccontextmanager
    async def run_client(
        self, client: discord.Client, *, timeout: float = 10, reconnect: bool = False
    ) -> AsyncIterator[discord.Client]:
        """Log `client` in with the fake token, connect it, wait for the fake's READY handshake; close on exit.

        For an AutoShardedClient, waits until a session of this client is ready on each of its shards
        (`shard_ids`, or every shard of the fake); discord.py IDENTIFYs its own shards 5 s apart.
        """
        import discord

        known = len(self.gateway.sessions)
        await client.login(self.bot_token)
        task = asyncio.create_task(client.connect(reconnect=reconnect))
        try:
            if isinstance(client, discord.AutoShardedClient):
                shard_ids = list(client.shard_ids or range(self.shard_count))
                await self._wait_ready(lambda: self._new_shards_ready(known, shard_ids), timeout, task)
            else:
                await self.wait_until_ready(timeout=timeout, connection_task=task)
            yield client
        finally:
            await client.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=5)

    # --- clock --------------------------------------------------------------------------------------------

    def now(self) -> float:
        """The fake clock used for token expiry and timestamps: real time plus `clock_offset`."""
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> None:
        self.clock_offset += seconds

    # --- fault injection ----------------------------------------------------------------------------------

    def fail_next(
        self,
        route: str,
        *,
        status: int,
        code: int = 0,
        message: str | None = None,
        times: int = 1,
        retry_after: float = 0.1,
    ) -> None:
        """Answer the next `times` requests matching `route` (a FAULT_ROUTES name) with an error.

        The body is Discord's {"message", "code"}; `message` defaults to Discord's text for `code`, or to
        e.g. "500: Internal Server Error" for code 0. A 429 also gets `retry_after` (seconds) and `global`.
        Failed requests are recorded in `requests` with the status (and `injected=True`); nothing is created
        or changed, and a refused interaction request is added to that interaction's `errors`. Failures armed
        by several calls for one route are used in the order they were armed. discord.py retries some 5xx
        itself (see tests/fakes/discord_faults.py), so a final failure needs `times=5` or more.
        """
        self.faults.fail_next(route, status=status, code=code, message=message, times=times, retry_after=retry_after)

    def delay_next(self, route: str, *, seconds: float, times: int = 1, response_only: bool = False) -> None:
        """Hold the next `times` requests matching `route` for `seconds` (real time), then handle them normally.

        A held request is already in `requests` with status 0. Combined with fail_next, the hold comes first.
        The fake clock keeps running meanwhile, so a held interaction callback can miss its 3 s deadline.
        With `response_only`, the request is handled at once (a message it creates is already visible and
        clickable, as on Discord when its answer is slow to come back) and only the answer is held.
        stop() ends every hold at once: a request still held then is answered 503 without being handled
        (a held answer is sent as it is).
        """
        self.faults.delay_next(route, seconds=seconds, times=times, response_only=response_only)

    def clear_faults(self) -> None:
        """Disarm every failure and delay not used up yet."""
        self.faults.clear()

    # --- inspection ---------------------------------------------------------------------------------------

    def messages(self, channel_id: int) -> list[FakeMessage]:
        """Every live message in the channel in creation order, ephemeral ones included (check `.ephemeral`)."""
        return self.store.in_channel(channel_id)

    def message(self, message_id: int) -> FakeMessage:
        message = self.store.find(message_id)
        if message is None:
            raise LookupError(f"no message {message_id}")
        return message

    def shard_of(self, guild_id: int | None) -> int:
        """The shard a guild's events go to: `(guild_id >> 22) % shard_count`; 0 for None (DMs)."""
        return shard_for(guild_id, self.shard_count)

    def sessions_for_shard(self, shard_id: int) -> list[GatewaySession]:
        """The live (identified or resumed, still open) gateway sessions holding `shard_id`, oldest first."""
        return self.gateway.sessions_for_shard(shard_id)

    def find_command(self, name: str, guild_id: int | None, *, command_type: int = 1) -> dict[str, Any] | None:
        """The synced command a user in `guild_id` would get for `name` (guild ones first): chat input (`/name`,
        type 1) by default, or a user (2) or message (3) command of the Apps menu."""
        for scope in (guild_id, None):
            for command in self.synced_commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == command_type:
                    return command
        return None

    def stable_command_id(self, name: str) -> int:
        """The id an interaction carries for a command that was never synced (same name, same id)."""
        return (zlib.crc32(name.encode()) << 22) | 1

    async def wait_until_ready(
        self,
        timeout: float = 10,
        *,
        connection_task: asyncio.Task[Any] | None = None,
        shard: int | None = None,
        sessions: int = 1,
    ) -> None:
        """Wait until a bot has IDENTIFYed and processed READY and every GUILD_CREATE.

        By default: the newest open session is ready. With `shard` or `sessions` > 1: at least `sessions`
        live sessions (of shard `shard`, or of any shard for None) are ready.
        """

        def ready() -> bool:
            if shard is None and sessions == 1:
                session = self.gateway.current
                return session is not None and session.ready.is_set()
            live = [s for s in self.gateway.sessions if s.live and (shard is None or s.shard_id == shard)]
            return sum(s.ready.is_set() for s in live) >= sessions

        await self._wait_ready(ready, timeout, connection_task)

    def _new_shards_ready(self, known: int, shard_ids: list[int]) -> bool:
        """Each of `shard_ids` has a ready, live session opened after the first `known` sessions."""
        ready = {s.shard_id for s in self.gateway.sessions[known:] if s.live and s.ready.is_set()}
        return ready.issuperset(shard_ids)

    async def _wait_ready(
        self, ready: Callable[[], bool], timeout: float, connection_task: asyncio.Task[Any] | None
    ) -> None:
        def done() -> bool:
            if connection_task is not None and connection_task.done():
                connection_task.result()  # surface the bot's connection error
                raise RuntimeError("the bot's connection task ended before it was ready")
            return ready()

        await self.wait_for(done, timeout=timeout)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10) -> None:
        """Poll `predicate` until it is true; on timeout raise TimeoutError with `describe()` attached."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s\n{self.describe()}")
            await asyncio.sleep(0.01)

    def describe(self) -> str:
        """A dump of what the fake saw, for failure messages."""
        lines = ["-- FakeDiscord state --"]
        lines += [
            f"gateway session {s.session_id[:8]} shard={list(s.shard)} identified={s.identified} "
            f"ready={s.ready.is_set()} closed={s.closed} close_code={s.close_code}"
            for s in self.gateway.sessions
        ]
        lines += [f"invalid session {i!r}" for i in self.invalid_sessions]
        lines += [f"request {r!r}" for r in self.requests[-30:]]
        lines += [f"interaction {i!r}" for i in list(self.interactions.values())[-10:]]
        for channel_id in self.channels:
            lines += [f"channel {channel_id}: {m!r}" for m in self.store.in_channel(channel_id)[-10:]]
        lines += [f"unhandled route {r!r}" for r in self.unhandled_routes]
        lines += [f"armed fault {fault}" for fault in self.faults.pending()]
        lines += [f"internal error {e}" for e in self.internal_errors]
        return "\n".join(lines)
