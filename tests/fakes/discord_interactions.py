"""Interaction side of the fake Discord: interaction and callback types, and the interaction-token REST routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.discord_messages import unknown_message
from tests.fakes.discord_models import (
    FLAG_EPHEMERAL,
    FLAG_IS_COMPONENTS_V2,
    FLAG_LOADING,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    FakeInteraction,
    FakeMessage,
    numbered_components,
)
from tests.fakes.discord_validation import (
    CALLBACK_SCHEMA_BY_TYPE,
    DiscordHTTPError,
    check_message_limits,
    check_schema,
    check_uploads,
    error_at,
    invalid_form_body,
    json_response,
)

if TYPE_CHECKING:
    from tests.fakes.discord_server import FakeDiscord, Handler

# Interaction types and the callback types Discord accepts for each.
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
AUTOCOMPLETE = 4
MODAL_SUBMIT = 5
ALLOWED_CALLBACKS = {
    APPLICATION_COMMAND: {4, 5, 9},
    MESSAGE_COMPONENT: {4, 5, 6, 7, 9},
    AUTOCOMPLETE: {8},
    MODAL_SUBMIT: {4, 5, 6, 7},
}
RESPONSE_FLAGS = FLAG_EPHEMERAL | FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_IS_COMPONENTS_V2

ModalValue = str | list[str] | bool  # text input / select, file upload or checkbox group / checkbox


def unknown_interaction() -> DiscordHTTPError:
    return DiscordHTTPError(404, 10062, "Unknown interaction")


def unknown_webhook() -> DiscordHTTPError:
    return DiscordHTTPError(404, 10015, "Unknown Webhook")


class InteractionRoutes:
    """POST /interactions/{id}/{token}/callback and the /webhooks/{application}/{token} routes."""

    def __init__(self, fake: FakeDiscord) -> None:
        self._fake = fake

    def register(self, add: Callable[[str, str, Handler], None]) -> None:
        add("POST", "/interactions/{interaction_id}/{token}/callback", self.callback)
        add("POST", "/webhooks/{application_id}/{token}", self.create_followup)
        message_path = "/webhooks/{application_id}/{token}/messages/{message_id}"  # message_id may be @original
        add("GET", message_path, self.get_message)
        add("PATCH", message_path, self.edit_message)
        add("DELETE", message_path, self.delete_message)

    # --- callback ---------------------------------------------------------------------------------------

    async def callback(self, request: web.Request) -> web.StreamResponse:
        fake = self._fake
        interaction = fake.interactions.get(int(request.match_info["interaction_id"]))
        if interaction is None or interaction.token != request.match_info["token"]:
            raise unknown_interaction()
        try:
            return await self._callback(request, interaction)
        except DiscordHTTPError as error:
            interaction.errors.append((error.status, error.code))
            raise

    async def _callback(self, request: web.Request, interaction: FakeInteraction) -> web.StreamResponse:
        fake = self._fake
        body, files = await fake.read_body(request)
        if interaction.acknowledged:
            raise DiscordHTTPError(400, 40060, "Interaction has already been acknowledged.")
        if fake.now() - interaction.created_at > fake.ack_deadline:
            raise unknown_interaction()
        check_uploads(files, interaction.attachment_size_limit)
        if not isinstance(body, dict) or body.get("type") not in CALLBACK_SCHEMA_BY_TYPE:
            raise invalid_form_body(error_at(["type"], "BASE_TYPE_CHOICES", "Value must be a valid callback type."))
        callback_type: int = body["type"]
        check_schema(CALLBACK_SCHEMA_BY_TYPE[callback_type], body)
        source = interaction.source_message
        if callback_type not in ALLOWED_CALLBACKS[interaction.type] or (callback_type == 7 and source is None):
            reason = "Interaction callback type is not valid for this interaction."
            raise invalid_form_body(error_at(["type"], "INTERACTION_CALLBACK_TYPE_INVALID", reason))
        data: dict[str, Any] = body.get("data") or {}
        if callback_type in (4, 7, 9):
            check_message_limits(data, prefix=["data"])
        message: FakeMessage | None = None
        if callback_type == 4:
            message = fake.store.create(
                interaction.channel_id,
                data,
                files,
                interaction=interaction,
                flags_allowed=RESPONSE_FLAGS,
            )
            interaction.original = message
        elif callback_type == 5:
            flags = FLAG_LOADING | (int(data.get("flags") or 0) & FLAG_EPHEMERAL)
            message = fake.store.create(
                interaction.channel_id, {}, [], interaction=interaction, forced_flags=flags, allow_empty=True
            )
            interaction.original = message
        elif callback_type in (6, 7) and source is not None:
            if callback_type == 7:
                fake.store.edit(source, data, files)
            interaction.original = message = source
        elif callback_type == 9:
            interaction.modal = data | {"components": numbered_components(data.get("components") or [])}
        interaction.ephemeral = bool(message and message.ephemeral)
        interaction.callbacks.append(body)
        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        return json_response(self._callback_response(interaction, callback_type, message))

    def _callback_response(
        self, interaction: FakeInteraction, callback_type: int, message: FakeMessage | None
    ) -> dict[str, Any]:
        summary: dict[str, Any] = {"id": str(interaction.id), "type": interaction.type}
        response: dict[str, Any] = {"interaction": summary}
        if message is not None and callback_type in (4, 5, 7):
            summary["response_message_id"] = str(message.id)
            summary["response_message_loading"] = callback_type == 5
            summary["response_message_ephemeral"] = message.ephemeral
            if callback_type in (4, 7):
                response["resource"] = {"type": callback_type, "message": self._fake.store.payload(message)}
        return response

    # --- interaction webhooks -----------------------------------------------------------------------------

    def _interaction_for(self, request: web.Request) -> FakeInteraction:
        fake = self._fake
        interaction = fake.interactions_by_token.get(request.match_info["token"])
        if interaction is None or int(request.match_info["application_id"]) != fake.application_id:
            raise unknown_webhook()
        if fake.now() - interaction.created_at > fake.token_lifetime:
            raise DiscordHTTPError(401, 50027, "Invalid Webhook Token")
        if not interaction.acknowledged:
            raise unknown_webhook()
        return interaction

    def _message_for(self, interaction: FakeInteraction, message_id: str) -> FakeMessage:
        if message_id == "@original":
            message = interaction.original
        else:
            owned = [interaction.original, *interaction.followups]
            message = next((m for m in owned if m is not None and m.id == int(message_id)), None)
        if message is None or message.deleted:
            raise unknown_message()
        return message

    async def _recording_errors(
        self, request: web.Request, action: Callable[[FakeInteraction], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        interaction = self._fake.interactions_by_token.get(request.match_info["token"])
        try:
            return await action(self._interaction_for(request))
        except DiscordHTTPError as error:
            if interaction is not None:
                interaction.errors.append((error.status, error.code))
            raise

    async def create_followup(self, request: web.Request) -> web.StreamResponse:
        async def action(interaction: FakeInteraction) -> web.StreamResponse:
            fake = self._fake
            body, files = await fake.read_body(request)
            check_uploads(files, interaction.attachment_size_limit)
            check_schema("IncomingWebhookRequestPartial", body)
            check_message_limits(body)
            original = interaction.original
            if original is not None and original.loading and not original.deleted:
                # A follow-up right after a type-5 defer fills in the "thinking" message instead of adding one.
                fake.store.edit(original, body, files)
                message = original
            else:
                message = fake.store.create(
                    interaction.channel_id, body, files, interaction=interaction, flags_allowed=RESPONSE_FLAGS
                )
            interaction.followups.append(message)
            if request.query.get("wait", "").lower() not in ("1", "true"):
                return web.Response(status=204)
            return json_response(fake.store.payload(message))

        return await self._recording_errors(request, action)

    async def get_message(self, request: web.Request) -> web.StreamResponse:
        async def action(interaction: FakeInteraction) -> web.StreamResponse:
            message = self._message_for(interaction, request.match_info["message_id"])
            return json_response(self._fake.store.payload(message))

        return await self._recording_errors(request, action)

    async def edit_message(self, request: web.Request) -> web.StreamResponse:
        async def action(interaction: FakeInteraction) -> web.StreamResponse:
            fake = self._fake
            message = self._message_for(interaction, request.match_info["message_id"])
            body, files = await fake.read_body(request)
            check_uploads(files, interaction.attachment_size_limit)
            check_schema("IncomingWebhookUpdateRequestPartial", body)
            check_message_limits(body)
            fake.store.edit(message, body, files)
            return json_response(fake.store.payload(message))

        return await self._recording_errors(request, action)

    async def delete_message(self, request: web.Request) -> web.StreamResponse:
        async def action(interaction: FakeInteraction) -> web.StreamResponse:
            self._fake.store.delete(self._message_for(interaction, request.match_info["message_id"]))
            return web.Response(status=204)

        return await self._recording_errors(request, action)
