"""Message-side state of the fake Discord: attachments, messages, option references, recorded requests, interactions."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakes.discord_constants import FLAG_EPHEMERAL, FLAG_LOADING
from tests.fakes.discord_validation import UploadedFile, error_at, invalid_form_body

if TYPE_CHECKING:
    from tests.fakes.discord_gateway import GatewaySession

NONCE_LIFETIME = 300.0  # seconds (fake clock) a channel message's nonce is remembered for enforce_nonce


@dataclass
class FakeAttachment:
    id: int
    filename: str
    content_type: str
    data: bytes
    description: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def to_payload(self, *, cdn_base: str, channel_id: int) -> dict[str, Any]:
        url = f"{cdn_base}/attachments/{channel_id}/{self.id}/{self.filename}"
        payload: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": url,
            "proxy_url": url,
            "content_type": self.content_type,
        }
        if self.description is not None:
            payload["description"] = self.description
        return payload


_EVERYONE_MENTION = re.compile(r"@(?:everyone|here)")
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


@dataclass(eq=False)
class FakeMessage:
    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    created_at: float
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    flags: int = 0
    attachments: list[FakeAttachment] = field(default_factory=list)
    allowed_mentions: dict[str, Any] | None = None
    interaction_id: int | None = None
    webhook_id: int | None = None
    message_type: int = 0
    tts: bool = False
    reply_to: FakeMessage | None = None
    forward_of: FakeMessage | None = None  # a forward (message_reference type FORWARD) of this message
    edits: int = 0
    edited_at: float | None = None
    deleted: bool = False
    nonce: str | int | None = None  # as sent; Discord echoes it only in the create response and MESSAGE_CREATE

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        """True while this is a deferred "thinking" placeholder that nothing has filled in yet."""
        return bool(self.flags & FLAG_LOADING)

    def pinged(self) -> set[str]:
        """Who this message pings: "everyone" (also for @here), "user:<id>", "role:<id>". Embeds never ping.

        Without allowed_mentions Discord parses every mention in the content and pings a replied-to author.
        """
        if self.allowed_mentions is None:
            parse = {"everyone", "users", "roles"}
            listed_users: set[str] = set()
            listed_roles: set[str] = set()
            ping_replied_user = True
        else:
            parse = set(self.allowed_mentions.get("parse") or [])
            listed_users = {str(user_id) for user_id in self.allowed_mentions.get("users") or []}
            listed_roles = {str(role_id) for role_id in self.allowed_mentions.get("roles") or []}
            ping_replied_user = bool(self.allowed_mentions.get("replied_user", False))
        pings: set[str] = set()
        if "everyone" in parse and _EVERYONE_MENTION.search(self.content):
            pings.add("everyone")
        for user_id in _USER_MENTION.findall(self.content):
            if "users" in parse or user_id in listed_users:
                pings.add(f"user:{user_id}")
        for role_id in _ROLE_MENTION.findall(self.content):
            if "roles" in parse or role_id in listed_roles:
                pings.add(f"role:{role_id}")
        if self.reply_to is not None and ping_replied_user and self.reply_to.author_id != self.author_id:
            pings.add(f"user:{self.reply_to.author_id}")
        return pings

    def __repr__(self) -> str:
        return (
            f"<FakeMessage id={self.id} channel={self.channel_id} flags={self.flags} edits={self.edits} "
            f"content={self.content[:60]!r} embeds={len(self.embeds)} files={[a.filename for a in self.attachments]}>"
        )


class NonceCache:
    """enforce_nonce: a channel message created with the same nonce, author and channel within NONCE_LIFETIME
    returns the message already created (Discord's "a few minutes")."""

    def __init__(self, clock: Callable[[], float], lifetime: float = NONCE_LIFETIME) -> None:
        self._clock = clock
        self.lifetime = lifetime
        self._messages: dict[tuple[int, int, str], FakeMessage] = {}

    def remember(self, message: FakeMessage) -> None:
        """Keep a channel message's nonce, unless a live message created with it is still remembered."""
        if message.nonce is None or message.interaction_id is not None:
            return
        if self.find(message.channel_id, message.author_id, str(message.nonce)) is None:
            self._messages[message.channel_id, message.author_id, str(message.nonce)] = message

    def find(self, channel_id: int, author_id: int, nonce: str) -> FakeMessage | None:
        """The live message created with this nonce less than `lifetime` ago, if any."""
        key = (channel_id, author_id, nonce)
        message = self._messages.get(key)
        if message is None:
            return None
        if self._clock() - message.created_at >= self.lifetime or message.deleted:
            del self._messages[key]
            return None
        return message


def query_int(
    query: Mapping[str, str],
    name: str,
    default: int,
    *,
    minimum: int,
    maximum: int | None = None,
    snowflake: bool = False,
) -> int:
    """A query-string number, refused like Discord does (400/50035 naming the parameter)."""
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        kind = "snowflake" if snowflake else "int"
        raise invalid_form_body(error_at([name], "NUMBER_TYPE_COERCE", f'Value "{raw}" is not {kind}.')) from None
    if value < minimum:
        message = f"int value should be greater than or equal to {minimum}."
        raise invalid_form_body(error_at([name], "NUMBER_TYPE_MIN", message))
    if maximum is not None and value > maximum:
        message = f"int value should be less than or equal to {maximum}."
        raise invalid_form_body(error_at([name], "NUMBER_TYPE_MAX", message))
    return value


@dataclass(frozen=True)
class UserOption:
    """A USER (6) command option value; `{"user": id}` means the same."""

    user_id: int


@dataclass(frozen=True)
class ChannelOption:
    """A CHANNEL (7) command option value; `{"channel": id}` means the same."""

    channel_id: int


@dataclass(frozen=True)
class RoleOption:
    """A ROLE (8) command option value; `{"role": id}` means the same."""

    role_id: int


@dataclass(frozen=True)
class AttachmentOption:
    """An ATTACHMENT (11) command option value: a file the user uploaded with the command."""

    filename: str
    data: bytes
    content_type: str = "application/octet-stream"


@dataclass
class RecordedRequest:
    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    json: Any
    files: list[UploadedFile]
    at: float
    status: int = 0
    response: Any = None
    error_code: int | None = None
    injected: bool = False  # answered with an error armed by FakeDiscord.fail_next

    def __repr__(self) -> str:
        code = f" code={self.error_code}" if self.error_code is not None else ""
        injected = " injected" if self.injected else ""
        return f"<{self.method} {self.path} -> {self.status}{code}{injected}>"


@dataclass(eq=False)
class FakeInteraction:
    id: int
    token: str
    type: int
    guild_id: int | None
    channel_id: int
    user_id: int
    created_at: float  # fake-clock epoch seconds
    attachment_size_limit: int
    payload: dict[str, Any]
    source_message: FakeMessage | None = None  # the message whose component was used
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    original: FakeMessage | None = None
    followups: list[FakeMessage] = field(default_factory=list)
    errors: list[tuple[int, int]] = field(default_factory=list)
    modal: dict[str, Any] | None = None
    ephemeral: bool = False
    delivered_to: list[GatewaySession] = field(default_factory=list)  # the sessions sent its INTERACTION_CREATE

    @property
    def acknowledged(self) -> bool:
        return bool(self.callbacks)

    @property
    def response_type(self) -> int | None:
        return self.callbacks[0]["type"] if self.callbacks else None

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.payload["data"]
        return data

    async def wait_responded(self, timeout: float = 10) -> None:
        """Wait until the bot acknowledged this interaction, or the fake refused an attempt to."""
        deadline = time.monotonic() + timeout
        while not (self.callbacks or self.errors):
            if time.monotonic() > deadline:
                raise TimeoutError(f"interaction {self.id} got no response within {timeout} s")
            await asyncio.sleep(0.01)

    def __repr__(self) -> str:
        return (
            f"<FakeInteraction id={self.id} type={self.type} callbacks={[c.get('type') for c in self.callbacks]} "
            f"errors={self.errors} original={self.original!r} followups={len(self.followups)}>"
        )
