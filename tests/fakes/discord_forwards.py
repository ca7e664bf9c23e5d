"""Message forwarding in the fake Discord: a message whose message_reference has type FORWARD, checked as Discord
does, and rendered with the forwarded message's message_snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tests.fakes.discord_models import READ_MESSAGE_HISTORY, VIEW_CHANNEL, FakeMessage
from tests.fakes.discord_validation import DiscordHTTPError, error_at, invalid_form_body

if TYPE_CHECKING:
    from tests.fakes.discord_server import FakeDiscord

FORWARD = 1  # message_reference.type of a forwarded message (Discord's documentation; the spec lists DEFAULT)
# What a forward's message_snapshots keep of the forwarded message (MinimalContentMessageResponse).
SNAPSHOT_FIELDS = ("type", "content", "attachments", "embeds", "timestamp", "edited_timestamp", "flags", "components")
_CONTENT_KEYS = ("content", "embeds", "attachments", "components", "sticker_ids", "poll")


def forwarded_message(
    fake: FakeDiscord, source: FakeMessage | None, body: Mapping[str, Any], reference: Mapping[str, Any]
) -> FakeMessage:
    """The message a forward names by (channel_id, message_id), which the bot must be able to read; the forward
    itself carries nothing else (a comment goes in a message of its own)."""
    if any(body.get(key) for key in _CONTENT_KEYS):
        error = error_at(["message_reference"], "MESSAGE_FORWARD_WITH_CONTENT", "A forward carries no content")
        raise invalid_form_body(error)
    channel_id = reference.get("channel_id")
    if source is None or source.ephemeral or channel_id is None or int(channel_id) != source.channel_id:
        raise invalid_form_body(error_at(["message_reference"], "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown"))
    readable = VIEW_CHANNEL | READ_MESSAGE_HISTORY
    if fake.guilds[source.guild_id].permissions_of(fake.bot_user_id) & readable != readable:
        raise DiscordHTTPError(403, 50013, "Missing Permissions")
    return source


def forward_fields(source: FakeMessage, source_payload: Mapping[str, Any]) -> dict[str, Any]:
    """What a forward's payload says about the message it forwards."""
    snapshot = {key: source_payload[key] for key in SNAPSHOT_FIELDS} | {"mentions": [], "mention_roles": []}
    return {
        "message_reference": {
            "type": FORWARD,
            "message_id": str(source.id),
            "channel_id": str(source.channel_id),
            "guild_id": str(source.guild_id),
        },
        "message_snapshots": [{"message": snapshot}],
    }
