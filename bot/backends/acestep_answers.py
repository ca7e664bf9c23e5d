"""ACE-Step's answers read as untrusted: the envelope and FastAPI's errors, task results (their `result` is JSON
inside a JSON string), the model list and the server's statistics."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from yarl import URL

from bot.backends.base import (
    ERROR_DETAIL_CHARS,
    Capabilities,
    ModelSpec,
    PollUpdate,
    ServerProgress,
    Submission,
    error_detail,
    seconds_field,
    text_field,
)
from bot.errors import (
    MusicApiAuthError,
    MusicApiBadResponseError,
    MusicApiError,
    MusicApiGenerationFailedError,
    MusicApiInvalidRequestError,
    MusicApiRateLimitedError,
    MusicApiUnavailableError,
)
from bot.models import Clip, ClipStatus, FailureReason

DEFAULT_MODEL = "acestep-v15-turbo"
TAKES = 2  # batch_size: two takes per request, as the server's own default and Suno do
# From acestep/inference.py: caption "< 512 characters", lyrics "< 4096 characters". A description goes to the
# same language model as a caption; one request is 10 to 600 seconds of audio (docs/en/API.md).
MAX_CAPTION_CHARS = 512
MAX_LYRICS_CHARS = 4096
DURATION_RANGE = (10, 600)
# What is taken from an answer at the most; the rest is ignored (the answers are the server's, so untrusted).
MAX_TASK_ID_CHARS = 128
MAX_MODELS = 25  # Discord shows 25 autocomplete choices
MAX_MODEL_NAME_CHARS = 100
MAX_FILE_URL_CHARS = 2048
MAX_SONG_TEXT_CHARS = 8000
MAX_QUEUE_POSITION = 1_000_000
MAX_DURATION_SECONDS = 3600.0
_TASK_ID = re.compile(r"[A-Za-z0-9._:-]+")
_STATUS = {0: ClipStatus.STREAMING, 1: ClipStatus.COMPLETE, 2: ClipStatus.ERROR}


def model_spec(name: str) -> ModelSpec:
    """Every ACE-Step DiT model takes the same requests: a description, or style tags and lyrics."""
    return ModelSpec(
        name,
        duration_range=DURATION_RANGE,
        max_prompt_chars=MAX_CAPTION_CHARS,
        max_tags_chars=MAX_CAPTION_CHARS,
        max_lyrics_chars=MAX_LYRICS_CHARS,
        max_title_chars=80,  # the title is the bot's own (ACE-Step names nothing)
    )


def capabilities_for(names: Sequence[str], default: str) -> Capabilities:
    return Capabilities(
        models=tuple(model_spec(name) for name in names),
        default_model=default,
        outputs_per_request=TAKES,
        cover_art=False,
        writes_titles=False,
    )


CAPABILITIES = capabilities_for([DEFAULT_MODEL], DEFAULT_MODEL)  # until the server's own list is read


class TaskLostError(MusicApiError):
    """The server answers for this task as for an id it never issued: it keeps its tasks in memory only, so it
    has restarted since. That answer still says status 0, "running", and the bot ends no job early on an answer
    the server calls running: the job's deadline ends it, and this detail (reason DEADLINE, whose detail the
    requester is shown) tells them why."""

    reason = FailureReason.DEADLINE


LOST_DETAIL = (
    "The ACE-Step server lost this request: it no longer knows the task (it has probably restarted, and it keeps "
    "its tasks in memory only)."
)


def acestep_error(status: int, body: str) -> MusicApiError:
    """FastAPI's `{"detail": ...}` answers: 401 a missing or wrong key, 429 "Server busy: queue is full"
    (nothing created), 400/415 a body it refused, 403/404 a file outside its folder or missing, 5xx failing."""
    detail = f"HTTP {status}: {error_detail(body)}"
    if status == 401:
        return MusicApiAuthError(detail, status=status)
    if status == 429:
        return MusicApiRateLimitedError(detail, status=status)
    if status in (400, 403, 404, 413, 415, 422):
        return MusicApiInvalidRequestError(detail, status=status)
    return MusicApiUnavailableError(detail, status=status)


def unwrap(payload: object) -> Any:
    """The envelope's `data` when `code` is 200; the typed error for another code (some routes answer HTTP 200
    with `code: 500` and the words in `error`)."""
    if not isinstance(payload, dict) or "code" not in payload or "data" not in payload:
        raise MusicApiBadResponseError("expected a {data, code, error, timestamp, extra} envelope")
    code = payload.get("code")
    if code != 200:
        status = code if isinstance(code, int) and not isinstance(code, bool) else 0
        raise acestep_error(status, json.dumps({"detail": text_field(payload.get("error"))}))
    return payload["data"]


def parse_submission(data: object) -> Submission:
    """`{task_id, status: "queued", queue_position}` → the task to poll, its two takes queued, its place."""
    task_id = text_field(data.get("task_id")) if isinstance(data, dict) else ""
    if not task_id or len(task_id) > MAX_TASK_ID_CHARS or not _TASK_ID.fullmatch(task_id):
        raise MusicApiBadResponseError("release_task answered without a usable task_id")
    assert isinstance(data, dict)
    position = _bounded_int(data.get("queue_position"), MAX_QUEUE_POSITION)
    takes = tuple(Clip(id=take_id(task_id, index), status=ClipStatus.QUEUED) for index in range(TAKES))
    progress = ServerProgress(queue_position=position) if position else None
    return Submission(poll_keys=(task_id,), clips=takes, task_id=task_id, progress=progress)


def take_id(task_id: str, index: int) -> str:
    """ACE-Step gives the takes of a task no ids of their own: the task's id and the take's number."""
    return f"{task_id}:{index + 1}"


def parse_results(keys: Sequence[str], data: object, base_url: str) -> list[PollUpdate]:
    """query_result's `data: [{task_id, status: 0|1|2, result: "<JSON>"}]`, for the keys asked about (any other
    task in the answer is ignored; a key the answer leaves out is asked again later)."""
    if not isinstance(data, list):
        raise MusicApiBadResponseError("query_result answered without a list of tasks")
    wanted = set(keys)
    updates: dict[str, PollUpdate] = {}
    for entry in data[: 2 * len(keys)]:
        task_id = text_field(entry.get("task_id")) if isinstance(entry, dict) else ""
        if task_id in wanted and task_id not in updates:
            assert isinstance(entry, dict)
            updates[task_id] = task_update(task_id, entry, base_url)
    return list(updates.values())


def task_update(task_id: str, entry: dict[str, Any], base_url: str) -> PollUpdate:
    status = entry.get("status")
    if isinstance(status, bool) or status not in _STATUS:
        status = 0  # unknown statuses count as still running; the job's deadline bounds them
    items = _result_items(entry.get("result"))
    if status == 0:
        return _running(task_id, items)
    if status == 1:
        takes = tuple(_finished_take(task_id, index, items, base_url) for index in range(TAKES))
        return PollUpdate(key=task_id, clips=takes, done=True)
    words = next((text_field(item.get("error")) for item in items or [] if text_field(item.get("error"))), "")
    words = words[:ERROR_DETAIL_CHARS] or "ACE-Step could not make the songs"
    failed = tuple(
        Clip(id=take_id(task_id, index), status=ClipStatus.ERROR, error_message=words) for index in range(TAKES)
    )
    return PollUpdate(key=task_id, clips=failed, done=True, error=MusicApiGenerationFailedError(words))


def _running(task_id: str, items: list[dict[str, Any]] | None) -> PollUpdate:
    """Status 0: queued or being made, as its one progress item says; or, with no item at all, a task the
    server does not know (it answers `result: "[]"` for any id it never issued)."""
    if items == []:
        return PollUpdate(key=task_id, clips=(), done=False, error=TaskLostError(LOST_DETAIL))
    item = items[0] if items else {}
    stage = text_field(item.get("stage")).lower()
    progress = item.get("progress")
    fraction = None
    if isinstance(progress, int | float) and not isinstance(progress, bool) and math.isfinite(progress):
        fraction = round(min(max(float(progress), 0.0), 1.0), 2)
    queued = stage == "queued" or (not stage and not fraction)
    status = ClipStatus.QUEUED if queued else ClipStatus.STREAMING
    takes = tuple(Clip(id=take_id(task_id, index), status=status) for index in range(TAKES))
    shown = None if queued or fraction is None else ServerProgress(fraction=fraction)
    return PollUpdate(key=task_id, clips=takes, done=False, progress=shown)


def _finished_take(task_id: str, index: int, items: list[dict[str, Any]] | None, base_url: str) -> Clip:
    item = items[index] if items and index < len(items) else None
    clip_id = take_id(task_id, index)
    if item is None:
        return Clip(id=clip_id, status=ClipStatus.ERROR, error_message="the server returned fewer takes")
    file = text_field(item.get("file"))
    url = file_url(base_url, file) if file and len(file) <= MAX_FILE_URL_CHARS else ""
    metas = item.get("metas") if isinstance(item.get("metas"), dict) else {}
    assert isinstance(metas, dict)
    duration = seconds_field(metas.get("duration"))
    return Clip(
        id=clip_id,
        status=ClipStatus.COMPLETE if url else ClipStatus.ERROR,
        audio_url=url,
        lyrics=text_field(item.get("lyrics"))[:MAX_SONG_TEXT_CHARS],
        tags=text_field(item.get("prompt"))[:MAX_SONG_TEXT_CHARS],  # the caption the model sang to
        duration=duration if duration is not None and duration <= MAX_DURATION_SECONDS else None,
        model_name=text_field(item.get("dit_model"))[:MAX_MODEL_NAME_CHARS],
        error_message="" if url else "the server made no file for this take",
    )


def _result_items(raw: object) -> list[dict[str, Any]] | None:
    """`result` decoded a second time (a JSON string holding a list); None when it cannot be read."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    if not isinstance(raw, list):
        return None
    return [item for item in raw[: TAKES * 4] if isinstance(item, dict)]


def file_url(base_url: str, file: str) -> str:
    """A take's file: a path on the server (`/v1/audio?path=…`) is joined to the base URL as the API's own routes
    are; anything else is resolved against it, and the download policy judges where it points. "" if unreadable."""
    if file.startswith("/") and not file.startswith("//"):
        return base_url.rstrip("/") + file
    try:
        return str(URL(base_url.rstrip("/") + "/").join(URL(file)))
    except ValueError:
        return ""


def parse_models(data: object) -> Capabilities | None:
    """`{models: [{name, is_default}], default_model}` → the offered models; None while the server has loaded
    none (its models are still loading, or failed to)."""
    raw = data.get("models") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(raw, list):
        raise MusicApiBadResponseError("/v1/models answered without a list of models")
    names: list[str] = []
    flagged = ""
    for entry in raw[: 4 * MAX_MODELS]:
        name = text_field(entry.get("name")) if isinstance(entry, dict) else ""
        if not name or len(name) > MAX_MODEL_NAME_CHARS or name in names or len(names) >= MAX_MODELS:
            continue
        names.append(name)
        if isinstance(entry, dict) and entry.get("is_default") is True and not flagged:
            flagged = name
    if not names:
        return None
    announced = text_field(data.get("default_model"))
    return capabilities_for(names, announced if announced in names else flagged or names[0])


def describe_stats(data: object) -> str:
    """`/v1/stats` in a few words: the queue and the average time a job takes."""
    if not isinstance(data, dict):
        raise MusicApiBadResponseError("/v1/stats answered without statistics")
    waiting = _bounded_int(data.get("queue_size"), MAX_QUEUE_POSITION)
    room = _bounded_int(data.get("queue_maxsize"), MAX_QUEUE_POSITION)
    average = seconds_field(data.get("avg_job_seconds"))
    queue = f"{waiting if waiting is not None else '?'} of {room if room is not None else '?'} waiting"
    pace = f", about {average:.1f} s a job" if average is not None and average < MAX_DURATION_SECONDS else ""
    return f"queue {queue}{pace}"


def _bounded_int(value: object, limit: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        return None
    return value
