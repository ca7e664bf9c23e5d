"""Shapes and constants of the fake Suno task API: routes, statuses, envelope texts, timings, outcomes, tasks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from tests.fakes.loopback import json_or_none

Route = Literal["generate", "record", "credit", "file"]
"""Routes that accept injected failures: generate (POST /api/v1/generate), record (record-info), credit, and file
(the three download routes /files, /stream, /images)."""

TaskStatus = Literal[
    "PENDING",
    "TEXT_SUCCESS",
    "FIRST_SUCCESS",
    "SUCCESS",
    "CREATE_TASK_FAILED",
    "GENERATE_AUDIO_FAILED",
    "CALLBACK_EXCEPTION",
    "SENSITIVE_WORD_ERROR",
]
ProgressStatus = Literal["PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS", "SUCCESS"]
FailureStatus = Literal["CREATE_TASK_FAILED", "GENERATE_AUDIO_FAILED", "CALLBACK_EXCEPTION", "SENSITIVE_WORD_ERROR"]

ROUTES: frozenset[str] = frozenset({"generate", "record", "credit", "file"})
MODELS: tuple[str, ...] = ("V4", "V4_5", "V4_5PLUS", "V4_5ALL", "V5", "V5_5")
# modelName reported per song; the chirp code names beyond V4/V4_5/V4_5PLUS/V5 are guesses (UNCONFIRMED).
MODEL_NAMES: Mapping[str, str] = {
    "V4": "chirp-v4",
    "V4_5": "chirp-auk",
    "V4_5PLUS": "chirp-bluejay",
    "V4_5ALL": "chirp-auk",
    "V5": "chirp-crow",
    "V5_5": "chirp-v5-5",
}
NON_CUSTOM_PROMPT_LIMIT = 500
PROMPT_LIMITS: Mapping[str, int] = {model: 3000 if model == "V4" else 5000 for model in MODELS}
STYLE_LIMITS: Mapping[str, int] = {model: 200 if model == "V4" else 1000 for model in MODELS}
TITLE_LIMIT = 80
SONGS_PER_TASK = 2

SUCCESS_MESSAGE = "success"
UNAUTHORIZED_MESSAGE = "Unauthorized"
TASK_NOT_FOUND_MESSAGE = "task not found"
INSUFFICIENT_CREDITS_MESSAGE = "The current credits are insufficient. Please top up."
SENSITIVE_WORDS_MESSAGE = "The description contains sensitive words"
ENVELOPE_MESSAGES: Mapping[int, str] = {
    400: "Invalid parameters",
    401: UNAUTHORIZED_MESSAGE,
    404: "Not found",
    405: "Rate limit exceeded, please try again later",
    413: "prompt too long",
    429: INSUFFICIENT_CREDITS_MESSAGE,
    430: "Your call frequency is too high. Please try again later.",
    455: "The system is under maintenance, please try again later.",
    500: "Server error, please try again later.",
}
FAILURE_DEFAULTS: Mapping[str, tuple[int, str]] = {
    "CREATE_TASK_FAILED": (500, "Failed to create the generation task"),
    "GENERATE_AUDIO_FAILED": (501, "Audio generation failed"),
    "CALLBACK_EXCEPTION": (500, "Callback to callBackUrl failed"),
    "SENSITIVE_WORD_ERROR": (400, SENSITIVE_WORDS_MESSAGE),
}
PLAIN_TEXT_500_BODY = "Internal Server Error"
BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)

_PROGRESS: tuple[ProgressStatus, ...] = ("PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS", "SUCCESS")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Interception = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


@dataclass
class TaskTimings:
    """Seconds after submit at which a task reaches each status; read on every request, so mutable."""

    text_after: float = 0.1
    first_after: float = 0.25
    success_after: float = 0.4

    def at(self, stage: ProgressStatus) -> float:
        return {
            "PENDING": 0.0,
            "TEXT_SUCCESS": self.text_after,
            "FIRST_SUCCESS": self.first_after,
            "SUCCESS": self.success_after,
        }[stage]


@dataclass(frozen=True)
class TaskOutcome:
    """How one task ends. `reached` is the last stage shown before a failure (its songs stay in `response`)."""

    kind: Literal["success", "failed", "stuck"]
    status: TaskStatus = "SUCCESS"
    error_code: int | None = None
    error_message: str | None = None
    after: float | None = None
    reached: ProgressStatus = "PENDING"

    @classmethod
    def success(cls) -> TaskOutcome:
        return cls(kind="success")

    @classmethod
    def failed(
        cls,
        status: FailureStatus,
        *,
        reached: ProgressStatus = "PENDING",
        error_code: int | None = None,
        error_message: str | None = None,
        after: float | None = None,
    ) -> TaskOutcome:
        """Any failure status. `after` defaults to 0 when `reached` is PENDING, else to the time the stage after
        `reached` would come (SUCCESS: `success_after`). errorCode/errorMessage default per status."""
        default_code, default_message = FAILURE_DEFAULTS[status]
        return cls(
            kind="failed",
            status=status,
            error_code=default_code if error_code is None else error_code,
            error_message=default_message if error_message is None else error_message,
            after=after,
            reached=reached,
        )

    @classmethod
    def create_task_failed(
        cls, message: str | None = None, *, error_code: int | None = None, after: float | None = None
    ) -> TaskOutcome:
        """CREATE_TASK_FAILED with no songs, by default on the first poll."""
        return cls.failed("CREATE_TASK_FAILED", error_code=error_code, error_message=message, after=after)

    @classmethod
    def generate_audio_failed(
        cls, message: str | None = None, *, error_code: int | None = None, after: float | None = None
    ) -> TaskOutcome:
        """Goes through TEXT_SUCCESS, then GENERATE_AUDIO_FAILED (by default when FIRST_SUCCESS would come);
        the text-stage songs stay in `response` with empty audio and stream URLs."""
        return cls.failed(
            "GENERATE_AUDIO_FAILED", reached="TEXT_SUCCESS", error_code=error_code, error_message=message, after=after
        )

    @classmethod
    def sensitive_word(
        cls, message: str | None = None, *, error_code: int | None = None, after: float | None = None
    ) -> TaskOutcome:
        """SENSITIVE_WORD_ERROR ("The description contains sensitive words"), by default on the first poll."""
        return cls.failed("SENSITIVE_WORD_ERROR", error_code=error_code, error_message=message, after=after)

    @classmethod
    def callback_exception(cls, message: str | None = None, *, after: float | None = None) -> TaskOutcome:
        """CALLBACK_EXCEPTION after the songs are complete (their audio stays downloadable)."""
        return cls.failed("CALLBACK_EXCEPTION", reached="SUCCESS", error_message=message, after=after)

    @classmethod
    def stuck(cls, at: Literal["PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS"] = "PENDING") -> TaskOutcome:
        """Never progresses past `at`."""
        return cls(kind="stuck", reached=at)

    def failure_time(self, timings: TaskTimings) -> float:
        if self.after is not None:
            return self.after
        if self.reached == "PENDING":
            return 0.0
        following = _PROGRESS[min(_PROGRESS.index(self.reached) + 1, len(_PROGRESS) - 1)]
        return timings.at(following)


@dataclass
class FakeSong:
    """One of the two songs of a task."""

    id: str
    title: str
    tags: str
    lyrics: str
    model_name: str
    create_time: str
    duration: float


@dataclass
class FakeTask:
    """One task the fake accepted, with what it will become."""

    id: str
    body: dict[str, Any]
    outcome: TaskOutcome
    songs: list[FakeSong]
    created_at: str
    created_monotonic: float

    @property
    def song_ids(self) -> list[str]:
        return [song.id for song in self.songs]

    def status_after(self, elapsed: float, timings: TaskTimings) -> TaskStatus:
        outcome = self.outcome
        if outcome.kind == "failed" and elapsed >= outcome.failure_time(timings):
            return outcome.status
        natural: ProgressStatus = "PENDING"
        for stage in _PROGRESS:
            if elapsed >= timings.at(stage):
                natural = stage
        ceiling: ProgressStatus = "SUCCESS" if outcome.kind == "success" else outcome.reached
        return _PROGRESS[min(_PROGRESS.index(natural), _PROGRESS.index(ceiling))]


@dataclass(frozen=True)
class _SongView:
    song: FakeSong
    audio_url: str
    stream_url: str
    image_url: str
    duration: float | None


def _as_progress(status: TaskStatus) -> ProgressStatus:
    for stage in _PROGRESS:
        if stage == status:
            return stage
    raise ValueError(status)


def _too_long(name: str, value: str, limit: int) -> tuple[int, str] | None:
    if len(value) > limit:
        return 413, f"{name} too long (max {limit} characters)"
    return None


def _not_found() -> web.Response:
    return web.Response(status=404, text="404: Not Found")


def _envelope_code(response: web.StreamResponse) -> int | None:
    if not isinstance(response, web.Response) or response.content_type != "application/json":
        return None
    body = response.body
    if not isinstance(body, bytes | bytearray):
        return None
    parsed = json_or_none(bytes(body).decode("utf-8", "replace"))
    code = parsed.get("code") if isinstance(parsed, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None
