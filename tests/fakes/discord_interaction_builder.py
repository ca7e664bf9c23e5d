"""Builds the fake Discord's INTERACTION_CREATE payloads: command options, component clicks, modal submits."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tests.fakes.discord_interactions import ModalValue
from tests.fakes.discord_models import (
    AttachmentOption,
    ChannelOption,
    FakeAttachment,
    FakeInteraction,
    FakeMessage,
    RoleOption,
    UserOption,
)
from tests.fakes.discord_validation import walk_components

if TYPE_CHECKING:
    from tests.fakes.discord_server import FakeDiscord


MESSAGE_COMMAND = 3  # application command type of the Apps menu on a message
_TYPE_BY_REF: dict[type, int] = {UserOption: 6, ChannelOption: 7, RoleOption: 8, AttachmentOption: 11}
_DICT_REF_KEYS = {"user": 6, "channel": 7, "role": 8}


def infer_option_type(value: Any) -> int:
    """Option type for a Python value when the command was never synced: str 3, int 4, bool 5, float 10, refs."""
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    if isinstance(value, str):
        return 3
    if type(value) in _TYPE_BY_REF:
        return _TYPE_BY_REF[type(value)]
    if isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in _DICT_REF_KEYS:
        return _DICT_REF_KEYS[next(iter(value))]
    raise TypeError(f"cannot turn {value!r} into a command option")


def _referenced_id(value: Any) -> int:
    if isinstance(value, UserOption):
        return value.user_id
    if isinstance(value, ChannelOption):
        return value.channel_id
    if isinstance(value, RoleOption):
        return value.role_id
    if isinstance(value, Mapping):
        return int(next(iter(value.values())))
    return int(value)


class InteractionBuilder:
    """Builds the INTERACTION_CREATE payloads a Discord client would cause."""

    def __init__(self, fake: FakeDiscord) -> None:
        self._fake = fake

    def new_interaction(
        self,
        interaction_type: int,
        data: dict[str, Any],
        *,
        guild_id: int,
        channel_id: int,
        user_id: int,
        app_permissions: int | None = None,
        attachment_size_limit: int | None = None,
        message: FakeMessage | None = None,
        locale: str | None = None,
    ) -> FakeInteraction:
        """`locale`: the language the member's Discord client is set to, sent on every interaction they cause
        (default: the one `FakeDiscord.client_locales` holds for them, else en-US); `guild_locale` is the
        server's preferred locale."""
        fake = self._fake
        guild = fake.guilds[guild_id]
        channel = guild.channels[channel_id]
        member = guild.members.get(user_id)
        if member is None:
            raise ValueError(f"user {user_id} is not a member of guild {guild_id}; add_member first")
        permissions = guild.permissions_of(user_id)
        bot_permissions = guild.permissions_of(fake.bot_user_id) if app_permissions is None else app_permissions
        size_limit = attachment_size_limit or max(fake.default_upload_limit, guild.upload_limit)
        interaction_id = fake.new_id()
        secret = f"interaction:{interaction_id}:{secrets.token_urlsafe(48)}"
        token = base64.urlsafe_b64encode(secret.encode()).decode().rstrip("=")
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(fake.application_id),
            "type": interaction_type,
            "data": data,
            "guild_id": str(guild_id),
            "guild": {"id": str(guild_id), "locale": guild.preferred_locale, "features": []},
            "channel_id": str(channel_id),
            "channel": channel.to_payload(permissions=permissions),
            "member": member.to_payload(permissions=permissions),
            "token": token,
            "version": 1,
            "app_permissions": str(bot_permissions),
            "locale": locale or fake.client_locales.get(user_id, "en-US"),
            "guild_locale": guild.preferred_locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(guild_id)},
            "context": 0,
            "attachment_size_limit": size_limit,
        }
        if message is not None:
            payload["message"] = fake.store.payload(message)
        return FakeInteraction(
            id=interaction_id,
            token=token,
            type=interaction_type,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            created_at=fake.now(),
            attachment_size_limit=size_limit,
            payload=payload,
            source_message=message,
        )

    # --- slash commands ---------------------------------------------------------------------------------

    def command_data(
        self, name: str, options: Mapping[str, Any], *, guild_id: int, subcommand: str | None
    ) -> dict[str, Any]:
        """`data` of a chat-input command; options are typed by the synced definition when there is one."""
        command = self._fake.find_command(name, guild_id)
        definitions: list[dict[str, Any]] | None = None if command is None else command.get("options") or []
        resolved: dict[str, dict[str, Any]] = {}
        wrappers: list[tuple[str, int]] = []
        for part in (subcommand or "").split():
            wrapper = None
            if definitions is not None:
                wrapper = next((o for o in definitions if o["name"] == part and o["type"] in (1, 2)), None)
                if wrapper is None:
                    raise ValueError(f"/{name} has no subcommand {part!r}")
                definitions = wrapper.get("options") or []
            wrappers.append((part, wrapper["type"] if wrapper else 1))
        if len(wrappers) == 2:
            wrappers[0] = (wrappers[0][0], 2)
        built = self._options(definitions, options, guild_id=guild_id, resolved=resolved)
        for part, option_type in reversed(wrappers):
            built = [{"name": part, "type": option_type, "options": built}]
        data: dict[str, Any] = {
            "id": str(command["id"]) if command else str(self._fake.stable_command_id(name)),
            "name": name,
            "type": 1,
            "options": built,
        }
        if resolved:
            data["resolved"] = resolved
        if command is not None and command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return data

    def _options(
        self,
        definitions: list[dict[str, Any]] | None,
        values: Mapping[str, Any],
        *,
        guild_id: int,
        resolved: dict[str, dict[str, Any]],
    ) -> list[dict[str, Any]]:
        by_name = {d["name"]: d for d in definitions or []}
        if definitions is not None:
            unknown = sorted(set(values) - set(by_name))
            if unknown:
                raise ValueError(f"unknown options {unknown}; the command has {sorted(by_name)}")
            missing = [d["name"] for d in definitions if d.get("required") and d["name"] not in values]
            if missing:
                raise ValueError(f"required options missing: {missing}")
        built = []
        for name, value in values.items():
            definition = by_name.get(name)
            option_type = definition["type"] if definition else infer_option_type(value)
            option_value = self._option_value(option_type, value, definition, guild_id=guild_id, resolved=resolved)
            built.append({"name": name, "type": option_type, "value": option_value})
        return built

    def _option_value(
        self,
        option_type: int,
        value: Any,
        definition: Mapping[str, Any] | None,
        *,
        guild_id: int,
        resolved: dict[str, dict[str, Any]],
    ) -> Any:
        fake = self._fake
        guild = fake.guilds[guild_id]
        if option_type in (3, 4, 5, 10):
            python_types: dict[int, tuple[type, ...]] = {3: (str,), 4: (int,), 5: (bool,), 10: (int, float)}
            if not isinstance(value, python_types[option_type]) or (option_type != 5 and isinstance(value, bool)):
                raise TypeError(f"option value {value!r} does not fit option type {option_type}")
            _check_option_constraints(value, definition or {})
            return value
        if option_type == 11:
            if not isinstance(value, AttachmentOption):
                raise TypeError("attachment options take an AttachmentOption")
            attachment = FakeAttachment(fake.new_id(), value.filename, value.content_type, value.data)
            fake.option_attachments[attachment.id] = attachment
            payload = attachment.to_payload(cdn_base=fake.cdn_base, channel_id=0) | {"ephemeral": True}
            resolved.setdefault("attachments", {})[str(attachment.id)] = payload
            return str(attachment.id)
        target_id = _referenced_id(value)
        if option_type in (6, 9) and target_id in fake.users:
            resolved.setdefault("users", {})[str(target_id)] = fake.users[target_id].to_payload()
            if target_id in guild.members:
                member = guild.members[target_id].to_payload(
                    with_user=False, permissions=guild.permissions_of(target_id)
                )
                resolved.setdefault("members", {})[str(target_id)] = member
        elif option_type in (8, 9) and target_id in guild.roles:
            resolved.setdefault("roles", {})[str(target_id)] = guild.roles[target_id].to_payload()
        elif option_type == 7 and target_id in guild.channels:
            channel = guild.channels[target_id].to_payload(permissions=guild.permissions_of(fake.bot_user_id))
            resolved.setdefault("channels", {})[str(target_id)] = channel
        else:
            raise ValueError(f"no user/role/channel {target_id} for an option of type {option_type}")
        return str(target_id)

    def message_command_data(self, name: str, message: FakeMessage, *, guild_id: int) -> dict[str, Any]:
        """`data` of a message command (the message's Apps menu): type 3, the message as `target_id`, and the
        message itself in `resolved.messages`."""
        command = self._fake.find_command(name, guild_id, command_type=MESSAGE_COMMAND)
        data: dict[str, Any] = {
            "id": str(command["id"]) if command else str(self._fake.stable_command_id(name)),
            "name": name,
            "type": MESSAGE_COMMAND,
            "target_id": str(message.id),
            "resolved": {"messages": {str(message.id): self._fake.store.payload(message)}},
        }
        if command is not None and command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return data

    # --- components and modals ----------------------------------------------------------------------------

    @staticmethod
    def find_component(message: FakeMessage, custom_id: str) -> dict[str, Any]:
        for component in walk_components(message.components):
            if component.get("custom_id") == custom_id:
                return dict(component)
        raise ValueError(f"message {message.id} has no component with custom_id {custom_id!r}")

    @staticmethod
    def modal_submit_components(modal: Mapping[str, Any], values: Mapping[str, ModalValue]) -> list[dict[str, Any]]:
        """What Discord sends back for a submitted modal: the modal's layout with the user's values filled in."""
        remaining = dict(values)

        def submitted(component: Mapping[str, Any]) -> dict[str, Any]:
            custom_id: str | None = component.get("custom_id")
            result: dict[str, Any] = {"type": component["type"], "id": component.get("id")}
            if component["type"] == 4 and custom_id is not None:
                value = str(remaining.pop(custom_id, component.get("value") or ""))
                if component.get("required", True) and not value:
                    raise ValueError(f"text input {custom_id!r} is required")
                if len(value) > int(component.get("max_length") or 4000) or (
                    value and len(value) < int(component.get("min_length") or 0)
                ):
                    raise ValueError(f"value for {custom_id!r} breaks its min_length/max_length")
                return result | {"custom_id": custom_id, "value": value}
            if component["type"] == 10:
                return result | {"content": component.get("content", "")}
            if custom_id is None:
                return result
            chosen = remaining.pop(custom_id, None)
            if component["type"] == 23:  # checkbox
                return result | {"custom_id": custom_id, "value": bool(chosen)}
            if component.get("required", True) and not chosen:
                raise ValueError(f"modal input {custom_id!r} is required")
            if component["type"] == 21:  # radio group
                return result | {"custom_id": custom_id, "value": chosen}
            if isinstance(chosen, bool):
                raise TypeError(f"modal input {custom_id!r} takes a list of values, not {chosen!r}")
            picked = [chosen] if isinstance(chosen, str) else list(chosen or [])
            return result | {"custom_id": custom_id, "values": picked}  # selects, uploads, checkbox groups

        def row_or_label(component: Mapping[str, Any]) -> dict[str, Any]:
            if component["type"] == 1:
                inner = [submitted(c) for c in component.get("components") or []]
                return {"type": 1, "id": component.get("id"), "components": inner}
            if component["type"] == 18:
                return {"type": 18, "id": component.get("id"), "component": submitted(component["component"])}
            return submitted(component)

        rows = [row_or_label(component) for component in modal.get("components") or []]
        if remaining:
            raise ValueError(f"the modal has no inputs called {sorted(remaining)}")
        return rows


def _check_option_constraints(value: Any, definition: Mapping[str, Any]) -> None:
    choices = definition.get("choices")
    if choices and value not in [choice["value"] for choice in choices]:
        raise ValueError(f"{value!r} is not one of the choices of option {definition['name']!r}")
    if isinstance(value, str):
        if len(value) < (definition.get("min_length") or 0) or len(value) > (definition.get("max_length") or 6000):
            raise ValueError(f"{value!r} breaks min_length/max_length of option {definition['name']!r}")
    elif not isinstance(value, bool):
        minimum, maximum = definition.get("min_value"), definition.get("max_value")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ValueError(f"{value!r} is outside min_value/max_value of option {definition['name']!r}")
