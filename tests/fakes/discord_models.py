"""State the fake Discord keeps (guilds, users, messages, interactions, requests) and its JSON renderings."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.fakes.discord_validation import UploadedFile

DISCORD_EPOCH_MS = 1_420_070_400_000
MIB = 1024 * 1024

# Permission bits (developers/topics/permissions.mdx).
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
CONNECT = 1 << 20
SPEAK = 1 << 21
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38

DEFAULT_MEMBER_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
    | CONNECT
    | SPEAK
)
DEFAULT_BOT_PERMISSIONS = DEFAULT_MEMBER_PERMISSIONS
DEFAULT_EVERYONE_PERMISSIONS = VIEW_CHANNEL | READ_MESSAGE_HISTORY | USE_APPLICATION_COMMANDS

# Message flags (developers/resources/message.mdx).
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_IS_COMPONENTS_V2 = 1 << 15

PREMIUM_TIER_UPLOAD_LIMITS = {0: 10 * MIB, 1: 10 * MIB, 2: 50 * MIB, 3: 100 * MIB}


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def without_nulls(value: Any) -> Any:
    """Drop null members recursively, as Discord does when it stores what a bot sent."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def _walk_mutable(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for component in components:
        yield component
        yield from _walk_mutable(component.get("components") or [])
        for key in ("component", "accessory"):
            if isinstance(component.get(key), dict):
                yield from _walk_mutable([component[key]])


def numbered_components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Store components as Discord does: nulls dropped and every component given a numeric `id`."""
    cleaned: list[dict[str, Any]] = without_nulls(components)
    used = {component["id"] for component in _walk_mutable(cleaned) if isinstance(component.get("id"), int)}
    next_id = 1
    for component in _walk_mutable(cleaned):
        if "id" not in component:
            while next_id in used:
                next_id += 1
            component["id"] = next_id
            used.add(next_id)
    return cleaned


class SnowflakeFactory:
    """Discord-style ids whose timestamp part comes from the fake clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._increment = itertools.count()

    def __call__(self) -> int:
        milliseconds = int(self._clock() * 1000) - DISCORD_EPOCH_MS
        return (milliseconds << 22) | (next(self._increment) % 4096)


@dataclass
class FakeUser:
    id: int
    name: str
    bot: bool = False

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": None if self.bot else self.name,
            "avatar": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }


@dataclass
class FakeRole:
    id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False
    mentionable: bool = False

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": self.managed,
            "mentionable": self.mentionable,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass
class FakeMember:
    user: FakeUser
    role_ids: list[int]
    joined_at: float

    def to_payload(self, *, with_user: bool = True, permissions: int | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "roles": [str(role_id) for role_id in self.role_ids],
            "joined_at": iso(self.joined_at),
            "nick": None,
            "avatar": None,
            "banner": None,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            payload["user"] = self.user.to_payload()
        if permissions is not None:
            payload["permissions"] = str(permissions)
        return payload


@dataclass
class FakeChannel:
    id: int
    guild_id: int
    name: str
    position: int

    def to_payload(self, *, permissions: int | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(self.id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "topic": None,
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "flags": 0,
        }
        if permissions is not None:
            payload["permissions"] = str(permissions)
        return payload


@dataclass
class FakeGuild:
    id: int
    name: str
    premium_tier: int
    owner_id: int
    created_at: float
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    roles: dict[int, FakeRole] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)

    @property
    def upload_limit(self) -> int:
        return PREMIUM_TIER_UPLOAD_LIMITS.get(self.premium_tier, 10 * MIB)

    def permissions_of(self, user_id: int) -> int:
        member = self.members.get(user_id)
        if member is None:
            return 0
        if user_id == self.owner_id:
            return (1 << 53) - 1
        permissions = self.roles[self.id].permissions
        for role_id in member.role_ids:
            permissions |= self.roles[role_id].permissions
        return (1 << 53) - 1 if permissions & ADMINISTRATOR else permissions

    def to_payload(self, *, bot_user_id: int) -> dict[str, Any]:
        """GUILD_CREATE body: a guild with channels, roles and (only) the bot's own member."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": self.premium_tier,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "features": [],
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "application_id": None,
            "unavailable": False,
            "large": False,
            "lazy": True,
            "joined_at": iso(self.created_at),
            "member_count": len(self.members),
            "roles": [role.to_payload() for role in self.roles.values()],
            "channels": [channel.to_payload() for channel in self.channels.values()],
            "members": [self.members[bot_user_id].to_payload()] if bot_user_id in self.members else [],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "emojis": [],
            "stickers": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "incidents_data": None,
        }


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
    edits: int = 0
    edited_at: float | None = None
    deleted: bool = False

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
