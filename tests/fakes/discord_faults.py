"""Fault injection for the fake Discord: answer the next matching requests with an error, or hold them a while.

Used through FakeDiscord.fail_next / delay_next / clear_faults. Names in FAULT_ROUTES select the requests.

What discord.py 2.7 does with the errors (discord/http.py HTTPClient.request for bot-token routes such as
create_message; discord/webhook/async_.py AsyncWebhookAdapter.request for the interaction routes):

* bot-token routes retry 500, 502, 504 and 524 only; any other 5xx (e.g. 503) raises DiscordServerError at once.
* interaction routes (callback, followup, edit_original, edit_webhook_message) retry every status >= 500.
* both make at most 5 attempts and sleep 1 + 2 * attempt seconds (1, 3, 5, 7, 9) after each failed one, the
  last included, then raise DiscordServerError: a final failure needs 5 injected errors and costs 25 s of
  sleeping unless a test stubs the sleeps.
* a 429 is only retried if the response has a `Via` header and a JSON body with `retry_after`; otherwise
  discord.py takes it for a Cloudflare ban and raises HTTPException. Injected errors always carry
  `Via: 1.1 google` (as Discord's API responses do) and a JSON body typed exactly application/json.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar

from aiohttp import web

from tests.fakes.discord_validation import json_response

# Route name -> (method, path without /api/v10). Ids are numeric; {token} is an interaction token.
FAULT_ROUTES: dict[str, tuple[str, str]] = {
    "callback": ("POST", "/interactions/{interaction_id}/{token}/callback"),
    "followup": ("POST", "/webhooks/{application_id}/{token}"),
    "edit_original": ("PATCH", "/webhooks/{application_id}/{token}/messages/@original"),
    "edit_webhook_message": ("PATCH", "/webhooks/{application_id}/{token}/messages/{message_id}"),  # not @original
    "create_message": ("POST", "/channels/{channel_id}/messages"),
    "edit_message": ("PATCH", "/channels/{channel_id}/messages/{message_id}"),
    "list_messages": ("GET", "/channels/{channel_id}/messages"),
}

# Default `message` of an injected error with one of these JSON error codes (topics/opcodes-and-status-codes).
ERROR_MESSAGES: dict[int, str] = {
    10003: "Unknown Channel",
    10008: "Unknown Message",
    10015: "Unknown Webhook",
    10062: "Unknown interaction",
    40005: "Request entity too large",
    40060: "Interaction has already been acknowledged.",
    50001: "Missing Access",
    50006: "Cannot send an empty message",
    50013: "Missing Permissions",
    50027: "Invalid Webhook Token",
    50035: "Invalid Form Body",
}


def _pattern(path: str) -> re.Pattern[str]:
    """`/channels/{channel_id}/messages` -> a regex with a named group per placeholder (ids numeric)."""
    regex = ""
    for part in re.split(r"(\{\w+\})", path):
        if part.startswith("{"):
            name = part[1:-1]
            regex += rf"(?P<{name}>[^/]+)" if name == "token" else rf"(?P<{name}>\d+)"
        else:
            regex += re.escape(part)
    return re.compile(regex)


_PATTERNS = {name: (method, _pattern(path)) for name, (method, path) in FAULT_ROUTES.items()}


def match_route(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """The FAULT_ROUTES name of a request (path without /api/v10) and its path parameters, or None."""
    for name, (route_method, pattern) in _PATTERNS.items():
        if method == route_method and (found := pattern.fullmatch(path)):
            return name, found.groupdict()
    return None


def _check_route(route: str) -> None:
    if route not in FAULT_ROUTES:
        raise ValueError(f"unknown route {route!r}; known routes: {', '.join(FAULT_ROUTES)}")


@dataclass
class InjectedFailure:
    """An error answer armed by fail_next."""

    status: int
    code: int
    message: str
    retry_after: float
    remaining: int

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.status == 429:
            body |= {"retry_after": self.retry_after, "global": False}
        return body

    def response(self) -> web.Response:
        response = json_response(self.body(), status=self.status)
        response.headers["Via"] = "1.1 google"
        if self.status == 429:
            response.headers["Retry-After"] = str(math.ceil(self.retry_after))
            response.headers["X-RateLimit-Scope"] = "user"
        return response


@dataclass
class _Delay:
    seconds: float
    remaining: int


_Item = TypeVar("_Item", InjectedFailure, _Delay)


class FaultInjector:
    """Per-route queues of armed failures and delays, consumed in order by the requests that match them.

    Delays are held with `sleep`: FakeDiscord passes one that its stop() cuts short, so a request held for
    30 s never keeps a test's teardown waiting."""

    def __init__(self, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self._sleep = sleep
        self._failures: dict[str, deque[InjectedFailure]] = {name: deque() for name in FAULT_ROUTES}
        self._delays: dict[str, deque[_Delay]] = {name: deque() for name in FAULT_ROUTES}
        self._response_delays: dict[str, deque[_Delay]] = {name: deque() for name in FAULT_ROUTES}

    def fail_next(
        self,
        route: str,
        *,
        status: int,
        code: int = 0,
        message: str | None = None,
        times: int = 1,
        retry_after: float = 0.1,
    ) -> None:
        _check_route(route)
        if not 400 <= status <= 599:
            raise ValueError(f"status {status} is not an HTTP error status (400-599)")
        if times < 1:
            raise ValueError("times must be at least 1")
        if message is None:
            message = ERROR_MESSAGES.get(code) or _generic_message(status)
        self._failures[route].append(InjectedFailure(status, code, message, retry_after, times))

    def delay_next(self, route: str, *, seconds: float, times: int = 1, response_only: bool = False) -> None:
        _check_route(route)
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        if times < 1:
            raise ValueError("times must be at least 1")
        (self._response_delays if response_only else self._delays)[route].append(_Delay(seconds, times))

    def clear(self) -> None:
        for failures in self._failures.values():
            failures.clear()
        for delays in (*self._delays.values(), *self._response_delays.values()):
            delays.clear()

    def pending(self) -> list[str]:
        """Armed faults not yet used up, for describe()."""
        lines = [f"{route}: fail {f.status}/{f.code} x{f.remaining}" for route, q in self._failures.items() for f in q]
        lines += [f"{route}: delay {d.seconds} s x{d.remaining}" for route, q in self._delays.items() for d in q]
        lines += [
            f"{route}: delay response {d.seconds} s x{d.remaining}"
            for route, q in self._response_delays.items()
            for d in q
        ]
        return lines

    def response_delay(self, route: str) -> float:
        """Seconds to hold the answer of a request that has just arrived (0 if none is armed); taken on arrival,
        like before_handling, so requests keep their order."""
        delay = _take(self._response_delays[route])
        return delay.seconds if delay is not None else 0.0

    async def before_handling(self, route: str) -> InjectedFailure | None:
        """Hold the request if a delay is armed, then return the failure to answer with, if one is armed.

        Both are taken when the request arrives, so requests are served in arrival order.
        """
        delay = _take(self._delays[route])
        failure = _take(self._failures[route])
        if delay is not None:
            await self._sleep(delay.seconds)
        return failure


def _take(queue: deque[_Item]) -> _Item | None:
    if not queue:
        return None
    item = queue[0]
    item.remaining -= 1
    if item.remaining == 0:
        queue.popleft()
    return item


def _generic_message(status: int) -> str:
    """Discord's body for errors without a JSON code, e.g. {"message": "500: Internal Server Error", "code": 0}."""
    if status == 429:
        return "You are being rate limited."
    try:
        return f"{status}: {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status}: Error"
