"""FakeDiscord's HTTP plumbing (middleware, injected faults, bodies) and its user, application and guild routes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakes.discord_faults import InjectedFailure, match_route
from tests.fakes.discord_models import FakeGuild, RecordedRequest
from tests.fakes.discord_validation import DiscordHTTPError, UploadedFile, json_response

_FILE_FIELD = re.compile(r"files\[(\d+)\]")
_UNAUTHENTICATED_PREFIXES = ("/webhooks/", "/interactions/")
_RECORD = web.RequestKey("record", RecordedRequest)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpPlumbing:
    """FakeDiscord's request middleware and body reading, and the REST routes for users, the application and guilds."""

    # --- HTTP plumbing ------------------------------------------------------------------------------------

    async def _hold(self, seconds: float) -> None:
        """Sleep for a delay_next hold; stop() cuts it short, so a held request never delays shutdown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)

    def _route_adder(self, app: web.Application) -> Callable[[str, str, Handler], None]:
        def add(method: str, path: str, handler: Handler) -> None:
            app.router.add_route(method, r"/api/v{version:\d+}" + path, handler)

        return add

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/gateway-ws"):
            return await handler(request)
        path = re.sub(r"^/api/v\d+", "", request.path)
        response_delay = 0.0
        record = RecordedRequest(request.method, path, dict(request.query), None, [], at=self.now())
        request[_RECORD] = record
        self.requests.append(record)
        try:
            needs_bot_token = request.path.startswith("/api/") and not path.startswith(_UNAUTHENTICATED_PREFIXES)
            if needs_bot_token and request.headers.get("Authorization") != f"Bot {self.bot_token}":
                raise DiscordHTTPError(401, 0, "401: Unauthorized")
            matched = match_route(request.method, path)
            response_delay = self.faults.response_delay(matched[0]) if matched else 0.0
            failure = await self.faults.before_handling(matched[0]) if matched else None
            response: web.StreamResponse
            if self._closing.is_set():  # stop() cut a hold short: the fake is going away, handle nothing more
                response = json_response({"message": "503: Service Unavailable", "code": 0}, status=503)
            elif matched and failure:
                response = await self._injected_failure(request, matched[1], failure)
            else:
                response = await handler(request)
        except DiscordHTTPError as error:
            response = json_response(error.body(), status=error.status)
            record.error_code = error.code
        except web.HTTPException as error:
            if error.status == 404:
                self.unhandled_routes.append(record)
            body = {"message": f"{error.status}: {error.reason}", "code": 0}
            response = json_response(body, status=error.status)
        except Exception:
            # A bug in the fake: answer 400 (a 5xx would make discord.py retry for ~25 s) and keep the trace.
            self.internal_errors.append(traceback.format_exc())
            response = json_response({"message": "FakeDiscord internal error", "code": 0}, status=400)
        if response_delay:
            await self._hold(response_delay)
        record.status = response.status
        if isinstance(response, web.Response) and response.content_type == "application/json" and response.body:
            record.response = json.loads(bytes(response.body))  # type: ignore[arg-type]
        return response

    async def _injected_failure(
        self, request: web.Request, params: Mapping[str, str], failure: InjectedFailure
    ) -> web.Response:
        """Answer with an armed failure without handling the request; keep what the bot sent for inspection."""
        record = request[_RECORD]
        record.injected = True
        record.error_code = failure.code
        with contextlib.suppress(DiscordHTTPError):
            await self.read_body(request)
        interaction = self.interactions_by_token.get(params.get("token", ""))
        if interaction is not None:
            interaction.errors.append((failure.status, failure.code))
        return failure.response()

    async def read_body(self, request: web.Request) -> tuple[Any, list[UploadedFile]]:
        """JSON body, or multipart payload_json + files[n], as discord.py sends them."""
        files: list[UploadedFile] = []
        payload: Any = None
        try:
            if request.content_type == "multipart/form-data":
                reader = await request.multipart()
                async for part in reader:
                    if not isinstance(part, BodyPartReader):
                        continue
                    if part.name == "payload_json":
                        payload = json.loads(await part.text())
                    elif part.name and (match := _FILE_FIELD.fullmatch(part.name)):
                        data = bytes(await part.read(decode=False))
                        filename = part.filename or f"file{match[1]}"
                        content_type = part.headers.get("Content-Type", "application/octet-stream")
                        files.append(UploadedFile(int(match[1]), filename, content_type, data))
            else:
                raw = await request.read()
                payload = json.loads(raw) if raw else None
        except ValueError as error:
            raise DiscordHTTPError(400, 50109, "The request body contains invalid JSON.") from error
        record = request[_RECORD]
        record.json, record.files = payload, files
        return payload, files

    # --- REST: users, application, guilds, channels ---------------------------------------------------------

    async def _get_me(self, request: web.Request) -> web.Response:
        return json_response(self.users[self.bot_user_id].to_payload() | {"verified": True, "mfa_enabled": False})

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise DiscordHTTPError(404, 10013, "Unknown User")
        return json_response(user.to_payload())

    async def _get_application(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "id": str(self.application_id),
                "name": self.users[self.bot_user_id].name,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": self.application_flags,
                "owner": self.users[self.owner_user_id].to_payload(),
                "team": None,
                "bot": self.users[self.bot_user_id].to_payload(),
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "rpc_origins": [],
                "tags": [],
                "approximate_guild_count": len(self.guilds),
                "integration_types_config": {"0": {}},
            }
        )

    async def _get_gateway(self, request: web.Request) -> web.Response:
        limit = self.identify_budget.session_start_limit()
        return json_response({"url": self.gateway_url, "shards": self.shard_count, "session_start_limit": limit})

    def _guild(self, request: web.Request) -> FakeGuild:
        guild = self.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            raise DiscordHTTPError(404, 10004, "Unknown Guild")
        return guild

    async def _get_guild(self, request: web.Request) -> web.Response:
        payload = self._guild(request).to_payload(bot_user_id=self.bot_user_id)
        for key in ("channels", "members", "threads", "presences", "voice_states", "joined_at", "large", "lazy"):
            payload.pop(key, None)
        return json_response(payload)

    async def _get_guild_channels(self, request: web.Request) -> web.Response:
        return json_response([channel.to_payload() for channel in self._guild(request).channels.values()])

    async def _get_member(self, request: web.Request) -> web.Response:
        member = self._guild(request).members.get(int(request.match_info["user_id"]))
        if member is None:
            raise DiscordHTTPError(404, 10007, "Unknown Member")
        return json_response(member.to_payload())
