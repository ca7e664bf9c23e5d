"""Shapes of the fake aimlapi audio route: statuses, error texts, per-model request schemas, timings, outcomes."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Route = Literal["submit", "poll", "file"]
"""Routes that accept injected failures: submit (POST /v2/generate/audio), poll (GET /v2/generate/audio) and
file (GET /files/<id>.mp3)."""

GenerationStatus = Literal["queued", "generating", "completed", "error"]
IdStyle = Literal["short", "uuid_model"]

ROUTES: frozenset[str] = frozenset({"submit", "poll", "file"})
AUDIO_PATH = "/v2/generate/audio"

GENERATION_NOT_FOUND_MESSAGE = "Generation not found"
CONTENT_POLICY_ERROR_NAME = "ContentPolicyViolation"
CONTENT_POLICY_MESSAGE = (
    "The prompt was flagged by the provider's content policy (it may name a real artist or contain "
    "copyrighted lyrics). Please rephrase it and try again."
)
GENERATION_ERROR_NAME = "GenerationError"
GENERATION_ERROR_MESSAGE = "The upstream provider failed to generate the audio. Please try again later."

_STATUS_ORDER: tuple[GenerationStatus, ...] = ("queued", "generating", "completed")
_SHORT_ID_ALPHABET = string.ascii_letters + string.digits + "_-"


# -------------------------------------------------------------------- request schemas


@dataclass(frozen=True)
class _Field:
    """One body field, checked zod-style."""

    kind: Literal["string", "boolean", "integer", "object"]
    required: bool = False
    max_length: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str | int, ...] | None = None
    fields: Mapping[str, _Field] | None = None


_FAL_PROVIDER = _Field("string", choices=("fal-ai",))  # read-only, deprecated, still in the lyria/stable-audio schemas

MODEL_FIELDS: Mapping[str, Mapping[str, _Field]] = {
    "minimax/music-2.6": {
        "prompt": _Field("string", max_length=2000),
        "lyrics": _Field("string", max_length=3000),
        "is_instrumental": _Field("boolean"),
        "lyrics_optimizer": _Field("boolean"),
        "audio_setting": _Field(
            "object",
            fields={
                "audio_sample_rate": _Field("integer", choices=(16000, 24000, 32000, 44100)),
                "bitrate": _Field("integer", choices=(32000, 64000, 128000, 256000)),
                "format": _Field("string", choices=("mp3", "wav", "pcm")),
            },
        ),
    },
    "elevenlabs/eleven_music": {
        "prompt": _Field("string", required=True, max_length=2000),
        "music_length_ms": _Field("integer", minimum=10_000, maximum=300_000),
    },
    "google/lyria2": {
        "provider": _FAL_PROVIDER,
        "prompt": _Field("string", required=True),
        "negative_prompt": _Field("string"),
        "seed": _Field("integer", minimum=0),
    },
    "stable-audio": {
        "provider": _FAL_PROVIDER,
        "prompt": _Field("string", required=True),
        "seconds_total": _Field("integer", minimum=1, maximum=47),
        "seconds_start": _Field("integer", minimum=1, maximum=47),
        "steps": _Field("integer", minimum=1, maximum=1000),
    },
}
"""Per-model body fields besides `model`, from aimlapi/api-docs music-models/*.json."""

SUPPORTED_MODELS: tuple[str, ...] = tuple(MODEL_FIELDS)


# -------------------------------------------------------------------- behaviour knobs


@dataclass
class AudioTimings:
    """Seconds after submission at which a generation reaches each status; read on every request, so mutable."""

    generating_after: float = 0.1
    complete_after: float = 0.4


@dataclass(frozen=True)
class AudioOutcome:
    """How one generation ends."""

    kind: Literal["complete", "error", "stuck"]
    error_name: str = GENERATION_ERROR_NAME
    error_message: str = GENERATION_ERROR_MESSAGE
    error_after: float | None = None
    stuck_at: Literal["queued", "generating"] = "generating"

    @classmethod
    def complete(cls) -> AudioOutcome:
        return cls(kind="complete")

    @classmethod
    def error(
        cls,
        name: str = GENERATION_ERROR_NAME,
        message: str = GENERATION_ERROR_MESSAGE,
        *,
        after: float | None = None,
    ) -> AudioOutcome:
        """Ends at `error` with `{name, message}` `after` seconds, by default at `timings.complete_after`."""
        return cls(kind="error", error_name=name, error_message=message, error_after=after)

    @classmethod
    def content_policy(cls, message: str = CONTENT_POLICY_MESSAGE, *, after: float | None = None) -> AudioOutcome:
        """A moderation refusal: `error.name == "ContentPolicyViolation"`."""
        return cls.error(CONTENT_POLICY_ERROR_NAME, message, after=after)

    @classmethod
    def stuck(cls, at: Literal["queued", "generating"] = "generating") -> AudioOutcome:
        """Never progresses past `at`."""
        return cls(kind="stuck", stuck_at=at)


@dataclass
class FakeGeneration:
    """One generation the fake accepted, with what it will become."""

    id: str
    index: int
    model: str
    body: dict[str, Any]
    outcome: AudioOutcome
    created_at: str
    created_monotonic: float
    audio_size: int | None = None
    usage: dict[str, float] = field(default_factory=dict)

    def status_after(self, elapsed: float, timings: AudioTimings) -> GenerationStatus:
        outcome = self.outcome
        if outcome.kind == "error":
            error_after = timings.complete_after if outcome.error_after is None else outcome.error_after
            if elapsed >= error_after:
                return "error"
        natural: GenerationStatus = "queued"
        if elapsed >= timings.complete_after:
            natural = "completed"
        elif elapsed >= timings.generating_after:
            natural = "generating"
        ceiling: GenerationStatus = "completed"
        if outcome.kind == "stuck":
            ceiling = outcome.stuck_at
        elif outcome.kind == "error":
            ceiling = "generating"
        return _STATUS_ORDER[min(_STATUS_ORDER.index(natural), _STATUS_ORDER.index(ceiling))]
