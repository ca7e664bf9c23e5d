"""A fake Discord (REST + gateway) on 127.0.0.1 that the real, unmodified discord.py connects to in tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
import traceback
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import yarl
from aiohttp import BodyPartReader, web

from tests.fakes.discord_commands import CommandRoutes
from tests.fakes.discord_faults import FAULT_ROUTES, FaultInjector, InjectedFailure, match_route
from tests.fakes.discord_gateway import INTENT_GUILD_MEMBERS, INTENT_GUILDS, GatewayServer
from tests.fakes.discord_interactions import (
    APPLICATION_COMMAND,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    InteractionBuilder,
    InteractionRoutes,
    ModalValue,
)
from tests.fakes.discord_messages import ChannelRoutes, MessageStore
from tests.fakes.discord_models import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    DEFAULT_MEMBER_PERMISSIONS,
    MIB,
    AttachmentOption,
    ChannelOption,
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeInteraction,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
    RecordedRequest,
    RoleOption,
    SnowflakeFactory,
    UserOption,
)
from tests.fakes.discord_redirect import API_BASE_VARIABLE, GATEWAY_VARIABLE
from tests.fakes.discord_validation import DiscordHTTPError, UploadedFile, json_response

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
    "RecordedRequest",
    "RoleOption",
    "UserOption",
]

_FILE_FIELD = re.compile(r"files\[(\d+)\]")
_UNAUTHENTICATED_PREFIXES = ("/webhooks/", "/interactions/")
_RECORD = web.RequestKey("record", RecordedRequest)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeDiscord:
    """In-process fake of Discord's HTTP API v10 and gateway. See tests/fake_discord/ for use."""

    def __init__(
        self,
        *,
        ack_deadline: float = 3.0,
        token_lifetime: float = 900.0,
        default_upload_limit: int = 10 * MIB,
        heartbeat_interval_ms: int = 41_250,
        privileged_intents: int = 0,
    ) -> None:
        self.ack_deadline = ack_deadline
        self.token_lifetime = token_lifetime
        self.default_upload_limit = default_upload_limit
        self.privileged_intents = privileged_intents  # intents approved "in the developer portal"
        self.clock_offset = 0.0
        self.new_id = SnowflakeFactory(self.now)
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
        """Log `client` in with the fake token, connect it, wait for the fake's READY handshake; close on exit."""
        await client.login(self.bot_token)
        task = asyncio.create_task(client.connect(reconnect=reconnect))
        try:
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

    # --- world building -----------------------------------------------------------------------------------

    def add_guild(
        self,
        *,
        name: str = "Test Guild",
        premium_tier: int = 0,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
    ) -> int:
        """Add a guild the bot is in; the bot's permissions come from its managed role, on top of @everyone."""
        guild_id = self.new_id()
        guild = FakeGuild(guild_id, name, premium_tier, owner_id=self.owner_user_id, created_at=self.now())
        guild.roles[guild_id] = FakeRole(guild_id, "@everyone", everyone_permissions)
        _check_covers(everyone_permissions, bot_permissions, "the bot")
        bot_user = self.users[self.bot_user_id]
        bot_role = FakeRole(self.new_id(), bot_user.name, bot_permissions, position=1, managed=True)
        guild.roles[bot_role.id] = bot_role
        guild.members[self.bot_user_id] = FakeMember(bot_user, [bot_role.id], self.now())
        guild.members[self.owner_user_id] = FakeMember(self.users[self.owner_user_id], [], self.now())
        self.guilds[guild_id] = guild
        joined = guild.to_payload(bot_user_id=self.bot_user_id)
        del joined["unavailable"]  # a guild joined mid-session has no "unavailable" key: discord.py's guild_join
        self.gateway.broadcast("GUILD_CREATE", joined, intent=INTENT_GUILDS)
        return guild_id

    def add_channel(self, guild_id: int, *, name: str = "general") -> int:
        """Add a text channel (no permission overwrites)."""
        guild = self.guilds[guild_id]
        channel = FakeChannel(self.new_id(), guild_id, name, position=len(guild.channels))
        guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        self.store.add_channel(channel.id)
        self.gateway.broadcast("CHANNEL_CREATE", channel.to_payload(), intent=INTENT_GUILDS)
        return channel.id

    def add_role(self, guild_id: int, *, name: str, permissions: int = 0, mentionable: bool = False) -> int:
        guild = self.guilds[guild_id]
        role = FakeRole(self.new_id(), name, permissions, position=len(guild.roles), mentionable=mentionable)
        guild.roles[role.id] = role
        payload = {"guild_id": str(guild_id), "role": role.to_payload()}
        self.gateway.broadcast("GUILD_ROLE_CREATE", payload, intent=INTENT_GUILDS)
        return role.id

    def add_member(
        self,
        guild_id: int,
        *,
        name: str = "member",
        permissions: int = DEFAULT_MEMBER_PERMISSIONS,
        bot: bool = False,
        roles: Sequence[int] = (),
    ) -> int:
        """Add a user to the guild; permissions beyond @everyone's come from a role made for this member."""
        guild = self.guilds[guild_id]
        everyone_permissions = guild.roles[guild_id].permissions
        _check_covers(everyone_permissions, permissions, f"member {name!r}")
        user = FakeUser(self.new_id(), name, bot=bot)
        self.users[user.id] = user
        role_ids = list(roles)
        if permissions != everyone_permissions:
            role_ids.append(self.add_role(guild_id, name=f"{name}-permissions", permissions=permissions))
        member = FakeMember(user, role_ids, self.now())
        guild.members[user.id] = member
        payload = member.to_payload() | {"guild_id": str(guild_id)}
        self.gateway.broadcast("GUILD_MEMBER_ADD", payload, intent=INTENT_GUILD_MEMBERS)
        return user.id

    def set_bot_permissions(self, guild_id: int, permissions: int) -> None:
        """Change what the bot may do in a guild (its managed role), e.g. to take away SEND_MESSAGES."""
        guild = self.guilds[guild_id]
        _check_covers(guild.roles[guild_id].permissions, permissions, "the bot")
        bot_role = guild.roles[guild.members[self.bot_user_id].role_ids[0]]
        bot_role.permissions = permissions
        payload = {"guild_id": str(guild_id), "role": bot_role.to_payload()}
        self.gateway.broadcast("GUILD_ROLE_UPDATE", payload, intent=INTENT_GUILDS)

    # --- acting as Discord's users ------------------------------------------------------------------------

    async def invoke_command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        guild_id: int,
        channel_id: int,
        user_id: int,
        subcommand: str | None = None,
        app_permissions: int | None = None,
        attachment_size_limit: int | None = None,
    ) -> FakeInteraction:
        """Dispatch a chat-input command. `subcommand` is "sub" or "group sub". Values: see infer_option_type."""
        data = self._builder.command_data(name, options or {}, guild_id=guild_id, subcommand=subcommand)
        return self._dispatch_interaction(
            self._builder.new_interaction(
                APPLICATION_COMMAND,
                data,
                guild_id=guild_id,
                channel_id=channel_id,
                user_id=user_id,
                app_permissions=app_permissions,
                attachment_size_limit=attachment_size_limit,
            )
        )

    async def click_button(self, message_id: int, custom_id: str, *, user_id: int) -> FakeInteraction:
        return await self._use_component(message_id, custom_id, user_id=user_id, values=None)

    async def choose_options(
        self, message_id: int, custom_id: str, values: Sequence[str], *, user_id: int
    ) -> FakeInteraction:
        """Pick `values` in a select menu on a message."""
        return await self._use_component(message_id, custom_id, user_id=user_id, values=list(values))

    async def _use_component(
        self, message_id: int, custom_id: str, *, user_id: int, values: list[str] | None
    ) -> FakeInteraction:
        message = self.message(message_id)
        component = self._builder.find_component(message, custom_id)
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled; a user cannot use it")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"], "id": component.get("id")}
        if values is not None:
            data["values"] = values
        guild_id = self.channels[message.channel_id].guild_id
        interaction = self._builder.new_interaction(
            MESSAGE_COMPONENT, data, guild_id=guild_id, channel_id=message.channel_id, user_id=user_id, message=message
        )
        return self._dispatch_interaction(interaction)

    async def submit_modal(
        self, custom_id: str, values: Mapping[str, ModalValue], *, guild_id: int, channel_id: int, user_id: int
    ) -> FakeInteraction:
        """Submit the modal the bot last showed with this custom_id, filling in `values` by input custom_id.

        Text inputs take a str, selects and file uploads a list of values, checkboxes a bool. The submitted
        components mirror the modal's own layout (action rows or labels), as Discord's client sends them.
        """
        shown = next(
            (i for i in reversed(self.interactions.values()) if i.modal and i.modal.get("custom_id") == custom_id),
            None,
        )
        if shown is None or shown.modal is None:
            raise LookupError(f"the bot never showed a modal with custom_id {custom_id!r}")
        data = {"custom_id": custom_id, "components": self._builder.modal_submit_components(shown.modal, values)}
        interaction = self._builder.new_interaction(
            MODAL_SUBMIT,
            data,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            message=shown.source_message,
        )
        return self._dispatch_interaction(interaction)

    async def disconnect_bot(self, code: int = 4000) -> None:
        """Drop the bot's gateway connection like a network failure would; discord.py reconnects by itself."""
        session = self.gateway.current
        if session is None:
            raise RuntimeError("no bot is connected to the fake gateway")
        await session.close(code, "Fake disconnect")

    def _dispatch_interaction(self, interaction: FakeInteraction) -> FakeInteraction:
        session = self.gateway.current
        if session is None or not session.identified:
            raise RuntimeError("no bot is connected to the fake gateway")
        self.interactions[interaction.id] = interaction
        self.interactions_by_token[interaction.token] = interaction
        session.dispatch("INTERACTION_CREATE", interaction.payload)
        return interaction

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

    def find_command(self, name: str, guild_id: int | None) -> dict[str, Any] | None:
        """The synced chat-input command a user in `guild_id` would get for `/name` (guild ones first)."""
        for scope in (guild_id, None):
            for command in self.synced_commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == 1:
                    return command
        return None

    def stable_command_id(self, name: str) -> int:
        """The id an interaction carries for a command that was never synced (same name, same id)."""
        return (zlib.crc32(name.encode()) << 22) | 1

    async def wait_until_ready(self, timeout: float = 10, *, connection_task: asyncio.Task[Any] | None = None) -> None:
        """Wait until a bot has IDENTIFYed and processed READY and every GUILD_CREATE."""

        def ready() -> bool:
            if connection_task is not None and connection_task.done():
                connection_task.result()  # surface the bot's connection error
                raise RuntimeError("the bot's connection task ended before it was ready")
            session = self.gateway.current
            return session is not None and session.ready.is_set()

        await self.wait_for(ready, timeout=timeout)

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
            f"gateway session {s.session_id[:8]} identified={s.identified} ready={s.ready.is_set()} "
            f"closed={s.closed} close_code={s.close_code}"
            for s in self.gateway.sessions
        ]
        lines += [f"request {r!r}" for r in self.requests[-30:]]
        lines += [f"interaction {i!r}" for i in list(self.interactions.values())[-10:]]
        for channel_id in self.channels:
            lines += [f"channel {channel_id}: {m!r}" for m in self.store.in_channel(channel_id)[-10:]]
        lines += [f"unhandled route {r!r}" for r in self.unhandled_routes]
        lines += [f"armed fault {fault}" for fault in self.faults.pending()]
        lines += [f"internal error {e}" for e in self.internal_errors]
        return "\n".join(lines)

    # --- HTTP plumbing ------------------------------------------------------------------------------------

    async def _hold(self, seconds: float) -> None:
        """Sleep for a delay_next hold; stop() cuts it short, so a held request never delays shutdown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)

    def _route_adder(self, app: web.Application) -> Callable[[str, str, Handler], None]:
        def add(method: str, path: str, handler: Handler) -> None:
            app.router.add_route(method, r"/api/v{version:\d+}" + path, handler)

        return add

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/gateway-ws"):
            return await handler(request)
        path = re.sub(r"^/api/v\d+", "", request.path)
        response_delay = 0.0
        record = RecordedRequest(request.method, path, dict(request.query), None, [], at=self.now())
        request[_RECORD] = record
        self.requests.append(record)
        try:
            needs_bot_token = request.path.startswith("/api/") and not path.startswith(_UNAUTHENTICATED_PREFIXES)
            if needs_bot_token and request.headers.get("Authorization") != f"Bot {self.bot_token}":
                raise DiscordHTTPError(401, 0, "401: Unauthorized")
            matched = match_route(request.method, path)
            response_delay = self.faults.response_delay(matched[0]) if matched else 0.0
            failure = await self.faults.before_handling(matched[0]) if matched else None
            response: web.StreamResponse
            if self._closing.is_set():  # stop() cut a hold short: the fake is going away, handle nothing more
                response = json_response({"message": "503: Service Unavailable", "code": 0}, status=503)
            elif matched and failure:
                response = await self._injected_failure(request, matched[1], failure)
            else:
                response = await handler(request)
        except DiscordHTTPError as error:
            response = json_response(error.body(), status=error.status)
            record.error_code = error.code
        except web.HTTPException as error:
            if error.status == 404:
                self.unhandled_routes.append(record)
            body = {"message": f"{error.status}: {error.reason}", "code": 0}
            response = json_response(body, status=error.status)
        except Exception:
            # A bug in the fake: answer 400 (a 5xx would make discord.py retry for ~25 s) and keep the trace.
            self.internal_errors.append(traceback.format_exc())
            response = json_response({"message": "FakeDiscord internal error", "code": 0}, status=400)
        if response_delay:
            await self._hold(response_delay)
        record.status = response.status
        if isinstance(response, web.Response) and response.content_type == "application/json" and response.body:
            record.response = json.loads(bytes(response.body))  # type: ignore[arg-type]
        return response

    async def _injected_failure(
        self, request: web.Request, params: Mapping[str, str], failure: InjectedFailure
    ) -> web.Response:
        """Answer with an armed failure without handling the request; keep what the bot sent for inspection."""
        record = request[_RECORD]
        record.injected = True
        record.error_code = failure.code
        with contextlib.suppress(DiscordHTTPError):
            await self.read_body(request)
        interaction = self.interactions_by_token.get(params.get("token", ""))
        if interaction is not None:
            interaction.errors.append((failure.status, failure.code))
        return failure.response()

    async def read_body(self, request: web.Request) -> tuple[Any, list[UploadedFile]]:
        """JSON body, or multipart payload_json + files[n], as discord.py sends them."""
        files: list[UploadedFile] = []
        payload: Any = None
        try:
            if request.content_type == "multipart/form-data":
                reader = await request.multipart()
                async for part in reader:
                    if not isinstance(part, BodyPartReader):
                        continue
                    if part.name == "payload_json":
                        payload = json.loads(await part.text())
                    elif part.name and (match := _FILE_FIELD.fullmatch(part.name)):
                        data = bytes(await part.read(decode=False))
                        filename = part.filename or f"file{match[1]}"
                        content_type = part.headers.get("Content-Type", "application/octet-stream")
                        files.append(UploadedFile(int(match[1]), filename, content_type, data))
            else:
                raw = await request.read()
                payload = json.loads(raw) if raw else None
        except ValueError as error:
            raise DiscordHTTPError(400, 50109, "The request body contains invalid JSON.") from error
        record = request[_RECORD]
        record.json, record.files = payload, files
        return payload, files

    # --- REST: users, application, guilds, channels ---------------------------------------------------------

    async def _get_me(self, request: web.Request) -> web.Response:
        return json_response(self.users[self.bot_user_id].to_payload() | {"verified": True, "mfa_enabled": False})

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise DiscordHTTPError(404, 10013, "Unknown User")
        return json_response(user.to_payload())

    async def _get_application(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "id": str(self.application_id),
                "name": self.users[self.bot_user_id].name,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": self.application_flags,
                "owner": self.users[self.owner_user_id].to_payload(),
                "team": None,
                "bot": self.users[self.bot_user_id].to_payload(),
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "rpc_origins": [],
                "tags": [],
                "approximate_guild_count": len(self.guilds),
                "integration_types_config": {"0": {}},
            }
        )

    async def _get_gateway(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 86_400_000, "max_concurrency": 1}
        return json_response({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    def _guild(self, request: web.Request) -> FakeGuild:
        guild = self.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            raise DiscordHTTPError(404, 10004, "Unknown Guild")
        return guild

    async def _get_guild(self, request: web.Request) -> web.Response:
        payload = self._guild(request).to_payload(bot_user_id=self.bot_user_id)
        for key in ("channels", "members", "threads", "presences", "voice_states", "joined_at", "large", "lazy"):
            payload.pop(key, None)
        return json_response(payload)

    async def _get_guild_channels(self, request: web.Request) -> web.Response:
        return json_response([channel.to_payload() for channel in self._guild(request).channels.values()])

    async def _get_member(self, request: web.Request) -> web.Response:
        member = self._guild(request).members.get(int(request.match_info["user_id"]))
        if member is None:
            raise DiscordHTTPError(404, 10007, "Unknown Member")
        return json_response(member.to_payload())


def _check_covers(everyone_permissions: int, permissions: int, who: str) -> None:
    """Role permissions only add up, so nobody can have fewer permissions than @everyone."""
    if everyone_permissions & ~permissions:
        raise ValueError(
            f"{who} cannot lack permissions that @everyone has ({everyone_permissions & ~permissions:#x}); "
            "pass a smaller everyone_permissions to add_guild"
        )
