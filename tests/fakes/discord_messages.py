"""Messages in the fake Discord: storage, Discord's edit rules, JSON rendering, and the channel message routes."""

from __future__ import annotations

import copy
import mimetypes
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.discord_forwards import FORWARD, forward_fields, forwarded_message
from tests.fakes.discord_gateway import INTENT_GUILD_MESSAGES
from tests.fakes.discord_message_models import NonceCache, query_int
from tests.fakes.discord_models import (
    ATTACH_FILES,
    FLAG_IS_COMPONENTS_V2,
    FLAG_LOADING,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    MANAGE_MESSAGES,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    FakeAttachment,
    FakeChannel,
    FakeInteraction,
    FakeMessage,
    iso,
    numbered_components,
    without_nulls,
)
from tests.fakes.discord_validation import (
    DiscordHTTPError,
    UploadedFile,
    check_message_limits,
    check_schema,
    check_uploads,
    error_at,
    invalid_form_body,
    json_response,
)

if TYPE_CHECKING:
    from tests.fakes.discord_server import FakeDiscord, Handler

CHANNEL_MESSAGE_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_IS_COMPONENTS_V2
EDITABLE_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_IS_COMPONENTS_V2
CHAT_INPUT_COMMAND_MESSAGE = 20


def unknown_message() -> DiscordHTTPError:
    return DiscordHTTPError(404, 10008, "Unknown Message")


def empty_message() -> DiscordHTTPError:
    return DiscordHTTPError(400, 50006, "Cannot send an empty message")


def _is_empty(message: FakeMessage, body: Mapping[str, Any]) -> bool:
    parts = (message.content.strip(), message.embeds, message.attachments, message.components)
    return not any(parts) and not body.get("sticker_ids") and not body.get("poll")


class MessageStore:
    """Every message of every channel, in creation order; deleted ones are kept but flagged."""

    def __init__(self, fake: FakeDiscord) -> None:
        self._fake = fake
        self._by_channel: dict[int, list[FakeMessage]] = {}
        self.nonces = NonceCache(fake.now)  # enforce_nonce: a repeat within NONCE_LIFETIME gets the first message

    def add_channel(self, channel_id: int) -> None:
        self._by_channel[channel_id] = []

    def in_channel(self, channel_id: int) -> list[FakeMessage]:
        return [message for message in self._by_channel[channel_id] if not message.deleted]

    def everything(self) -> Iterator[FakeMessage]:
        for messages in self._by_channel.values():
            yield from messages

    def find(self, message_id: int) -> FakeMessage | None:
        return next((m for m in self.everything() if m.id == message_id and not m.deleted), None)

    def create(
        self,
        channel_id: int,
        body: Mapping[str, Any],
        files: Sequence[UploadedFile],
        *,
        interaction: FakeInteraction | None = None,
        flags_allowed: int = CHANNEL_MESSAGE_FLAGS,
        forced_flags: int = 0,
        allow_empty: bool = False,
        reply_to: FakeMessage | None = None,
        forward_of: FakeMessage | None = None,
    ) -> FakeMessage:
        fake = self._fake
        from_command = interaction is not None and interaction.type == 2
        message = FakeMessage(
            id=fake.new_id(),
            channel_id=channel_id,
            guild_id=fake.channels[channel_id].guild_id,
            author_id=fake.bot_user_id,
            created_at=fake.now(),
            flags=(int(body.get("flags") or 0) & flags_allowed) | forced_flags,
            interaction_id=interaction.id if interaction else None,
            webhook_id=fake.application_id if interaction else None,
            message_type=CHAT_INPUT_COMMAND_MESSAGE if from_command else 0,
            tts=bool(body.get("tts")),
            reply_to=reply_to,
            forward_of=forward_of,
            nonce=body.get("nonce"),
        )
        self._apply_body(message, body, files, creating=True)
        if not allow_empty and forward_of is None and _is_empty(message, body):
            raise empty_message()
        self._by_channel[channel_id].append(message)
        self.nonces.remember(message)
        if not message.ephemeral:
            self._broadcast("MESSAGE_CREATE", message)
        return message

    def edit(self, message: FakeMessage, body: Mapping[str, Any], files: Sequence[UploadedFile]) -> None:
        """Apply an edit; nothing changes if Discord would refuse it."""
        edited = copy.copy(message)
        self._apply_body(edited, body, files, creating=False)
        if "flags" in body:
            edited.flags = (edited.flags & ~EDITABLE_FLAGS) | (int(body["flags"] or 0) & EDITABLE_FLAGS)
        edited.flags &= ~FLAG_LOADING
        if _is_empty(edited, body):
            raise empty_message()
        edited.edits += 1
        edited.edited_at = self._fake.now()
        vars(message).update(vars(edited))
        if not message.ephemeral:
            self._broadcast("MESSAGE_UPDATE", message)

    def delete(self, message: FakeMessage) -> None:
        message.deleted = True
        if not message.ephemeral:
            payload = {"id": str(message.id), "channel_id": str(message.channel_id), "guild_id": str(message.guild_id)}
            self._fake.gateway.broadcast(
                "MESSAGE_DELETE", payload, guild_id=message.guild_id, intent=INTENT_GUILD_MESSAGES
            )

    def _apply_body(
        self, message: FakeMessage, body: Mapping[str, Any], files: Sequence[UploadedFile], *, creating: bool
    ) -> None:
        if "content" in body or creating:
            message.content = body.get("content") or ""
        if "embeds" in body or creating:
            message.embeds = [without_nulls(embed) | {"type": "rich"} for embed in body.get("embeds") or []]
        if "components" in body or creating:
            message.components = numbered_components(body.get("components") or [])
        if "allowed_mentions" in body:
            message.allowed_mentions = body["allowed_mentions"]
        attachments = self._attachments_after(body, files, None if creating else message.attachments)
        if attachments is not None:
            message.attachments = attachments

    def _attachments_after(
        self, body: Mapping[str, Any], files: Sequence[UploadedFile], existing: list[FakeAttachment] | None
    ) -> list[FakeAttachment] | None:
        """Discord's rule: listed attachments are kept, listed new files appended. None means unchanged."""
        uploads = {upload.index: upload for upload in files}
        listed = body.get("attachments")
        if listed is None:
            if existing is not None and not files:
                return None
            return [*(existing or []), *(self._new_attachment(upload, {}) for upload in files)]
        kept_by_id = {attachment.id: attachment for attachment in existing or []}
        result: list[FakeAttachment] = []
        for position, item in enumerate(listed):
            item_id = int(item["id"])
            if item_id in uploads:
                result.append(self._new_attachment(uploads.pop(item_id), item))
            elif item_id in kept_by_id:
                result.append(kept_by_id[item_id])
            else:
                message = "Unknown attachment or file placeholder"
                raise invalid_form_body(error_at(["attachments", position, "id"], "ATTACHMENT_NOT_FOUND", message))
        if existing is None:  # on create every uploaded file is attached
            result += [self._new_attachment(upload, {}) for upload in uploads.values()]
        return result

    def _new_attachment(self, upload: UploadedFile, metadata: Mapping[str, Any]) -> FakeAttachment:
        filename = metadata.get("filename") or upload.filename
        content_type = mimetypes.guess_type(filename)[0] or upload.content_type
        return FakeAttachment(self._fake.new_id(), filename, content_type, upload.data, metadata.get("description"))

    def _broadcast(self, event: str, message: FakeMessage) -> None:
        payload = self.payload(message, with_nonce=event == "MESSAGE_CREATE") | {"guild_id": str(message.guild_id)}
        guild = self._fake.guilds.get(message.guild_id or 0)
        if guild is not None and message.author_id in guild.members:
            payload["member"] = guild.members[message.author_id].to_payload(with_user=False)
        self._fake.gateway.broadcast(event, payload, guild_id=message.guild_id, intent=INTENT_GUILD_MESSAGES)

    def payload(self, message: FakeMessage, *, with_nonce: bool = False) -> dict[str, Any]:
        """The message object as Discord's REST API returns it; `nonce` only where Discord echoes it back
        (the create response and MESSAGE_CREATE)."""
        fake = self._fake
        pings = message.pinged()
        mentioned_users = [int(ping.split(":")[1]) for ping in pings if ping.startswith("user:")]
        cdn_base = fake.cdn_base
        payload: dict[str, Any] = {
            "id": str(message.id),
            "channel_id": str(message.channel_id),
            "type": message.message_type,
            "author": fake.users[message.author_id].to_payload(),
            "content": message.content,
            "timestamp": iso(message.created_at),
            "edited_timestamp": iso(message.edited_at) if message.edited_at else None,
            "tts": message.tts,
            "mention_everyone": "everyone" in pings,
            "mentions": [fake.users[user_id].to_payload() for user_id in mentioned_users if user_id in fake.users],
            "mention_roles": [ping.split(":")[1] for ping in pings if ping.startswith("role:")],
            "attachments": [
                a.to_payload(cdn_base=cdn_base, channel_id=message.channel_id) for a in message.attachments
            ],
            "embeds": message.embeds,
            "components": message.components,
            "pinned": False,
            "flags": message.flags,
        }
        if with_nonce and message.nonce is not None:
            payload["nonce"] = message.nonce
        if message.webhook_id is not None:
            payload["webhook_id"] = str(message.webhook_id)
        if message.forward_of is not None:
            payload |= forward_fields(message.forward_of, self.payload(message.forward_of))
        if message.reply_to is not None:
            payload["message_reference"] = {
                "type": 0,
                "message_id": str(message.reply_to.id),
                "channel_id": str(message.channel_id),
                "guild_id": str(message.guild_id),
            }
        interaction = fake.interactions.get(message.interaction_id or 0)
        if interaction is not None:
            payload |= self._interaction_fields(message, interaction)
        return payload

    def _interaction_fields(self, message: FakeMessage, interaction: FakeInteraction) -> dict[str, Any]:
        user = self._fake.users[interaction.user_id].to_payload()
        metadata: dict[str, Any] = {
            "id": str(interaction.id),
            "type": interaction.type,
            "user": user,
            "authorizing_integration_owners": {"0": str(interaction.guild_id)},
        }
        if interaction.original is not None and interaction.original is not message:
            metadata["original_response_message_id"] = str(interaction.original.id)
        fields: dict[str, Any] = {"application_id": str(self._fake.application_id), "interaction_metadata": metadata}
        if interaction.type == 2:
            name = interaction.data.get("name", "")
            fields["interaction"] = {"id": str(interaction.id), "type": 2, "name": name, "user": user}
        return fields


class ChannelRoutes:
    """/channels/{id}[/messages[/{id}]] with the bot token, and the attachment CDN."""

    def __init__(self, fake: FakeDiscord) -> None:
        self._fake = fake
        self._store = fake.store

    def register(self, add: Callable[[str, str, Handler], None]) -> None:
        add("GET", "/channels/{channel_id}", self.get_channel)
        add("POST", "/channels/{channel_id}/typing", self.typing)
        add("GET", "/channels/{channel_id}/messages", self.list_messages)
        add("POST", "/channels/{channel_id}/messages", self.create_message)
        add("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message)
        add("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit_message)
        add("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message)

    def _channel(self, request: web.Request, *, needs: int = VIEW_CHANNEL) -> FakeChannel:
        """The channel, if the bot may do what `needs` says there (404 10003, 403 50001, 403 50013 otherwise)."""
        fake = self._fake
        channel = fake.channels.get(int(request.match_info["channel_id"]))
        if channel is None:
            raise DiscordHTTPError(404, 10003, "Unknown Channel")
        if channel.guild_id not in fake.guilds:  # a guild the bot was removed from
            raise DiscordHTTPError(403, 50001, "Missing Access")
        permissions = fake.guilds[channel.guild_id].permissions_of(fake.bot_user_id)
        if not permissions & VIEW_CHANNEL:
            raise DiscordHTTPError(403, 50001, "Missing Access")
        if permissions & needs != needs:
            raise DiscordHTTPError(403, 50013, "Missing Permissions")
        return channel

    def _message(self, request: web.Request, channel: FakeChannel) -> FakeMessage:
        """A message of the channel that the bot token can see (ephemeral ones it cannot)."""
        wanted = int(request.match_info["message_id"])
        for message in self._store.in_channel(channel.id):
            if message.id == wanted and not message.ephemeral:
                return message
        raise unknown_message()

    async def get_channel(self, request: web.Request) -> web.Response:
        return json_response(self._channel(request).to_payload())

    async def typing(self, request: web.Request) -> web.Response:
        self._channel(request, needs=VIEW_CHANNEL | SEND_MESSAGES)
        return web.Response(status=204)

    async def list_messages(self, request: web.Request) -> web.Response:
        """GET /channels/{id}/messages: up to `limit` (1-100, default 50) messages, newest first.

        `before`/`after` give the `limit` messages nearest that id on that side (so `after` pages forwards);
        `around` gives up to limit // 2 newer messages plus the message itself and older ones up to `limit`.
        Discord documents the three as mutually exclusive; the fake refuses more than one with 400/50035.
        """
        channel = self._channel(request, needs=VIEW_CHANNEL | READ_MESSAGE_HISTORY)
        query = request.query
        limit = query_int(query, "limit", 50, minimum=1, maximum=100)
        anchors = [key for key in ("around", "before", "after") if key in query]
        if len(anchors) > 1:
            message = "before, after and around are mutually exclusive."
            raise invalid_form_body(error_at([anchors[1]], "BASE_TYPE_BAD_QUERY", message))
        oldest_first = sorted((m for m in self._store.in_channel(channel.id) if not m.ephemeral), key=lambda m: m.id)
        anchor = query_int(query, anchors[0], 0, minimum=0, snowflake=True) if anchors else None
        if anchor is None:
            page = oldest_first[-limit:]
        elif anchors[0] == "before":
            page = [m for m in oldest_first if m.id < anchor][-limit:]
        elif anchors[0] == "after":
            page = [m for m in oldest_first if m.id > anchor][:limit]
        else:
            newer = [m for m in oldest_first if m.id > anchor][: limit // 2]
            older = [m for m in oldest_first if m.id <= anchor][-(limit - len(newer)) :]
            page = older + newer
        return json_response([self._store.payload(m) for m in reversed(page)])

    async def get_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request, needs=VIEW_CHANNEL | READ_MESSAGE_HISTORY)
        return json_response(self._store.payload(self._message(request, channel)))

    async def create_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request, needs=VIEW_CHANNEL | SEND_MESSAGES)
        body, files = await self._fake.read_body(request)
        if files:
            self._channel(request, needs=VIEW_CHANNEL | SEND_MESSAGES | ATTACH_FILES)
        check_uploads(files, self._fake.guilds[channel.guild_id].upload_limit)
        check_schema("MessageCreateRequest", body)
        check_message_limits(body)
        reply_to = forward_of = None
        reference = body.get("message_reference")
        if reference and reference.get("type") == FORWARD:
            forward_of = forwarded_message(self._fake, self._store.find(int(reference["message_id"])), body, reference)
        elif reference and reference.get("message_id"):
            wanted = int(reference["message_id"])
            reply_to = next((m for m in self._store.in_channel(channel.id) if m.id == wanted), None)
            if reply_to is None and reference.get("fail_if_not_exists", True):
                error = error_at(["message_reference"], "REPLIES_UNKNOWN_MESSAGE", "Unknown message")
                raise invalid_form_body(error)
        if body.get("enforce_nonce") and body.get("nonce") is not None:
            earlier = self._store.nonces.find(channel.id, self._fake.bot_user_id, str(body["nonce"]))
            if earlier is not None:  # Discord: the message already sent with this nonce, nothing new created
                return json_response(self._store.payload(earlier, with_nonce=True))
        message = self._store.create(channel.id, body, files, reply_to=reply_to, forward_of=forward_of)
        return json_response(self._store.payload(message, with_nonce=True))

    async def edit_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message(request, channel)
        if message.author_id != self._fake.bot_user_id:
            raise DiscordHTTPError(403, 50005, "Cannot edit a message authored by another user")
        body, files = await self._fake.read_body(request)
        check_uploads(files, self._fake.guilds[channel.guild_id].upload_limit)
        check_schema("MessageEditRequestPartial", body)
        check_message_limits(body)
        self._store.edit(message, body, files)
        return json_response(self._store.payload(message))

    async def delete_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message(request, channel)
        if message.author_id != self._fake.bot_user_id:
            self._channel(request, needs=VIEW_CHANNEL | MANAGE_MESSAGES)
        self._store.delete(message)
        return web.Response(status=204)

    async def cdn_attachment(self, request: web.Request) -> web.Response:
        attachment_id = int(request.match_info["attachment_id"])
        found = self._fake.option_attachments.get(attachment_id)
        for message in self._store.everything():
            found = found or next((a for a in message.attachments if a.id == attachment_id), None)
        if found is None:
            raise DiscordHTTPError(404, 0, "404: Not Found")
        return web.Response(body=found.data, content_type=found.content_type)
