"""The generation use case: validate and reserve, then submit, follow, deliver and settle each paid job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from bot.clock import Clock
from bot.errors import AudioTooLargeError, InvalidRequestError, MusicApiError
from bot.jobs import JobPoller
from bot.models import Clip, ClipStatus, FailureReason, GenerationMode, GenerationRequest, Job, Requester
from bot.music_api import MusicBackend
from bot.quota import QuotaService
from bot.storage import JobStore

log = logging.getLogger(__name__)

# Caps from upstream-api.md §1.3 (documented by Suno resellers for v3.5; aimlapi documents none).
MAX_DESCRIPTION_CHARS = 400
MAX_LYRICS_CHARS = 3000
MAX_TAGS_CHARS = 200
MAX_TITLE_CHARS = 80
MODELS = ("chirp-v3-5", "chirp-v3-0")


class Phase(StrEnum):
    """What the requester sees while waiting."""

    QUEUED = "queued"
    GENERATING = "generating"
    FINISHING = "finishing"


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """How a job ended, in words for the requester."""

    job: Job
    delivered: int
    expected: int
    message: str


class DeliveryTarget(Protocol):
    """Where a job's progress and clips go; the Discord layer implements it."""

    @property
    def upload_limit(self) -> int: ...

    async def show_progress(self, job: Job, phase: Phase) -> None: ...

    async def post_clip(self, job: Job, clip: Clip, position: int, audio: Path | None, link_note: str) -> int:
        """Posts one clip: the mp3 attached, or (when `audio` is None) a link with `link_note` saying why.

        Returns the id of the message that carries it.
        """
        ...

    async def show_outcome(self, outcome: JobOutcome) -> None: ...


_FAILURE_MESSAGES: dict[FailureReason, str] = {
    FailureReason.API_AUTH: (
        "The music service refused the bot's API key. Please tell a moderator so the bot's operator can fix it."
    ),
    FailureReason.API_CREDITS: (
        "The music service account is out of credits. Please tell a moderator so the operator can top it up."
    ),
    FailureReason.API_RATE_LIMITED: "The music service is busy right now (rate limited). Try again in a minute.",
    FailureReason.API_INVALID_REQUEST: "The music service refused this request",
    FailureReason.API_UNAVAILABLE: "The music service is down or failing right now. Try again later.",
    FailureReason.API_BAD_RESPONSE: "The music service sent an answer the bot could not read. Try again later.",
    FailureReason.API_TIMEOUT: "The music service did not answer in time. Try again later.",
    FailureReason.CLIPS_FAILED: "The music service could not make this song",
    FailureReason.DEADLINE: "The songs were still not ready when the bot stopped waiting",
    FailureReason.NOT_ACKNOWLEDGED: "Discord dropped the command before the bot could answer it.",
    FailureReason.DELIVERY_FAILED: "The songs were made but could not be posted in this channel.",
    FailureReason.INTERNAL: "Something went wrong inside the bot.",
}


def validate_request(request: GenerationRequest) -> GenerationRequest:
    """Trims the text and refuses what the API would reject; the message says which limit and by how much."""

    def checked(label: str, value: str | None, limit: int, *, required: bool) -> str | None:
        text = (value or "").strip()
        if not text:
            if required:
                raise InvalidRequestError(f"The {label} is empty. Describe the song you want.")
            return None
        if len(text) > limit:
            raise InvalidRequestError(
                f"The {label} is {len(text)} characters long; the limit is {limit}. Please shorten it."
            )
        return text

    if request.model is not None and request.model not in MODELS:
        raise InvalidRequestError(f"Unknown model {request.model!r}. Choose one of: {', '.join(MODELS)}.")
    if request.mode is GenerationMode.DESCRIPTION:
        prompt = checked("description", request.prompt, MAX_DESCRIPTION_CHARS, required=True)
        return GenerationRequest(request.mode, prompt or "", request.instrumental, request.model)
    lyrics = checked("lyrics", request.prompt, MAX_LYRICS_CHARS, required=not request.instrumental)
    title = checked("title", request.title, MAX_TITLE_CHARS, required=True)
    tags = checked("style", request.tags, MAX_TAGS_CHARS, required=True)
    return GenerationRequest(request.mode, lyrics or "", request.instrumental, request.model, title, tags)


def too_large_note(size: int | None, limit: int) -> str:
    mib = 1024 * 1024
    size_text = f"{size / mib:.1f} MiB" if size is not None else "bigger than that"
    return f"Too large to attach here ({size_text}; the upload limit is {limit / mib:.0f} MiB)."


def describe_failure(reason: FailureReason, detail: str | None = None) -> str:
    base = _FAILURE_MESSAGES[reason]
    return f"{base}: {detail}" if detail else base


class GenerationService:
    """Runs each accepted job as a task: submit once, follow through the poller, deliver, then settle quota."""

    def __init__(
        self,
        *,
        backend: MusicBackend,
        jobs: JobStore,
        quota: QuotaService,
        poller: JobPoller,
        clock: Clock,
        audio_dir: Path,
        wait_audio: bool,
        deadline_seconds: float,
        progress_interval: float,
    ) -> None:
        self._backend = backend
        self._jobs = jobs
        self._quota = quota
        self._poller = poller
        self._clock = clock
        self._audio_dir = audio_dir
        self._wait_audio = wait_audio
        self._deadline = timedelta(seconds=deadline_seconds)
        self._progress_interval = progress_interval
        self._tasks: set[asyncio.Task[JobOutcome]] = set()

    @property
    def backend_name(self) -> str:
        return self._backend.name

    async def accept(self, requester: Requester, request: GenerationRequest) -> Job:
        """Validates, then reserves quota and persists the job in one transaction. Raises UserFacingError."""
        cleaned = validate_request(request)
        job_id = await self._quota.reserve_generation(requester, cleaned, backend=self._backend.name)
        log.info(
            "job %d reserved guild=%d user=%d mode=%s",
            job_id,
            requester.guild_id,
            requester.user_id,
            cleaned.mode,
        )
        return await self._jobs.get(job_id)

    async def abandon(self, job: Job, reason: FailureReason) -> Job:
        """Ends a job that never reached the API; its quota is given back."""
        log.warning("job %d abandoned before submission: %s", job.id, reason)
        return await self._jobs.finish(job.id, now=self._clock(), reason=reason)

    async def job(self, job_id: int) -> Job:
        return await self._jobs.get(job_id)

    async def remember_response_message(self, job: Job, message_id: int) -> None:
        await self._jobs.set_response_message(job.id, message_id)

    def start(self, job: Job, target: DeliveryTarget) -> asyncio.Task[JobOutcome]:
        """Runs the job in the background; the task is kept so it is not garbage-collected mid-flight."""
        task = asyncio.create_task(self.run(job, target), name=f"job-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def run(self, job: Job, target: DeliveryTarget) -> JobOutcome:
        started = time.monotonic()
        progress = _ProgressThrottle(target, job, self._progress_interval)
        try:
            outcome = await self._submit_and_follow(job, target, progress)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %d crashed", job.id)
            outcome = await self._settle(job, 0, FailureReason.INTERNAL, None)
        log.info(
            "job %d ended %s: %d/%d clips delivered in %.1fs",
            job.id,
            outcome.job.status,
            outcome.delivered,
            outcome.expected,
            time.monotonic() - started,
        )
        with contextlib.suppress(Exception):
            await target.show_outcome(outcome)
        return outcome

    async def _submit_and_follow(self, job: Job, target: DeliveryTarget, progress: _ProgressThrottle) -> JobOutcome:
        await progress.show(Phase.QUEUED, force=True)
        submitted_at = self._clock()
        await self._jobs.mark_submitted(job.id, submitted_at)
        try:
            clips = await self._backend.generate(job.request, wait_audio=self._wait_audio)
        except MusicApiError as exc:
            log.warning("job %d: generate failed (%s): %s", job.id, exc.reason, exc.detail)
            return await self._settle(job, 0, exc.reason, exc.detail)
        await self._jobs.save_clips(job.id, clips, polling=True)
        log.info(
            "job %d: generate returned %d clips (%s)",
            job.id,
            len(clips),
            ", ".join(clip.status for clip in clips),
        )
        return await self._follow(job, clips, target, progress, submitted_at + self._deadline)

    async def _follow(
        self,
        job: Job,
        clips: list[Clip],
        target: DeliveryTarget,
        progress: _ProgressThrottle,
        deadline: datetime,
    ) -> JobOutcome:
        latest = {clip.id: clip for clip in clips}
        positions = {clip.id: index for index, clip in enumerate(clips)}
        delivered: set[str] = set()
        failed: dict[str, str] = {}
        poll_error: MusicApiError | None = None

        async def absorb(clip: Clip) -> None:
            latest[clip.id] = clip
            if clip.has_audio and clip.id not in delivered:
                await progress.show(Phase.FINISHING)
                if await self._deliver(job, clip, positions[clip.id], target):
                    delivered.add(clip.id)
                else:
                    failed[clip.id] = "could not be posted"
            elif clip.status.is_terminal and not clip.has_audio:
                failed[clip.id] = clip.error_message or "no audio was produced"
            elif clip.status is ClipStatus.STREAMING:
                await progress.show(Phase.GENERATING)

        for clip in clips:
            await absorb(clip)
        pending = {clip_id for clip_id in latest if clip_id not in delivered and clip_id not in failed}
        with self._poller.watch(pending) as watch:
            while pending:
                remaining = (deadline - self._clock()).total_seconds()
                if remaining <= 0:
                    break
                try:
                    update = await watch.next_update(remaining)
                except TimeoutError:
                    break
                if isinstance(update, MusicApiError):
                    poll_error = update
                    break
                await self._jobs.save_clips(job.id, [update], polling=True)
                await absorb(update)
                pending = {clip_id for clip_id in latest if clip_id not in delivered and clip_id not in failed}
        return await self._conclude(job, latest, delivered, failed, pending, poll_error)

    async def _conclude(
        self,
        job: Job,
        latest: dict[str, Clip],
        delivered: set[str],
        failed: dict[str, str],
        pending: set[str],
        poll_error: MusicApiError | None,
    ) -> JobOutcome:
        expected = len(latest)
        if poll_error is not None:
            return await self._settle(job, len(delivered), poll_error.reason, poll_error.detail, expected)
        if pending:
            minutes = self._deadline.total_seconds() / 60
            detail = f"{len(pending)} of {expected} songs unfinished after {minutes:g} minutes"
            return await self._settle(job, len(delivered), FailureReason.DEADLINE, detail, expected)
        if failed and not delivered:
            reasons = "; ".join(sorted(set(failed.values())))
            if all(reason == "could not be posted" for reason in failed.values()):
                return await self._settle(job, 0, FailureReason.DELIVERY_FAILED, None, expected)
            return await self._settle(job, 0, FailureReason.CLIPS_FAILED, reasons, expected)
        if failed:
            reasons = "; ".join(sorted(set(failed.values())))
            return await self._settle(job, len(delivered), FailureReason.CLIPS_FAILED, reasons, expected)
        return await self._settle(job, len(delivered), None, None, expected)

    async def _settle(
        self,
        job: Job,
        delivered: int,
        reason: FailureReason | None,
        detail: str | None,
        expected: int = 2,
    ) -> JobOutcome:
        """Ends the job in the database (refund when nothing was delivered) and words the result."""
        finished = await self._jobs.finish(job.id, now=self._clock(), reason=reason, detail=detail)
        shown_detail = (
            detail
            if reason in (FailureReason.API_INVALID_REQUEST, FailureReason.CLIPS_FAILED, FailureReason.DEADLINE)
            else None
        )
        if reason is None:
            message = f"Done: {delivered} song{'s' if delivered != 1 else ''} below."
        elif delivered:
            message = (
                f"{delivered} of {expected} songs delivered. "
                f"{describe_failure(reason, shown_detail)}. This generation still counts against quota."
            )
        else:
            refund = " It was not counted against the server's quota." if not finished.charged else ""
            message = describe_failure(reason, shown_detail).rstrip(".") + "." + refund
        return JobOutcome(job=finished, delivered=delivered, expected=expected, message=message)

    async def _deliver(self, job: Job, clip: Clip, position: int, target: DeliveryTarget) -> bool:
        """Downloads the mp3 (size-capped, off the loop) and posts it; over-size or undownloadable goes as a link."""
        path = self._audio_dir / f"{job.id}-{position}.mp3"
        audio: Path | None = path
        link_note = ""
        try:
            size = await self._backend.download(clip.audio_url, path, max_bytes=target.upload_limit)
            log.info("job %d: clip %s downloaded (%d bytes)", job.id, clip.id, size)
        except AudioTooLargeError as exc:
            log.info("job %d: clip %s too large to attach (%s); posting a link", job.id, clip.id, exc)
            audio = None
            link_note = too_large_note(exc.size, exc.limit)
        except MusicApiError as exc:
            log.warning("job %d: clip %s download failed (%s); posting a link", job.id, clip.id, exc.detail)
            audio = None
            link_note = "The mp3 could not be fetched for attaching; here is the music service's link."
        try:
            message_id = await target.post_clip(job, clip, position, audio, link_note)
        except Exception:
            log.exception("job %d: posting clip %s failed", job.id, clip.id)
            return False
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        await self._jobs.record_delivery(clip.id, message_id, self._clock())
        return True


class _ProgressThrottle:
    """Shows a phase change at most once per interval; repeated phases are not re-sent."""

    def __init__(self, target: DeliveryTarget, job: Job, interval: float) -> None:
        self._target = target
        self._job = job
        self._interval = interval
        self._shown: Phase | None = None
        self._last_edit = float("-inf")

    async def show(self, phase: Phase, *, force: bool = False) -> None:
        if phase == self._shown:
            return
        now = time.monotonic()
        if not force and now - self._last_edit < self._interval:
            return
        self._shown = phase
        self._last_edit = now
        try:
            await self._target.show_progress(self._job, phase)
        except Exception:
            log.warning("job %d: progress update failed", self._job.id, exc_info=True)
