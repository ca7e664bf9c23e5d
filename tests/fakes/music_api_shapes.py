"""Shapes and constants of the fake music API: routes, statuses, documented error texts, timings, outcomes, clips."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

Route = Literal[
    "generate",
    "custom",
    "fetch",
    "audio",
    "stream",
    "image",
    "gcui_generate",
    "gcui_custom",
    "gcui_get",
    "gcui_limit",
]
"""Routes that accept injected failures: generate (simple mode), custom (custom mode), fetch (GET /),
audio (the final mp3), stream (the audiopipe link) and image; and the gcui-art self-hosted routes
gcui_generate (POST /api/generate), gcui_custom (POST /api/custom_generate), gcui_get (GET /api/get) and
gcui_limit (GET /api/get_limit)."""

ClipStatus = Literal["submitted", "queued", "streaming", "complete", "error"]
StatusCase = Literal["lower", "upper", "title"]
GenerationMode = Literal["simple", "custom"]

ROUTES: frozenset[str] = frozenset(
    {
        "generate",
        "custom",
        "fetch",
        "audio",
        "stream",
        "image",
        "gcui_generate",
        "gcui_custom",
        "gcui_get",
        "gcui_limit",
    }
)
GCUI_ROUTES: frozenset[str] = frozenset({"gcui_generate", "gcui_custom", "gcui_get", "gcui_limit"})
GENERATE_ROUTES: frozenset[str] = frozenset({"generate", "custom", "gcui_generate", "gcui_custom"})
SUPPORTED_MODELS: tuple[str, ...] = ("chirp-v3-5", "chirp-v3-0")
GCUI_DEFAULT_MODEL = "chirp-v3-5"
GCUI_CREDITS_PER_CLIP = 5
GCUI_MIN_CREDITS = 10
"""Generating on a gcui route with fewer credits left than this answers 402 (Suno cannot make 2 clips)."""

# aimlapi gateway messages (upstream-api.md §4.1).
UNAUTHORIZED_MESSAGE = (
    "This request requires a valid API key. You can create a new API key on the Billing page: "
    "https://aimlapi.com/app/keys"
)
OUT_OF_CREDITS_MESSAGE = (
    "You've run out of credits. Please top up your balance or update your payment method to continue: "
    "https://aimlapi.com/app/billing/"
)
FREE_TIER_LIMIT_MESSAGE = (
    "Free-tier limit: You've reached your free limit for the hour. Get AI/ML Subscription to use API, "
    "visit https://aimlapi.com/app/billing/ !"
)
SERVER_TROUBLE_MESSAGE = "Something wrong with the server. Please, try again later."
MAINTENANCE_MESSAGE = (
    "The model is under maintenance, please contact us at help@aimlapi.com. Your Request ID is {request_id}."
)
BODY_VALIDATION_MESSAGE = "Body validation error!"
QUERY_VALIDATION_MESSAGE = "Query validation error!"
GATEWAY_MESSAGES: Mapping[int, str] = {
    401: UNAUTHORIZED_MESSAGE,
    403: OUT_OF_CREDITS_MESSAGE,
    429: "Too Many Requests",
    500: "Internal server error",
    502: "Bad Gateway",
    503: "Service unavailable",
    504: "Generation timeout",
}

# gcui-art/suno-api wrapper error texts (upstream-api.md §4.2).
GCUI_ERRORS: Mapping[int, str] = {
    402: "Payment required",
    500: "Internal server error",
    503: "Network error: timeout of 10000ms exceeded",
}
GCUI_INTERNAL_ERROR = "Internal server error"
"""What gcui-art's get and get_limit answer (500) whatever went wrong upstream."""
PLAIN_TEXT_500_BODY = "Internal Server Error"
ACCESS_DENIED_BODY = "access denied"

_STATUS_ORDER: tuple[ClipStatus, ...] = ("submitted", "queued", "streaming", "complete")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Interception = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


@dataclass
class ClipTimings:
    """Seconds after creation at which a clip reaches each status; read on every request, so mutable."""

    queued_after: float = 0.05
    streaming_after: float = 0.2
    complete_after: float = 0.5


@dataclass(frozen=True)
class ClipOutcome:
    """How one generated clip ends."""

    kind: Literal["complete", "error", "stuck"]
    error_message: str | None = None
    error_after: float | None = None
    stuck_at: ClipStatus = "queued"

    @classmethod
    def complete(cls) -> ClipOutcome:
        return cls(kind="complete")

    @classmethod
    def error(cls, message: str | None = None, *, after: float | None = None) -> ClipOutcome:
        """Ends at `error` (audio_url None.mp3) `after` seconds, by default at `timings.streaming_after`."""
        return cls(kind="error", error_message=message, error_after=after)

    @classmethod
    def stuck(cls, at: Literal["submitted", "queued", "streaming"] = "queued") -> ClipOutcome:
        """Never progresses past `at` (Suno "stays submitted" / "hangs on streaming")."""
        return cls(kind="stuck", stuck_at=at)


@dataclass
class FakeClip:
    """One clip the fake created, with what it will become."""

    id: str
    generation_index: int
    mode: GenerationMode
    description: str | None
    title: str
    tags: str
    lyrics: str
    make_instrumental: bool
    model: str
    outcome: ClipOutcome
    created_at: str
    created_monotonic: float
    duration: float
    audio_size: int | None = None
    negative_tags: str = ""
    via_gcui: bool = False

    def status_after(self, elapsed: float, timings: ClipTimings) -> ClipStatus:
        outcome = self.outcome
        if outcome.kind == "error":
            error_after = timings.streaming_after if outcome.error_after is None else outcome.error_after
            if elapsed >= error_after:
                return "error"
        natural: ClipStatus = "submitted"
        if elapsed >= timings.complete_after:
            natural = "complete"
        elif elapsed >= timings.streaming_after:
            natural = "streaming"
        elif elapsed >= timings.queued_after:
            natural = "queued"
        ceiling: ClipStatus = "complete"
        if outcome.kind == "stuck":
            ceiling = outcome.stuck_at
        elif outcome.kind == "error":
            ceiling = "streaming"
        return _STATUS_ORDER[min(_STATUS_ORDER.index(natural), _STATUS_ORDER.index(ceiling))]
