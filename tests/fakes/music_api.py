"""In-process fake of the AI/ML API "[old] Music Generation" (Suno v3.5, gcui-art AudioInfo shape).

The same server also answers the self-hosted gcui-art/suno-api routes, as gcui-art HEAD behaves
(upstream-api.md §1.2, §4.2): `POST /api/generate`, `POST /api/custom_generate`, `GET /api/get?ids=a,b`
and `GET /api/get_limit`. They share the clip store, lifecycle, wait_audio loop, outcomes and downloads
with the aimlapi routes, but need no key, answer 200, coerce flags with JS `Boolean()`, forward any
`model` verbatim and spend `credits_left` (5 per clip).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from tests.fakes.music_api_controls import MusicApiControls
from tests.fakes.music_api_shapes import (
    ACCESS_DENIED_BODY,
    BODY_VALIDATION_MESSAGE,
    FREE_TIER_LIMIT_MESSAGE,
    GATEWAY_MESSAGES,
    GCUI_CREDITS_PER_CLIP,
    GCUI_DEFAULT_MODEL,
    GCUI_ERRORS,
    GCUI_INTERNAL_ERROR,
    GCUI_MIN_CREDITS,
    GCUI_ROUTES,
    GENERATE_ROUTES,
    MAINTENANCE_MESSAGE,
    OUT_OF_CREDITS_MESSAGE,
    PLAIN_TEXT_500_BODY,
    QUERY_VALIDATION_MESSAGE,
    ROUTES,
    SERVER_TROUBLE_MESSAGE,
    SUPPORTED_MODELS,
    UNAUTHORIZED_MESSAGE,
    ClipOutcome,
    ClipStatus,
    ClipTimings,
    FakeClip,
    GenerationMode,
    Handler,
    Interception,
    Route,
    StatusCase,
)
from tests.fakes.music_api_wire import (
    _TINY_MP4,
    TINY_PNG,
    _access_denied,
    _compose_song,
    _drop_blank_lines,
    _duration_for,
    _gateway_error,
    _gcui_error,
    _gcui_ids,
    _js_string,
    _js_truthy,
    _json_body,
    _parse_ids,
    _send_bytes,
    _zod_type,
)

__all__ = [
    "ACCESS_DENIED_BODY",
    "BODY_VALIDATION_MESSAGE",
    "FREE_TIER_LIMIT_MESSAGE",
    "GATEWAY_MESSAGES",
    "GCUI_CREDITS_PER_CLIP",
    "GCUI_DEFAULT_MODEL",
    "GCUI_ERRORS",
    "GCUI_INTERNAL_ERROR",
    "GCUI_MIN_CREDITS",
    "GCUI_ROUTES",
    "GENERATE_ROUTES",
    "MAINTENANCE_MESSAGE",
    "OUT_OF_CREDITS_MESSAGE",
    "PLAIN_TEXT_500_BODY",
    "QUERY_VALIDATION_MESSAGE",
    "ROUTES",
    "SERVER_TROUBLE_MESSAGE",
    "SUPPORTED_MODELS",
    "TINY_PNG",
    "UNAUTHORIZED_MESSAGE",
    "ClipOutcome",
    "ClipStatus",
    "ClipTimings",
    "FakeClip",
    "FakeMusicApi",
    "GenerationMode",
    "Handler",
    "Interception",
    "Route",
    "StatusCase",
]


class FakeMusicApi(MusicApiControls):
    """aiohttp server on 127.0.0.1 (random port) that behaves like aimlapi's Suno v1 routes and, on the same
    clip store, like a self-hosted gcui-art/suno-api server's /api/* routes."""

    # ---------------------------------------------------------------- app wiring

    def _build_app(self) -> web.Application:
        app = web.Application()
        router = app.router
        for prefix in ("", "/v1"):
            router.add_post(f"{prefix}/generate", self._endpoint("generate", self._handle_generate))
            router.add_post(f"{prefix}/generate/custom-mode", self._endpoint("custom", self._handle_custom))
        for path in ("/", "/v1", "/v1/"):
            router.add_get(path, self._endpoint("fetch", self._handle_fetch))
        router.add_get("/audio/{clip_id}.mp3", self._endpoint("audio", self._handle_audio))
        router.add_get("/audiopipe/", self._endpoint("stream", self._handle_audiopipe))
        router.add_get("/image/{clip_id}.png", self._endpoint("image", self._handle_image))
        router.add_get("/video/{clip_id}.mp4", self._endpoint(None, self._handle_video))
        router.add_get("/None.mp3", self._endpoint(None, self._handle_access_denied))
        router.add_post("/api/generate", self._endpoint("gcui_generate", self._handle_gcui_generate))
        router.add_post("/api/custom_generate", self._endpoint("gcui_custom", self._handle_gcui_custom))
        router.add_get("/api/get", self._endpoint("gcui_get", self._handle_gcui_get))
        router.add_get("/api/get_limit", self._endpoint("gcui_limit", self._handle_gcui_limit))
        for path in ("/api/generate", "/api/custom_generate", "/api/get", "/api/get_limit"):
            router.add_route("*", path, self._endpoint(None, self._handle_method_not_allowed))
        router.add_route("*", "/{tail:.*}", self._endpoint(None, self._handle_not_found))
        return app

    # ---------------------------------------------------------------- music API routes

    async def _handle_generate(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "simple")

    async def _handle_custom(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "custom")

    async def _generate(self, request: web.Request, mode: GenerationMode) -> web.StreamResponse:
        if not self._authorized(request):
            return _gateway_error(request, 401, UNAUTHORIZED_MESSAGE)
        body = await _json_body(request)
        fields: dict[str, str] = {"prompt": "string", "make_instrumental": "boolean", "wait_audio": "boolean"}
        if mode == "custom":
            fields = {"prompt": "string", "tags": "string", "title": "string"} | fields
        issues = self._body_issues(body, fields)
        if issues:
            return _gateway_error(request, 400, "\n".join([BODY_VALIDATION_MESSAGE, "; ".join(issues)]))
        assert isinstance(body, dict)
        clips = self._create_clips(mode, body)
        if body["wait_audio"]:
            result = await self._wait_for_audio(clips)
        else:
            result = [self._audio_info(clip, "submitted", view="created") for clip in clips]
        return web.json_response(result, status=self.generate_status)

    async def _handle_fetch(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return _gateway_error(request, 401, UNAUTHORIZED_MESSAGE)
        ids = _parse_ids(request.query)
        if isinstance(ids, str):
            return _gateway_error(request, 400, f"{QUERY_VALIDATION_MESSAGE}\n{ids}")
        known = [clip_id for clip_id in dict.fromkeys(ids) if clip_id in self.clips]
        return web.json_response([self._clip_view(self.clips[clip_id]) for clip_id in known], status=200)

    async def _handle_audio(self, request: web.Request) -> web.StreamResponse:
        clip = self.clips.get(request.match_info["clip_id"])
        if clip is None or self.status_of(clip.id) != "complete":
            return _access_denied()
        data = self.audio_bytes(clip.id)
        return await _send_bytes(request, data, "audio/mpeg", with_length=self.send_content_length)

    async def _handle_audiopipe(self, request: web.Request) -> web.StreamResponse:
        clip = self.clips.get(request.query.get("item_id", ""))
        if clip is None or self.status_of(clip.id) not in {"streaming", "complete"}:
            return _access_denied()
        return await _send_bytes(request, self.audio_bytes(clip.id), "audio/mpeg", with_length=False)

    async def _handle_image(self, request: web.Request) -> web.StreamResponse:
        clip = self.clips.get(request.match_info["clip_id"])
        if clip is None or self.status_of(clip.id) in {"submitted", "queued"}:
            return _access_denied()
        return web.Response(body=TINY_PNG, content_type="image/png")

    async def _handle_video(self, request: web.Request) -> web.StreamResponse:
        clip = self.clips.get(request.match_info["clip_id"])
        if clip is None or self.status_of(clip.id) != "complete":
            return _access_denied()
        return web.Response(body=_TINY_MP4, content_type="video/mp4")

    async def _handle_access_denied(self, request: web.Request) -> web.StreamResponse:
        return _access_denied()

    async def _handle_method_not_allowed(self, request: web.Request) -> web.StreamResponse:
        allow = "POST" if request.path in {"/api/generate", "/api/custom_generate"} else "GET"
        return web.Response(status=405, text="Method Not Allowed", headers={"Allow": allow})

    # ---------------------------------------------------------------- gcui-art self-hosted routes

    async def _handle_gcui_generate(self, request: web.Request) -> web.StreamResponse:
        return await self._gcui_generate(request, "simple")

    async def _handle_gcui_custom(self, request: web.Request) -> web.StreamResponse:
        return await self._gcui_generate(request, "custom")

    async def _gcui_generate(self, request: web.Request, mode: GenerationMode) -> web.StreamResponse:
        """gcui-art HEAD generate/custom_generate: no auth, no validation, `Boolean()` flags,
        `model || DEFAULT_MODEL`, 200 with the AudioInfo list."""
        text = await request.text()
        try:
            body = json.loads(text)
        except ValueError:
            reason = "Unexpected end of JSON input" if not text.strip() else "Unexpected token in JSON"
            return _gcui_error(500, f"Internal error: {reason}")
        if body is None:
            return _gcui_error(500, "Internal error: Cannot destructure property 'prompt' of 'body' as it is null.")
        fields: Mapping[str, Any] = body if isinstance(body, dict) else {}
        if self.credits_left < GCUI_MIN_CREDITS:
            return _gcui_error(402, GCUI_ERRORS[402])
        model = fields.get("model")
        normalized: dict[str, Any] = {
            "prompt": _js_string(fields.get("prompt")),
            "make_instrumental": _js_truthy(fields.get("make_instrumental")),
            "model": _js_string(model) if _js_truthy(model) else GCUI_DEFAULT_MODEL,  # `model || DEFAULT_MODEL`
        }
        if mode == "custom":
            normalized["tags"] = _js_string(fields.get("tags"))
            normalized["title"] = _js_string(fields.get("title"))
            normalized["negative_tags"] = _js_string(fields.get("negative_tags"))
        clips = self._create_clips(mode, normalized, via_gcui=True)
        spent = GCUI_CREDITS_PER_CLIP * len(clips)
        self.credits_left -= spent
        self.monthly_usage += spent
        if _js_truthy(fields.get("wait_audio")):
            result = await self._wait_for_audio(clips)
        else:
            result = [self._audio_info(clip, "submitted", view="created", negative_tags=True) for clip in clips]
        return web.json_response(result, status=200)

    async def _handle_gcui_get(self, request: web.Request) -> web.StreamResponse:
        """gcui-art HEAD get: `ids` comma-separated (first value wins), else the whole feed, newest first;
        `page` (0-based, `feed_page_size` clips a page) pages the feed; an unusable page is a 500."""
        ids = _gcui_ids(request.query)
        if ids:
            known = [clip_id for clip_id in dict.fromkeys(ids) if clip_id in self.clips]
            return web.json_response([self._clip_view(self.clips[clip_id]) for clip_id in known], status=200)
        feed = list(reversed(self.clips.values()))
        page = request.query.get("page")
        if page:
            if not page.isdigit():
                return _gcui_error(500, GCUI_INTERNAL_ERROR)
            start = int(page) * self.feed_page_size
            feed = feed[start : start + self.feed_page_size]
        return web.json_response([self._clip_view(clip) for clip in feed], status=200)

    async def _handle_gcui_limit(self, request: web.Request) -> web.StreamResponse:
        limit = {
            "credits_left": self.credits_left,
            "period": "day",
            "monthly_limit": self.monthly_limit,
            "monthly_usage": self.monthly_usage,
        }
        return web.json_response(limit, status=200)

    async def _handle_not_found(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=404, text="404: Not Found")

    # ---------------------------------------------------------------- behaviour

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.api_key and bool(self.api_key)

    def _body_issues(self, body: object, fields: Mapping[str, str]) -> list[str]:
        """zod-style issues for the DTO `fields` plus the optional `model`."""
        if not isinstance(body, dict):
            return [f"Expected object, received {_zod_type(body)}"]
        issues = []
        for name, expected in fields.items():
            if name not in body:
                issues.append(f'Required at "{name}"')
            elif _zod_type(body[name]) != expected:
                issues.append(f'Expected {expected}, received {_zod_type(body[name])} at "{name}"')
        if "model" in body and body["model"] not in SUPPORTED_MODELS:
            allowed = " | ".join(f"'{model}'" for model in SUPPORTED_MODELS)
            model = body["model"]
            received = f"'{model}'" if isinstance(model, str) else _zod_type(model)
            issues.append(f'Invalid enum value. Expected {allowed}, received {received} at "model"')
        unknown = [name for name in body if name not in fields and name != "model"]
        if unknown and self.reject_unknown_fields:
            issues.append("Unrecognized key(s) in object: " + ", ".join(f"'{name}'" for name in unknown))
        return issues

    def _create_clips(self, mode: GenerationMode, body: Mapping[str, Any], *, via_gcui: bool = False) -> list[FakeClip]:
        self._generations += 1
        instrumental: bool = body["make_instrumental"]
        if mode == "custom":
            description = None
            title, tags, lyrics = body["title"], body["tags"], body["prompt"]
        else:
            description = body["prompt"]
            title, tags, lyrics = _compose_song(description, instrumental)
        created_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        clips = []
        for _ in range(2):
            clip_id = str(uuid.UUID(int=self._ids.getrandbits(128), version=4))
            clip = FakeClip(
                id=clip_id,
                generation_index=self._generations,
                mode=mode,
                description=description,
                title=title,
                tags=tags,
                lyrics=lyrics,
                make_instrumental=instrumental,
                model=body.get("model", SUPPORTED_MODELS[0]),
                outcome=self._outcomes.popleft() if self._outcomes else ClipOutcome.complete(),
                created_at=created_at,
                created_monotonic=self._clock(),
                duration=_duration_for(clip_id),
                negative_tags=body.get("negative_tags", "") if via_gcui else "",
                via_gcui=via_gcui,
            )
            self.clips[clip_id] = clip
            clips.append(clip)
        return clips

    async def _wait_for_audio(self, clips: list[FakeClip]) -> list[dict[str, Any]]:
        """gcui-art generateSongs: sleep, then poll until all streaming/complete or all error, or time out
        and return the last polled list (an empty one if the loop never ran)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        last: list[dict[str, Any]] = []
        await self._sleep(self.wait_initial_delay)
        while loop.time() - started < self.wait_audio_timeout and not self._closing.is_set():
            statuses = [self.status_of(clip.id) for clip in clips]
            snapshot = [
                self._audio_info(clip, status, view="get") for clip, status in zip(clips, statuses, strict=True)
            ]
            if all(status in {"streaming", "complete"} for status in statuses):
                return snapshot
            if all(status == "error" for status in statuses):
                return snapshot
            last = snapshot
            await self._sleep(self.wait_poll_interval)
        return last

    def _clip_view(self, clip: FakeClip) -> dict[str, Any]:
        return self._audio_info(clip, self.status_of(clip.id), view="get")

    def _audio_info(
        self, clip: FakeClip, status: ClipStatus, *, view: Literal["created", "get"], negative_tags: bool = False
    ) -> dict[str, Any]:
        """AudioInfo as gcui-art maps it; `created` is the immediate generate result, `get` the feed one;
        `negative_tags` adds the field gcui-art HEAD puts in its immediate generate result."""
        written = clip.mode == "custom" or status in {"streaming", "complete", "error"}
        rendered = status in {"streaming", "complete", "error"}
        lyrics = clip.lyrics if written else ""
        audio_url = {
            "submitted": "",
            "queued": "",
            "streaming": f"{self.base_url}/audiopipe/?item_id={clip.id}",
            "complete": f"{self.base_url}/audio/{clip.id}.mp3",
            "error": f"{self.base_url}/None.mp3",
        }[status]
        info: dict[str, Any] = {
            "id": clip.id,
            "title": clip.title if written else "",
            "image_url": f"{self.base_url}/image/{clip.id}.png" if rendered else None,
            "lyric": _drop_blank_lines(lyrics) if view == "get" else lyrics,
            "audio_url": audio_url,
            "video_url": f"{self.base_url}/video/{clip.id}.mp4" if status == "complete" else "",
            "created_at": clip.created_at,
            "model_name": self.model_name,
            "status": self._spell_status(status),
            "gpt_description_prompt": clip.description,
            "prompt": lyrics,
            "type": "gen",
            "tags": clip.tags if written else None,
        }
        if negative_tags:
            info["negative_tags"] = clip.negative_tags
        info["duration"] = clip.duration if status == "complete" else None
        if view == "get":
            info["error_message"] = clip.outcome.error_message if status == "error" else None
        return info

    def _spell_status(self, status: ClipStatus) -> str:
        spelled = self.complete_spelling if status == "complete" else status
        if self.status_case == "upper":
            return spelled.upper()
        if self.status_case == "title":
            return spelled.title()
        return spelled


# -------------------------------------------------------------------- helpers
