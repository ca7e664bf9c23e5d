"""Shapes and constants of the fake ACE-Step API server: routes, texts, timings, outcomes and tasks."""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from aiohttp import web

Route = Literal["release", "query", "health", "models", "stats", "audio"]
"""Routes that accept injected answers: release (POST /release_task), query (POST /query_result), health,
models (GET /v1/models), stats (GET /v1/stats) and audio (GET /v1/audio)."""

ROUTES: frozenset[str] = frozenset({"release", "query", "health", "models", "stats", "audio"})
DEFAULT_MODELS: tuple[str, ...] = ("acestep-v15-turbo", "acestep-v15-turbo-shift3")
LM_MODEL = "acestep-5Hz-lm-0.6B"
OUTPUT_DIR = "/home/ace/.cache/acestep/tmp/api_audio"  # the server's temp_audio_dir; files are kept in memory
QUEUE_MAXSIZE = 200  # ACESTEP_QUEUE_MAXSIZE's default
INITIAL_AVG_JOB_SECONDS = 5.0  # ACESTEP_AVG_JOB_SECONDS's default
TASK_TIMEOUT_SECONDS = 3600  # a status-0 task older than this is reported failed (status 2)
AUDIO_FORMATS = ("mp3", "wav", "flac")
MAX_BATCH_SIZE = 8

QUEUE_FULL_DETAIL = "Server busy: queue is full"
INVALID_KEY_DETAIL = "Invalid API key"
MISSING_HEADER_DETAIL = "Missing Authorization header"
MISSING_TOKEN_DETAIL = "Missing ai_token or Authorization header"
INVALID_TOKEN_DETAIL = "Invalid ai_token"
NOT_AN_OBJECT_DETAIL = "JSON payload must be an object"
ACCESS_DENIED_DETAIL = "Access denied: path outside allowed directory"
AUDIO_NOT_FOUND_DETAIL = "Audio file not found"
GENERATION_ERROR = "5Hz LM init failed: CUDA out of memory"
DETAILS: dict[int, str] = {
    400: NOT_AN_OBJECT_DETAIL,
    401: INVALID_KEY_DETAIL,
    415: "Unsupported Content-Type: text/plain; use application/json, application/x-www-form-urlencoded, or "
    "multipart/form-data",
    429: QUEUE_FULL_DETAIL,
    500: "LLM init failed: no CUDA device",
    503: "LLM not initialized. Set ACESTEP_INIT_LLM=true in .env to enable.",
}
# The stages a task's progress item names on its way (api_server.py passes the pipeline's own descriptions).
STAGES: tuple[tuple[float, str], ...] = (
    (0.0, "running"),
    (0.1, "LM: planning the song"),
    (0.4, "DiT: generating audio"),
    (0.9, "VAE: decoding audio"),
)
# Every field of release_task's JSON body the fake accepts (snake_case; the real server takes aliases too and
# ignores what it does not know: the fake refuses unknown fields, so a misspelt one cannot pass unnoticed).
STRING_FIELDS = frozenset(
    {"prompt", "caption", "lyrics", "sample_query", "model", "audio_format", "vocal_language", "key_scale"}
    | {"time_signature", "task_type", "ai_token", "infer_method", "timesteps", "instruction"}
)
BOOL_FIELDS = frozenset(
    {"thinking", "sample_mode", "use_format", "use_random_seed", "use_cot_caption", "use_cot_language"}
    | {"constrained_decoding", "allow_lm_batch", "use_adg", "use_tiled_decode"}
)
NUMBER_FIELDS = frozenset({"audio_duration", "guidance_scale", "shift", "lm_temperature", "lm_top_p", "lm_cfg_scale"})
INT_FIELDS = frozenset({"batch_size", "bpm", "seed", "inference_steps", "lm_top_k"})
KNOWN_FIELDS = STRING_FIELDS | BOOL_FIELDS | NUMBER_FIELDS | INT_FIELDS


@dataclass
class TaskTimings:
    """How long one task takes on the server's single worker (tasks run one after the other); mutable."""

    run_seconds: float = 0.4


@dataclass(frozen=True)
class TaskOutcome:
    """How one task ends: `success` (its files are the fake's own unless `file_urls` names others, and the
    result lists `takes` items, default the batch size), `failed` (status 2; `error` appears in the result only
    in the job store's shape, not in the disk cache's), or `stuck` (runs for ever, holding the worker)."""

    kind: Literal["success", "failed", "stuck"]
    error: str = GENERATION_ERROR
    file_urls: tuple[str, ...] | None = None
    takes: int | None = None
    failure_shape: Literal["cache", "store"] = "cache"

    @classmethod
    def success(cls, *, file_urls: tuple[str, ...] | None = None, takes: int | None = None) -> TaskOutcome:
        return cls(kind="success", file_urls=file_urls, takes=takes)

    @classmethod
    def failed(cls, error: str = GENERATION_ERROR, *, shape: Literal["cache", "store"] = "cache") -> TaskOutcome:
        return cls(kind="failed", error=error, failure_shape=shape)

    @classmethod
    def stuck(cls) -> TaskOutcome:
        return cls(kind="stuck")


@dataclass
class FakeTask:
    """One task the fake accepted, what its language model wrote, and where it stands on the worker."""

    id: str
    body: dict[str, Any]
    outcome: TaskOutcome
    caption: str
    lyrics: str
    duration: float
    model: str
    submitted: float  # on the fake's clock
    create_time: float = field(default_factory=time.time)  # wall time, as the server reports it
    started: float | None = None
    finished: float | None = None
    files: list[str] = field(default_factory=list)

    @property
    def batch_size(self) -> int:
        size = self.body.get("batch_size")
        return size if isinstance(size, int) else 2

    @property
    def state(self) -> Literal["queued", "running", "succeeded", "failed"]:
        if self.started is None:
            return "queued"
        if self.finished is None:
            return "running"
        return "succeeded" if self.outcome.kind == "success" else "failed"


def audio_url(path: str) -> str:
    """api_server.py's `_path_to_audio_url`: a relative URL; a full address passes through."""
    if path.startswith(("http://", "https://")):
        return path
    return f"/v1/audio?path={quote(path, safe='')}"


def inside_output_dir(path: str) -> bool:
    resolved = posixpath.normpath(path)
    return resolved.startswith(OUTPUT_DIR + "/")


def envelope(data: Any, code: int = 200, error: str | None = None) -> web.Response:
    return web.json_response(
        {"data": data, "code": code, "error": error, "timestamp": int(time.time() * 1000), "extra": None}
    )


def detail(status: int, text: str) -> web.Response:
    """FastAPI's HTTPException answer."""
    return web.json_response({"detail": text}, status=status)


def is_instrumental_description(description: str) -> bool:
    """api_server.py's `_parse_description_hints`, its instrumental half."""
    lowered = description.lower().strip()
    return (
        "instrumental" in lowered
        or "pure music" in lowered
        or "pure instrument" in lowered
        or lowered.endswith(" solo")
        or lowered == "solo"
    )


def is_instrumental_lyrics(lyrics: str) -> bool:
    """api_server.py's `_is_instrumental`: no lyrics, or the [inst] / [instrumental] marker."""
    return lyrics.strip().lower() in ("", "[inst]", "[instrumental]")
