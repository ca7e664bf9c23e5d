"""FakeMusicApi's state and test-facing control surface: queued outcomes, fault injection, inspection."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakes.loopback import RecordedRequest
from tests.fakes.music_api_shapes import (
    GATEWAY_MESSAGES,
    GCUI_ERRORS,
    GCUI_INTERNAL_ERROR,
    GCUI_ROUTES,
    GENERATE_ROUTES,
    PLAIN_TEXT_500_BODY,
    ROUTES,
    ClipOutcome,
    ClipStatus,
    ClipTimings,
    FakeClip,
    Interception,
    Route,
    StatusCase,
)
from tests.fakes.music_api_wire import (
    AimlGatewayFaults,
    _fake_mp3,
    _gateway_error,
    _gcui_error,
    _gcui_ids,
    _parse_ids,
)


class MusicApiControls(AimlGatewayFaults):
    """The clip store and settings of FakeMusicApi, and the calls a test makes to steer or inspect it."""

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        timings: ClipTimings | None = None,
        wait_audio_timeout: float = 1.0,
        wait_initial_delay: float = 0.05,
        wait_poll_interval: float = 0.05,
        audio_size: int = 64 * 1024,
        send_content_length: bool = True,
        complete_spelling: str = "complete",
        status_case: StatusCase = "lower",
        generate_status: int = 201,
        reject_unknown_fields: bool = True,
        model_name: str = "chirp-v3",
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        credits_left: int = 500,
        monthly_limit: int = 2500,
    ) -> None:
        self.api_key = api_key
        self.timings = timings if timings is not None else ClipTimings()
        # Set to give each clip timings of its own (asked once per clip, at its first status), e.g. random.
        self.timings_per_clip: Callable[[str], ClipTimings] | None = None
        self.clip_timings: dict[str, ClipTimings] = {}
        self.wait_audio_timeout = wait_audio_timeout
        self.wait_initial_delay = wait_initial_delay
        self.wait_poll_interval = wait_poll_interval
        self.audio_size = audio_size
        self.send_content_length = send_content_length
        self.complete_spelling = complete_spelling
        self.status_case: StatusCase = status_case
        self.generate_status = generate_status
        self.reject_unknown_fields = reject_unknown_fields
        self.model_name = model_name
        self.credits_left = credits_left
        """Suno credits of the self-hosted gcui-art account; gcui generations spend 5 per clip."""
        self.monthly_limit = monthly_limit
        self.monthly_usage = 0
        self.feed_page_size = 20
        self.clips: dict[str, FakeClip] = {}
        self.requests: list[RecordedRequest] = []
        self._clock = clock
        self._ids = random.Random(seed)
        self._outcomes: deque[ClipOutcome] = deque()
        self._interceptions: dict[str, deque[Interception]] = {route: deque() for route in ROUTES}
        self._generations = 0
        self._closing = asyncio.Event()

    # ---------------------------------------------------------------- control surface

    def next_outcome(self, *outcomes: ClipOutcome) -> None:
        """Queue outcomes for the next clips created, one per clip in creation order; then `complete`."""
        self._outcomes.extend(outcomes)

    def fail_next(
        self,
        route: Route,
        *,
        status: int,
        body: str | dict[str, Any] | list[Any],
        content_type: str = "application/json",
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests to `route` with exactly this status and body (dicts/lists as JSON)."""
        self.answer_next(route, status=status, body=body, content_type=content_type, times=times)

    def fail_with_plain_text_500(self, route: Route, *, times: int = 1) -> None:
        """Mid-2024 gcui-art crash: 500 with the non-JSON text body "Internal Server Error"."""
        self.fail_next(route, status=500, body=PLAIN_TEXT_500_BODY, content_type="text/plain", times=times)

    def fail_with_gcui_error(
        self, route: Route, status: int = 402, *, error: str | None = None, times: int = 1
    ) -> None:
        """gcui-art wrapper error `{"error": ...}`; 402 defaults to "Payment required"."""
        detail = error if error is not None else GCUI_ERRORS.get(status, f"API Error: {status}")
        self.fail_next(route, status=status, body={"error": detail}, times=times)

    def fail_with_gcui_upstream(
        self, route: Route, status: int | None = None, *, detail: str | None = None, times: int = 1
    ) -> None:
        """Suno itself fails behind a gcui route, answered the gcui-art HEAD way: on gcui_generate/gcui_custom
        an upstream `status` passes through as `{"error": detail}` (402 defaults to "Payment required",
        others to "API Error: <status>") and no upstream answer (`status` None) is 503 "Network error: ...";
        on gcui_get/gcui_limit every failure is 500 "Internal server error"."""
        if route not in GCUI_ROUTES:
            raise ValueError(f"not a gcui route: {route!r}; expected one of {sorted(GCUI_ROUTES)}")
        if route in {"gcui_get", "gcui_limit"}:
            self.fail_with_gcui_error(route, 500, error=GCUI_INTERNAL_ERROR, times=times)
        elif status is None:
            self.fail_with_gcui_error(route, 503, error=detail, times=times)
        else:
            self.fail_with_gcui_error(route, status, error=detail, times=times)

    def fail_with_malformed_json(self, route: Route, *, status: int | None = None, times: int = 1) -> None:
        """A success status whose application/json body is cut off mid-document."""
        success = self.generate_status if route in {"generate", "custom"} else 200
        self.fail_next(route, status=status or success, body='[{"id": "', times=times)

    def hang_next(self, route: Route, *, seconds: float = 3600, times: int = 1) -> None:
        """Hold the next `times` requests to `route` for `seconds`, then answer normally (stop() ends the
        hold early with a 503: the gateway body, or gcui's `{"error": "Network error: ..."}` on gcui routes).
        No clips are created while a generate call is held."""

        async def hang(request: web.Request) -> web.StreamResponse | None:
            await self._sleep(seconds)
            if self._closing.is_set():
                if route in GCUI_ROUTES:
                    return _gcui_error(503, GCUI_ERRORS[503])
                return _gateway_error(request, 503, GATEWAY_MESSAGES[503])
            return None

        self._intercept(route, hang, times)

    def status_of(self, clip_id: str) -> ClipStatus:
        """The clip's status right now, canonical spelling."""
        clip = self.clips[clip_id]
        return clip.status_after(self._clock() - clip.created_monotonic, self.timings_of(clip_id))

    def timings_of(self, clip_id: str) -> ClipTimings:
        """The clip's own timings (see `timings_per_clip`), else everyone's."""
        if self.timings_per_clip is None:
            return self.timings
        if clip_id not in self.clip_timings:
            self.clip_timings[clip_id] = self.timings_per_clip(clip_id)
        return self.clip_timings[clip_id]

    def audio_bytes(self, clip_id: str) -> bytes:
        """The exact mp3 bytes served for this clip (deterministic per id and size)."""
        clip = self.clips.get(clip_id)
        size = clip.audio_size if clip is not None and clip.audio_size is not None else self.audio_size
        return _fake_mp3(clip_id, size)

    def generate_calls(self) -> int:
        """POSTs received on any generate route, whatever they were answered: the aimlapi generate and
        custom routes and the gcui-art gcui_generate and gcui_custom routes alike."""
        return sum(1 for request in self.requests if request.route in GENERATE_ROUTES)

    def fetch_batches(self) -> list[list[str]]:
        """The ids asked for by each well-formed GET / call, in order."""
        batches = []
        for request in self.requests:
            if request.route == "fetch":
                ids = _parse_ids(request.query)
                if isinstance(ids, list):
                    batches.append(ids)
        return batches

    def gcui_get_batches(self) -> list[list[str]]:
        """The ids asked for by each GET /api/get call, in order (split on commas as gcui-art does);
        a call without ids (the whole feed) appears as an empty list."""
        return [_gcui_ids(request.query) for request in self.requests if request.route == "gcui_get"]
