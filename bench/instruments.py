"""The fakes with stopwatches: when the music API first reports each clip complete, when Discord has each
upload in full, and every fetch-by-ids request."""

from __future__ import annotations

import time
from typing import Any, Literal

from aiohttp import web

from tests.fakes.discord_server import FakeDiscord
from tests.fakes.discord_validation import UploadedFile
from tests.fakes.music_api import ClipStatus, FakeClip, FakeMusicApi


class TimedMusicApi(FakeMusicApi):
    """Records the first moment each clip was served as complete in a fetch, and each fetch's ids."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.reported_complete: dict[str, float] = {}
        self.fetches: list[tuple[float, list[str]]] = []

    async def _handle_fetch(self, request: web.Request) -> web.StreamResponse:
        ids = [value for key, value in request.query.items() if key.startswith("ids[")]
        self.fetches.append((time.perf_counter(), ids))
        return await super()._handle_fetch(request)

    def _audio_info(
        self, clip: FakeClip, status: ClipStatus, *, view: Literal["created", "get"], negative_tags: bool = False
    ) -> dict[str, Any]:
        if status == "complete":
            self.reported_complete.setdefault(clip.id, time.perf_counter())
        return super()._audio_info(clip, status, view=view, negative_tags=negative_tags)


class TimedDiscord(FakeDiscord):
    """Records when each upload's body has been read in full, with the footer of its embed."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.uploads: list[tuple[float, str, int]] = []

    async def read_body(self, request: web.Request) -> tuple[Any, list[UploadedFile]]:
        body, files = await super().read_body(request)
        if files:
            embeds = body.get("embeds") if isinstance(body, dict) else None
            footer = (embeds[0].get("footer") or {}).get("text", "") if embeds else ""
            self.uploads.append((time.perf_counter(), footer, sum(len(file.data) for file in files)))
        return body, files
