"""Request checks for the fake Discord: vendored OpenAPI request schemas plus Discord's documented limits."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import ValidationError, best_match  # type: ignore[import-untyped]

SCHEMA_PATH = Path(__file__).with_name("discord_schemas.json")

# Request bodies the fake validates, by the OpenAPI component that describes them.
ROOT_SCHEMAS = (
    "CreateMessageInteractionCallbackRequest",  # callback types 4, 5
    "UpdateMessageInteractionCallbackRequest",  # callback types 6, 7
    "ModalInteractionCallbackRequest",  # callback type 9
    "ApplicationCommandAutocompleteCallbackRequest",  # callback type 8
    "PongInteractionCallbackRequest",  # callback type 1
    "IncomingWebhookRequestPartial",  # POST /webhooks/{app}/{token}
    "IncomingWebhookUpdateRequestPartial",  # PATCH /webhooks/{app}/{token}/messages/...
    "MessageCreateRequest",  # POST /channels/{id}/messages
    "MessageEditRequestPartial",  # PATCH /channels/{id}/messages/{id}
    "ApplicationCommandUpdateRequest",  # PUT /applications/{app}[/guilds/{gid}]/commands (each item)
)

CALLBACK_SCHEMA_BY_TYPE = {
    1: "PongInteractionCallbackRequest",
    4: "CreateMessageInteractionCallbackRequest",
    5: "CreateMessageInteractionCallbackRequest",
    6: "UpdateMessageInteractionCallbackRequest",
    7: "UpdateMessageInteractionCallbackRequest",
    8: "ApplicationCommandAutocompleteCallbackRequest",
    9: "ModalInteractionCallbackRequest",
}

# Discord's documented limits (developers/resources/message.mdx "Embed Limits", components/reference.mdx).
CONTENT_LIMIT = 2000
EMBED_TOTAL_LIMIT = 6000
MAX_FILES = 10
CUSTOM_ID_LIMIT = 100


class DiscordHTTPError(Exception):
    """An error the fake answers with, in Discord's JSON shape: {"message", "code"[, "errors"]}."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """JSON with Discord's exact Content-Type; discord.py only parses bodies typed exactly application/json."""
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")


def error_at(path: Sequence[str | int], code: str, message: str) -> dict[str, Any]:
    """Build Discord's nested form-error object, e.g. {"embeds": {"0": {"title": {"_errors": [...]}}}}."""
    node: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path):
        node = {str(key): node}
    return node


def invalid_form_body(errors: dict[str, Any]) -> DiscordHTTPError:
    return DiscordHTTPError(400, 50035, "Invalid Form Body", errors)


@dataclass
class UploadedFile:
    """One `files[n]` part of a multipart request."""

    index: int
    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


def check_uploads(files: Sequence[UploadedFile], size_limit: int) -> None:
    """Per-file size limit (413/40005) and the 10-attachment limit, checked before the body is parsed."""
    if any(upload.size > size_limit for upload in files):
        raise DiscordHTTPError(413, 40005, "Request entity too large")
    if len(files) > MAX_FILES:
        raise DiscordHTTPError(400, 30015, f"Maximum number of attachments in a message reached ({MAX_FILES})")


@cache
def _validator(schema_name: str) -> Draft202012Validator:
    document = json.loads(SCHEMA_PATH.read_text())
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    return Draft202012Validator(root)


def _describe(error: ValidationError) -> tuple[list[str | int], str, str]:
    path: list[str | int] = list(error.absolute_path)
    value = error.validator_value
    match error.validator:
        case "maxLength" | "maxItems":
            return path, "BASE_TYPE_MAX_LENGTH", f"Must be {value} or fewer in length."
        case "minLength" | "minItems":
            return path, "BASE_TYPE_MIN_LENGTH", f"Must be {value} or more in length."
        case "required":
            missing = next((name for name in value if name not in error.instance), "?")
            return [*path, missing], "BASE_TYPE_REQUIRED", "This field is required"
        case "enum":
            return path, "BASE_TYPE_CHOICES", f"Value must be one of {set(value)}."
        case "maximum":
            return path, "NUMBER_TYPE_MAX", f"int value should be less than or equal to {value}."
        case "minimum":
            return path, "NUMBER_TYPE_MIN", f"int value should be greater than or equal to {value}."
        case _:
            return path, f"SCHEMA_{str(error.validator).upper()}", error.message


def check_schema(schema_name: str, body: Any, *, prefix: Sequence[str | int] = ()) -> None:
    """Validate `body` against a vendored OpenAPI request schema; raise 400/50035 naming the worst field."""
    try:
        text = json.dumps(body, allow_nan=False)
    except (TypeError, ValueError):  # not plain JSON: validate it as it is, without the memo
        problem = _worst_problem(schema_name, body)
    else:
        problem = _worst_problem_of_json(schema_name, text)
    if problem is None:
        return
    path, code, message = problem
    raise invalid_form_body(error_at([*prefix, *path], code, message))


def _worst_problem(schema_name: str, body: Any) -> tuple[tuple[str | int, ...], str, str] | None:
    error = best_match(_validator(schema_name).iter_errors(body))
    if error is None:
        return None
    path, code, message = _describe(error)
    return tuple(path), code, message


@lru_cache(maxsize=4096)
def _worst_problem_of_json(schema_name: str, text: str) -> tuple[tuple[str | int, ...], str, str] | None:
    """The same check, memoised on the body's exact JSON text (key order kept, so even which error is the
    worst is unchanged): the bot sends the same bodies again and again (its whole command list at each start,
    the same progress edits), and a schema check costs milliseconds of CPU."""
    return _worst_problem(schema_name, json.loads(text))


def _embed_text_length(embed: Mapping[str, Any]) -> int:
    total = len(embed.get("title") or "") + len(embed.get("description") or "")
    total += len((embed.get("footer") or {}).get("text") or "")
    total += len((embed.get("author") or {}).get("name") or "")
    for field in embed.get("fields") or []:
        total += len(field.get("name") or "") + len(field.get("value") or "")
    return total


def _walk_components(components: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for component in components:
        yield component
        yield from _walk_components(component.get("components") or [])
        for key in ("component", "accessory"):
            if isinstance(component.get(key), Mapping):
                yield from _walk_components([component[key]])


def walk_components(components: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Every component, depth first, including those inside rows, sections, containers and labels."""
    return _walk_components(components)


def check_message_limits(body: Mapping[str, Any], *, prefix: Sequence[str | int] = ()) -> None:
    """Limits the OpenAPI schemas miss or state differently: content 2000 for bots, embed totals, custom_ids."""
    content = body.get("content")
    if isinstance(content, str) and len(content) > CONTENT_LIMIT:
        message = f"Must be {CONTENT_LIMIT} or fewer in length."
        raise invalid_form_body(error_at([*prefix, "content"], "BASE_TYPE_MAX_LENGTH", message))
    embeds = body.get("embeds") or []
    if sum(_embed_text_length(embed) for embed in embeds if isinstance(embed, Mapping)) > EMBED_TOTAL_LIMIT:
        message = f"Embed size exceeds maximum size of {EMBED_TOTAL_LIMIT}"
        raise invalid_form_body(error_at([*prefix, "embeds"], "MAX_EMBED_SIZE_EXCEEDED", message))
    seen: set[str] = set()
    for component in walk_components(body.get("components") or []):
        custom_id = component.get("custom_id")
        if custom_id is None:
            continue
        if len(custom_id) > CUSTOM_ID_LIMIT:
            message = f"Must be {CUSTOM_ID_LIMIT} or fewer in length."
            raise invalid_form_body(error_at([*prefix, "components"], "BASE_TYPE_MAX_LENGTH", message))
        if custom_id in seen:
            message = "Component custom id cannot be duplicated"
            raise invalid_form_body(error_at([*prefix, "components"], "COMPONENT_CUSTOM_ID_DUPLICATED", message))
        seen.add(custom_id)
    mentions = body.get("allowed_mentions") or {}
    for kind in ("users", "roles"):
        if kind in (mentions.get("parse") or []) and mentions.get(kind):
            message = f"parse:[{kind}] and {kind}: [ids...] are mutually exclusive."
            raise invalid_form_body(
                error_at([*prefix, "allowed_mentions"], "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE", message)
            )


# --- regenerating discord_schemas.json from the full spec -------------------------------------------------

_SNOWFLAKE_ACCEPTING_INTEGERS = {
    "anyOf": [
        {"type": "string", "pattern": "^(0|[1-9][0-9]*)$"},
        {"type": "integer", "minimum": 0},
    ],
    "format": "snowflake",
}


# Discord's documentation (which wins over the preview spec) has a second reference type, FORWARD = 1, that the
# spec's MessageReferenceType does not list yet.
_MESSAGE_REFERENCE_TYPE_FORWARD = {"title": "FORWARD", "description": "Forward of a message", "const": 1}


def _referenced_names(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.rsplit("/", 1)[-1]
            else:
                yield from _referenced_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from _referenced_names(item)


def regenerate_schemas(spec_path: Path) -> None:
    """Copy ROOT_SCHEMAS and everything they reference out of Discord's openapi.json into SCHEMA_PATH."""
    spec = json.loads(spec_path.read_text())
    all_schemas = spec["components"]["schemas"]
    wanted: dict[str, Any] = {}
    pending = list(ROOT_SCHEMAS)
    while pending:
        name = pending.pop()
        if name in wanted:
            continue
        wanted[name] = all_schemas[name]
        pending.extend(_referenced_names(all_schemas[name]))
    wanted["SnowflakeType"] = _SNOWFLAKE_ACCEPTING_INTEGERS
    reference_types = wanted["MessageReferenceType"]["oneOf"]
    if _MESSAGE_REFERENCE_TYPE_FORWARD not in reference_types:
        reference_types.append(_MESSAGE_REFERENCE_TYPE_FORWARD)
    document = {
        "$comment": (
            "Subset of Discord's official OpenAPI description (discord/discord-api-spec specs/openapi.json, "
            "MIT licence, Copyright 2023 Discord; full text in DISCORD_OPENAPI_LICENSE beside this "
            "file). Only request schemas used by tests/fakes are kept. One change: SnowflakeType also accepts "
            "non-negative integers, as the live API does and discord.py sends (attachment ids, mention ids); "
            "MessageReferenceType also lists FORWARD (1), as Discord's documentation does. "
            "Regenerate with: uv run python -m tests.fakes.discord_validation /path/to/openapi.json"
        ),
        "x-source-info": spec.get("info", {}),
        "components": {"schemas": dict(sorted(wanted.items()))},
    }
    SCHEMA_PATH.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")


if __name__ == "__main__":
    regenerate_schemas(Path(sys.argv[1]))
