"""The fake Discord gateway: one websocket session per bot connection (HELLO, IDENTIFY/READY, dispatches)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.fakes.discord_shards import CLOSE_AUTHENTICATION_FAILED, GatewayClose, InvalidSession, parse_shard

if TYPE_CHECKING:
    from tests.fakes.discord_server import FakeDiscord

_log = logging.getLogger(__name__)

# Opcodes (developers/topics/opcodes-and-status-codes.mdx).
OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE_UPDATE = 3
OP_VOICE_STATE_UPDATE = 4
OP_RESUME = 6
OP_REQUEST_GUILD_MEMBERS = 8
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

# Intents (developers/events/gateway.mdx).
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT


class GatewaySession:
    """One websocket connection from the bot. Outgoing frames go through a queue so their order is kept."""

    def __init__(self, ws: web.WebSocketResponse, *, zlib_stream: bool, query: dict[str, str]) -> None:
        self.ws = ws
        self.query = query
        self.session_id = secrets.token_hex(16)
        self.identify: dict[str, Any] | None = None
        self.shard: tuple[int, int] = (0, 1)  # [shard_id, shard_count] of the IDENTIFY (or the resumed session)
        self.sequence = 0
        self.closed = False
        self.close_code: int | None = None
        self.heartbeats = 0
        self.ready = asyncio.Event()  # set once the bot has processed READY and every GUILD_CREATE
        self.history: list[dict[str, Any]] = []  # every DISPATCH frame of this session, for RESUME replays
        self._ready_sequence: int | None = None
        self._compressor = zlib.compressobj() if zlib_stream else None
        self._outgoing: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop())

    @property
    def identified(self) -> bool:
        return self.identify is not None

    @property
    def shard_id(self) -> int:
        return self.shard[0]

    @property
    def live(self) -> bool:
        """Identified (or resumed) and still open: Discord sends it events."""
        return self.identified and not self.closed

    @property
    def intents(self) -> int:
        return int((self.identify or {}).get("intents") or 0)

    def has_intent(self, intent: int) -> bool:
        return bool(self.intents & intent)

    def send(self, op: int, data: Any) -> None:
        self._outgoing.put_nowait({"op": op, "d": data, "s": None, "t": None})

    def dispatch(self, event: str, data: Any) -> int:
        """Queue a DISPATCH frame; returns its sequence number."""
        self.sequence += 1
        frame = {"op": OP_DISPATCH, "d": data, "s": self.sequence, "t": event}
        self.history.append(frame)
        self._outgoing.put_nowait(frame)
        return self.sequence

    def take_over(self, previous: GatewaySession, *, replay_after: int) -> None:
        """Continue `previous` (a RESUME): same session id and sequence, missed dispatches sent again."""
        self.session_id, self.identify, self.shard = previous.session_id, previous.identify, previous.shard
        self.sequence, self.history = previous.sequence, previous.history
        for frame in self.history:
            if frame["s"] > replay_after:
                self._outgoing.put_nowait(frame)

    def expect_ready_after(self, sequence: int) -> None:
        """Ask for a heartbeat; the bot answers with the last sequence it processed (discord.py does so in order)."""
        self._ready_sequence = sequence
        self.send(OP_HEARTBEAT, None)

    def heartbeat_received(self, acknowledged_sequence: int | None) -> None:
        self.heartbeats += 1
        ready_after = self._ready_sequence
        if ready_after is not None and acknowledged_sequence is not None and acknowledged_sequence >= ready_after:
            self.ready.set()

    async def close(self, code: int, reason: str) -> None:
        """Send what is queued, then close the websocket with `code`."""
        self.closed = True
        self.close_code = code
        self._outgoing.put_nowait(None)
        try:
            await self._writer
        except asyncio.CancelledError:  # the connection ended meanwhile (stop_writer), unless we are cancelled
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        except Exception:
            pass
        await self.ws.close(code=code, message=reason.encode())

    async def _write_loop(self) -> None:
        while (frame := await self._outgoing.get()) is not None:
            text = json.dumps(frame)
            try:
                if self._compressor is None:
                    await self.ws.send_str(text)
                else:
                    chunk = self._compressor.compress(text.encode()) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(chunk)
            except ConnectionError:
                return

    def stop_writer(self) -> None:
        self._writer.cancel()


class GatewayServer:
    """Serves the gateway websocket for a FakeDiscord."""

    def __init__(self, fake: FakeDiscord, *, heartbeat_interval_ms: int) -> None:
        self._fake = fake
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self.sessions: list[GatewaySession] = []
        self.accept_resume = True  # False: answer every RESUME with INVALID_SESSION, forcing a new IDENTIFY
        self.down = False  # True: the gateway is unreachable (every connection attempt gets HTTP 503)

    @property
    def current(self) -> GatewaySession | None:
        """The newest connection that is still open."""
        live = [session for session in self.sessions if not session.closed]
        return live[-1] if live else None

    def sessions_for_shard(self, shard_id: int) -> list[GatewaySession]:
        """The live (identified, open) sessions holding `shard_id`, oldest first."""
        return [session for session in self.sessions if session.live and session.shard_id == shard_id]

    def broadcast(self, event: str, data: Any, *, guild_id: int | None, intent: int | None = None) -> None:
        """Dispatch to every live session of the guild's shard (shard 0 for None) that subscribed to `intent`."""
        for session in self.sessions_for_shard(self._fake.shard_of(guild_id)):
            if intent is None or session.has_intent(intent):
                session.dispatch(event, data)

    async def close_all(self) -> None:
        for session in self.sessions:
            if not session.closed:
                with contextlib.suppress(Exception):
                    await session.close(1001, "Fake Discord is shutting down")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.down:
            return web.Response(status=503, text="upstream connect error")
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        session = GatewaySession(
            ws, zlib_stream=request.query.get("compress") == "zlib-stream", query=dict(request.query)
        )
        self.sessions.append(session)
        session.send(OP_HELLO, {"heartbeat_interval": self._heartbeat_interval_ms, "_trace": ["fake-gateway"]})
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    await session.close(4002, "Decode error")
                    break
                try:
                    payload = json.loads(message.data)
                except ValueError:
                    await session.close(4002, "Decode error")
                    break
                await self._on_payload(session, payload)
                if session.closed:
                    break
        finally:
            session.closed = True
            session.close_code = session.close_code or ws.close_code
            session.stop_writer()
        return ws

    async def _on_payload(self, session: GatewaySession, payload: dict[str, Any]) -> None:
        op = payload.get("op")
        data = payload.get("d")
        handlers: dict[int, Callable[[GatewaySession, Any], Any]] = {
            OP_HEARTBEAT: self._on_heartbeat,
            OP_IDENTIFY: self._on_identify,
            OP_RESUME: self._on_resume,
            OP_PRESENCE_UPDATE: self._ignore,
            OP_VOICE_STATE_UPDATE: self._ignore,
            OP_REQUEST_GUILD_MEMBERS: self._on_request_members,
        }
        handler = handlers.get(op) if isinstance(op, int) else None
        if handler is None:
            await session.close(4001, "Unknown opcode")
            return
        if op not in (OP_HEARTBEAT, OP_IDENTIFY, OP_RESUME) and not session.identified:
            await session.close(4003, "Not authenticated")
            return
        result = handler(session, data)
        if asyncio.iscoroutine(result):
            await result

    def _ignore(self, session: GatewaySession, data: Any) -> None:
        return None

    def _on_heartbeat(self, session: GatewaySession, data: Any) -> None:
        session.send(OP_HEARTBEAT_ACK, None)
        session.heartbeat_received(data if isinstance(data, int) else None)

    async def _on_identify(self, session: GatewaySession, data: Any) -> None:
        fake = self._fake
        if session.identified:
            await session.close(4005, "Already authenticated")
            return
        if not isinstance(data, dict) or data.get("token") != fake.bot_token:
            await session.close(4004, "Authentication failed")
            return
        intents = data.get("intents")
        if not isinstance(intents, int):
            await session.close(4013, "Invalid intent(s)")
            return
        if intents & PRIVILEGED_INTENTS & ~fake.privileged_intents:
            await session.close(4014, "Disallowed intent(s)")
            return
        try:
            shard = parse_shard(data, fake.shard_count)
        except GatewayClose as refusal:
            await session.close(refusal.code, refusal.reason)
            return
        if fake.identify_budget.exhausted():  # Discord resets the token past 1,000 IDENTIFYs a day
            await session.close(CLOSE_AUTHENTICATION_FAILED, "Authentication failed")
            return
        if not fake.identify_budget.try_start(shard[0]):
            fake.invalid_sessions.append(InvalidSession(fake.now(), session.session_id, shard, "identify rate limit"))
            session.send(OP_INVALID_SESSION, False)
            return
        session.identify, session.shard = data, shard
        fake.identifies.append(data)
        guilds = [guild for guild_id, guild in fake.guilds.items() if fake.shard_of(guild_id) == shard[0]]
        ready: dict[str, Any] = {
            "v": 10,
            "user": fake.users[fake.bot_user_id].to_payload() | {"verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(guild.id), "unavailable": True} for guild in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": fake.gateway_url,
            "application": {"id": str(fake.application_id), "flags": fake.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["us-east"],
            "user_settings": {},
            "auth": {},
            "_trace": ["fake-gateway"],
        }
        if data.get("shard") is not None:  # Discord echoes the shard only when the IDENTIFY carried one
            ready["shard"] = list(shard)
        last = session.dispatch("READY", ready)
        if intents & INTENT_GUILDS:
            for guild in guilds:
                last = session.dispatch("GUILD_CREATE", guild.to_payload(bot_user_id=fake.bot_user_id))
        session.expect_ready_after(last)

    async def _on_resume(self, session: GatewaySession, data: Any) -> None:
        if session.identified:
            await session.close(4005, "Already authenticated")
            return
        if not isinstance(data, dict) or data.get("token") != self._fake.bot_token:
            await session.close(4004, "Authentication failed")
            return
        previous = next((s for s in self.sessions if s.session_id == data.get("session_id") and s.closed), None)
        if not self.accept_resume or previous is None or not isinstance(data.get("seq"), int):
            fake = self._fake
            fake.invalid_sessions.append(InvalidSession(fake.now(), session.session_id, None, "resume refused"))
            session.send(OP_INVALID_SESSION, False)  # discord.py then IDENTIFYs again, 5 s later
            return
        session.take_over(previous, replay_after=data["seq"])
        session.expect_ready_after(session.dispatch("RESUMED", {"_trace": ["fake-gateway"]}))

    def _on_request_members(self, session: GatewaySession, data: Any) -> None:
        guild = self._fake.guilds.get(int(data.get("guild_id", 0)))
        if guild is None:
            return
        wanted = {int(user_id) for user_id in data.get("user_ids") or []}
        query = (data.get("query") or "").lower()
        members = [
            member.to_payload()
            for user_id, member in guild.members.items()
            if (not wanted or user_id in wanted) and member.user.name.lower().startswith(query)
        ]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [str(user_id) for user_id in wanted if user_id not in guild.members],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        session.dispatch("GUILD_MEMBERS_CHUNK", chunk)
