"""Guild-side state of the fake Discord (users, roles, members, channels, guilds) and its JSON renderings."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.discord_constants import (
    ADD_REACTIONS,
    ADMINISTRATOR,
    ATTACH_FILES,
    CONNECT,
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    DEFAULT_MEMBER_PERMISSIONS,
    DISCORD_EPOCH_MS,
    EMBED_LINKS,
    FLAG_EPHEMERAL,
    FLAG_IS_COMPONENTS_V2,
    FLAG_LOADING,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    MANAGE_GUILD,
    MANAGE_MESSAGES,
    MENTION_EVERYONE,
    MIB,
    PREMIUM_TIER_UPLOAD_LIMITS,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    SPEAK,
    USE_APPLICATION_COMMANDS,
    USE_EXTERNAL_EMOJIS,
    VIEW_CHANNEL,
    iso,
    numbered_components,
    without_nulls,
)
from tests.fakes.discord_message_models import (
    AttachmentOption,
    ChannelOption,
    FakeAttachment,
    FakeInteraction,
    FakeMessage,
    RecordedRequest,
    RoleOption,
    UserOption,
)

__all__ = [
    "ADD_REACTIONS",
    "ADMINISTRATOR",
    "ATTACH_FILES",
    "CONNECT",
    "DEFAULT_BOT_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "DEFAULT_MEMBER_PERMISSIONS",
    "DISCORD_EPOCH_MS",
    "EMBED_LINKS",
    "FLAG_EPHEMERAL",
    "FLAG_IS_COMPONENTS_V2",
    "FLAG_LOADING",
    "FLAG_SUPPRESS_EMBEDS",
    "FLAG_SUPPRESS_NOTIFICATIONS",
    "MANAGE_GUILD",
    "MANAGE_MESSAGES",
    "MENTION_EVERYONE",
    "MIB",
    "PREMIUM_TIER_UPLOAD_LIMITS",
    "READ_MESSAGE_HISTORY",
    "SEND_MESSAGES",
    "SEND_MESSAGES_IN_THREADS",
    "SPEAK",
    "USE_APPLICATION_COMMANDS",
    "USE_EXTERNAL_EMOJIS",
    "VIEW_CHANNEL",
    "AttachmentOption",
    "ChannelOption",
    "FakeAttachment",
    "FakeChannel",
    "FakeGuild",
    "FakeInteraction",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "RecordedRequest",
    "RoleOption",
    "SnowflakeFactory",
    "UserOption",
    "iso",
    "numbered_components",
    "without_nulls",
]


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
    # The server's "primary language" (Server Settings > Community): Discord sends it as preferred_locale.
    preferred_locale: str = "en-US"

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
            "preferred_locale": self.preferred_locale,
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
