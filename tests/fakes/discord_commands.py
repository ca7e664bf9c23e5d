"""Application command routes of the fake Discord: bulk sync (PUT), list, fetch, create, edit, delete."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.discord_validation import DiscordHTTPError, check_schema, error_at, invalid_form_body, json_response

if TYPE_CHECKING:
    from tests.fakes.discord_server import FakeDiscord, Handler

CHAT_INPUT = 1
_CHAT_INPUT_NAME = re.compile(r"^[-_'\w]{1,32}$")
# Discord's locales (https://discord.com/developers/docs/reference#locales): the keys of *_localizations.
LOCALES = frozenset(
    (
        *("id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl", "no", "pl"),
        *("pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi", "th", "zh-CN", "ja"),
        *("zh-TW", "ko"),
    )
)


def unknown_command() -> DiscordHTTPError:
    return DiscordHTTPError(404, 10063, "Unknown application command")


def _check_localizations(
    item: Mapping[str, Any], position: list[str | int], *, name_limit: int = 32, chat_input_name: bool = True
) -> None:
    """Localised names follow the name's rules (1-32 characters; lower case without spaces for chat input and
    options, a context menu's may hold both); localised descriptions are 1-100, and so are choice names."""
    for field, limit in (("name_localizations", name_limit), ("description_localizations", 100)):
        for locale, text in (item.get(field) or {}).items():
            where = [*position, field, locale]
            if locale not in LOCALES:
                raise invalid_form_body(error_at(where, "LOCALE_INVALID", f"Invalid locale {locale}"))
            valid = isinstance(text, str) and 1 <= len(text) <= limit
            if valid and field == "name_localizations" and chat_input_name:
                valid = bool(_CHAT_INPUT_NAME.match(text)) and text == text.lower()
            if not valid:
                raise invalid_form_body(error_at(where, "APPLICATION_COMMAND_INVALID_NAME", "Invalid localization"))


def _check_command(command: Mapping[str, Any], position: list[str | int]) -> None:
    """What the schema cannot say: chat-input names are lower case, descriptions required, required first."""
    chat_input = (command.get("type") or CHAT_INPUT) == CHAT_INPUT
    _check_localizations(command, position, chat_input_name=chat_input)
    if not chat_input:
        return
    name = command.get("name", "")
    if not _CHAT_INPUT_NAME.match(name) or name != name.lower():
        message = "Command name is invalid"
        raise invalid_form_body(error_at([*position, "name"], "APPLICATION_COMMAND_INVALID_NAME", message))
    if not command.get("description"):
        raise invalid_form_body(error_at([*position, "description"], "BASE_TYPE_REQUIRED", "This field is required"))
    options = command.get("options") or []
    seen_optional = False
    for index, option in enumerate(options):
        if option.get("type") in (1, 2):
            _check_command(option | {"type": CHAT_INPUT}, [*position, "options", index])
            continue
        _check_localizations(option, [*position, "options", index])
        for choice_index, choice in enumerate(option.get("choices") or []):
            choice_at = [*position, "options", index, "choices", choice_index]
            _check_localizations(choice, choice_at, name_limit=100, chat_input_name=False)
        if option.get("required") and seen_optional:
            message = "Required options must be placed before non-required options"
            raise invalid_form_body(
                error_at([*position, "options"], "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID", message)
            )
        seen_optional = seen_optional or not option.get("required")


class CommandRoutes:
    """Keeps `FakeDiscord.synced_commands` (None = global, guild id = guild commands)."""

    def __init__(self, fake: FakeDiscord) -> None:
        self._fake = fake

    def register(self, add: Callable[[str, str, Handler], None]) -> None:
        for prefix in ("/applications/{application_id}", "/applications/{application_id}/guilds/{guild_id}"):
            add("GET", prefix + "/commands", self.list_commands)
            add("PUT", prefix + "/commands", self.bulk_overwrite)
            add("POST", prefix + "/commands", self.create_command)
            add("GET", prefix + "/commands/{command_id}", self.get_command)
            add("PATCH", prefix + "/commands/{command_id}", self.edit_command)
            add("DELETE", prefix + "/commands/{command_id}", self.delete_command)

    def _scope(self, request: web.Request) -> int | None:
        if int(request.match_info["application_id"]) != self._fake.application_id:
            raise DiscordHTTPError(403, 50001, "Missing Access")
        if "guild_id" not in request.match_info:
            return None
        guild_id = int(request.match_info["guild_id"])
        if guild_id not in self._fake.guilds:
            raise DiscordHTTPError(403, 50001, "Missing Access")
        return guild_id

    def _render(self, body: Mapping[str, Any], scope: int | None, command_id: int) -> dict[str, Any]:
        permissions = body.get("default_member_permissions")
        rendered: dict[str, Any] = {
            "id": str(command_id),
            "application_id": str(self._fake.application_id),
            "version": str(self._fake.new_id()),
            "default_member_permissions": None if permissions is None else str(permissions),
            "type": body.get("type") or CHAT_INPUT,
            "name": body["name"],
            "name_localizations": body.get("name_localizations"),
            "description": body.get("description") or "",
            "description_localizations": body.get("description_localizations"),
            "contexts": body.get("contexts"),
            "integration_types": body.get("integration_types") or [0],
            "nsfw": bool(body.get("nsfw")),
        }
        if body.get("options"):
            rendered["options"] = body["options"]
        if scope is None:
            rendered["dm_permission"] = body.get("dm_permission", True) is not False
        else:
            rendered["guild_id"] = str(scope)
        return rendered

    def _existing_id(self, scope: int | None, body: Mapping[str, Any]) -> int | None:
        for command in self._fake.synced_commands.get(scope, []):
            if command["name"] == body["name"] and command["type"] == (body.get("type") or CHAT_INPUT):
                return int(command["id"])
        return None

    def _find(self, request: web.Request) -> tuple[int | None, dict[str, Any]]:
        scope = self._scope(request)
        wanted = request.match_info["command_id"]
        for command in self._fake.synced_commands.get(scope, []):
            if command["id"] == wanted:
                return scope, command
        raise unknown_command()

    async def list_commands(self, request: web.Request) -> web.Response:
        return json_response(self._fake.synced_commands.get(self._scope(request), []))

    async def bulk_overwrite(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        body, _ = await self._fake.read_body(request)
        if not isinstance(body, list):
            raise invalid_form_body(error_at([], "BASE_TYPE_ARRAY", "Must be an array."))
        seen: set[tuple[str, int]] = set()
        for index, command in enumerate(body):
            check_schema("ApplicationCommandUpdateRequest", command, prefix=[index])
            _check_command(command, [index])
            key = (command["name"], command.get("type") or CHAT_INPUT)
            if key in seen:
                message = "Application command names must be unique"
                raise invalid_form_body(error_at([index, "name"], "APPLICATION_COMMANDS_DUPLICATE_NAME", message))
            seen.add(key)
        rendered = [
            self._render(command, scope, self._existing_id(scope, command) or self._fake.new_id()) for command in body
        ]
        self._fake.synced_commands[scope] = rendered
        return json_response(rendered)

    async def create_command(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        body, _ = await self._fake.read_body(request)
        check_schema("ApplicationCommandUpdateRequest", body)
        _check_command(body, [])
        existing = self._existing_id(scope, body)
        rendered = self._render(body, scope, existing or self._fake.new_id())
        commands = [c for c in self._fake.synced_commands.get(scope, []) if c["id"] != rendered["id"]]
        self._fake.synced_commands[scope] = [*commands, rendered]
        return json_response(rendered, status=200 if existing else 201)

    async def get_command(self, request: web.Request) -> web.Response:
        return json_response(self._find(request)[1])

    async def edit_command(self, request: web.Request) -> web.Response:
        scope, command = self._find(request)
        body, _ = await self._fake.read_body(request)
        changes = body if isinstance(body, dict) else {}
        merged = command | changes
        check_schema("ApplicationCommandUpdateRequest", {"name": merged["name"]} | changes)
        _check_command(merged, [])
        rendered = self._render(merged, scope, int(command["id"]))
        commands = self._fake.synced_commands[scope]
        commands[commands.index(command)] = rendered
        return json_response(rendered)

    async def delete_command(self, request: web.Request) -> web.Response:
        scope, command = self._find(request)
        self._fake.synced_commands[scope].remove(command)
        return web.Response(status=204)
