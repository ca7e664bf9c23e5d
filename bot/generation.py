"""The generation use case: validate and reserve, then submit, follow, deliver and settle each paid job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from bot.backends import Capabilities, Instrumental, ModelSpec, MusicBackend, PollUpdate, Submission
from bot.backends.base import DownloadedAudio
from bot.backends.fetch_policy import is_public_http_url
from bot.clock import Clock
from bot.errors import (
    AudioStoreError,
    AudioTooLargeError,
    DeliveryError,
    ForeignClipError,
    InvalidRequestError,
    MusicApiBadResponseError,
    MusicApiError,
    MusicApiTimeoutError,
    NotAudioError,
    UnsafeUrlError,
    UserFacingError,
)
from bot.jobs import JobPoller
from bot.models import (
    Clip,
    ClipStatus,
    FailureReason,
    GenerationMode,
    GenerationRequest,
    Job,
    JobStatus,
    Requester,
)
from bot.quota import QuotaService
from bot.retry import Backoff, retry
from bot.storage import JobStore, is_transient_storage_error

log = logging.getLogger(__name__)


class Phase(StrEnum):
    """What the requester sees while waiting."""

    QUEUED = "queued"
    GENERATING = "generating"
    FINISHING = "finishing"


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """How a job ended (or paused, waiting for redelivery), in words for the requester.

    `detail` is the music service's own words (a song's error message, say): untrusted text, which the Discord
    layer quotes and escapes rather than mixing into `message`.
    """

    job: Job
    delivered: int
    expected: int
    message: str
    detail: str | None = None


class DeliveryTarget(Protocol):
    """Where a job's progress and clips go; the Discord layer implements it.

    `post_clip` raises DeliveryError (transient or not) when Discord refuses or fails.
    """

    @property
    def upload_limit(self) -> int: ...

    async def find_posted_clip(self, job: Job, position: int) -> int | None:
        """The id of a message already carrying this clip (posted before a crash), if there is one."""
        ...

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
    FailureReason.API_CONTENT_POLICY: "The music service refused this request under its content rules",
    FailureReason.API_MODEL_GONE: "The music model is no longer available; please tell a moderator",
    FailureReason.CLIPS_FAILED: "The music service could not make this song",
    FailureReason.DEADLINE: "The songs were still not ready when the bot stopped waiting",
    FailureReason.NOT_ACKNOWLEDGED: "Discord dropped the command before the bot could answer it.",
    FailureReason.DELIVERY_FAILED: "The songs were made but could not be posted in this channel.",
    FailureReason.INTERRUPTED: (
        "The bot restarted (or its database failed) at the wrong moment and could not recover this request"
    ),
    FailureReason.INTERNAL: "Something went wrong inside the bot.",
}

RESTARTING_MESSAGE = "The bot is restarting. Please try again in a minute."


class DeliveryResult(StrEnum):
    POSTED = "posted"
    FAILED = "failed"
    PENDING = "pending"  # Discord (or the database) kept failing; the job is kept and redelivered later


@dataclass(frozen=True, slots=True)
class ClipDelivery:
    """How delivering one clip went; a failed one says why, in words for the requester."""

    result: DeliveryResult
    failure: str = ""


def chosen_model(capabilities: Capabilities, name: str | None) -> ModelSpec:
    """The model the member named (or the backend's default); refuses names this backend does not offer."""
    model = capabilities.model(name)
    if model is None:
        offered = ", ".join(capabilities.model_names)
        raise InvalidRequestError(f"Unknown model {name!r}. This bot's music service offers: {offered}.")
    return model


def custom_mode_model(capabilities: Capabilities, name: str | None) -> ModelSpec:
    """The model for `/music-custom`, refused up front when it cannot take your own lyrics, title and style."""
    model = chosen_model(capabilities, name)
    if not model.custom_lyrics:
        raise InvalidRequestError(f"{model.name} does not take your own lyrics, title and style: use /music.")
    return model


def validate_request(request: GenerationRequest, capabilities: Capabilities) -> GenerationRequest:
    """Trims the text and refuses what the backend would reject or could not honour, before anything is spent.
    Each message names the option or the limit."""

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

    model = chosen_model(capabilities, request.model)
    if request.instrumental and model.instrumental is Instrumental.NEVER:
        raise InvalidRequestError(f"{model.name} cannot make instrumentals; describe the music in the prompt instead.")
    if request.duration_seconds is not None:
        if model.duration_range is None:
            raise InvalidRequestError(f"{model.name} does not let you choose the duration; leave it out.")
        low, high = model.duration_range
        if not low <= request.duration_seconds <= high:
            raise InvalidRequestError(f"{model.name} makes songs of {low} to {high} seconds.")
    if request.mode is GenerationMode.DESCRIPTION:
        if not model.description_mode:
            raise InvalidRequestError(f"{model.name} needs your own lyrics: use /music-custom.")
        prompt = checked("description", request.prompt, model.max_prompt_chars, required=True)
        return replace(request, prompt=prompt or "")
    model = custom_mode_model(capabilities, request.model)
    needs_lyrics = model.lyrics_required or (model.instrumental is not Instrumental.ALWAYS and not request.instrumental)
    lyrics = checked("lyrics", request.prompt, model.max_lyrics_chars, required=needs_lyrics)
    title = checked("title", request.title, model.max_title_chars, required=True)
    tags = checked("style", request.tags, model.max_tags_chars, required=True)
    return replace(request, prompt=lyrics or "", title=title, tags=tags)


def too_large_note(size: int | None, limit: int) -> str:
    mib = 1024 * 1024
    size_text = f"{size / mib:.1f} MiB" if size is not None else "bigger than that"
    return f"Too large to attach here ({size_text}; the upload limit is {limit / mib:.0f} MiB)."


def describe_failure(reason: FailureReason) -> str:
    return _FAILURE_MESSAGES[reason]


TargetFactory = Callable[[Job], DeliveryTarget]


def _retryable_api_error(error: Exception) -> bool:
    return isinstance(error, MusicApiError) and error.retryable


def _transient_delivery_error(error: Exception) -> bool:
    return isinstance(error, DeliveryError) and error.transient


class Reservation:
    """A job with its quota held that has not started yet, handed out by `GenerationService.admit`."""

    def __init__(
        self, job: Job, jobs: JobStore, start: Callable[[Job, DeliveryTarget], asyncio.Task[JobOutcome]]
    ) -> None:
        self.job = job
        self.started = False
        # Why the job is given back if the block ends without starting it.
        self.abandon_reason = FailureReason.INTERNAL
        self._jobs = jobs
        self._start = start

    async def remember_response_message(self, message_id: int) -> None:
        """Best effort: without it only the progress edits after a restart are lost, never the job."""
        try:
            await self._jobs.set_response_message(self.job.id, message_id)
        except Exception as error:
            if not is_transient_storage_error(error):
                raise
            log.warning("job=%d response message not recorded (%s); going on without it", self.job.id, error)
        self.job = replace(self.job, response_message_id=message_id)

    def start(self, target: DeliveryTarget) -> asyncio.Task[JobOutcome]:
        self.started = True
        return self._start(self.job, target)


class GenerationService:
    """Runs each accepted job as a task: submit once, follow through the poller, deliver, then settle quota.

    Jobs live in the database; a job whose task is gone (a restart, Discord failing) is resumed from there.
    """

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
        backoff: Backoff,
        reservation_timeout: float = 30.0,
        download_timeout: float = 300.0,
        own_origin: str = "",
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
        self._backoff = backoff
        self._reservation_timeout = timedelta(seconds=reservation_timeout)
        self._download_timeout = download_timeout
        self._own_origin = own_origin  # the backend's base URL: its covers may be on a private address
        self._accepting = True
        self._claimed: set[int] = set()  # accepted here and not yet finished by this process
        self._running: dict[int, asyncio.Task[JobOutcome]] = {}
        self._posting: set[asyncio.Task[ClipDelivery]] = set()
        self._claims_changed = asyncio.Event()  # a claimed job started or was abandoned

    @property
    def capabilities(self) -> Capabilities:
        return self._backend.capabilities

    @contextlib.asynccontextmanager
    async def admit(self, requester: Requester, request: GenerationRequest) -> AsyncIterator[Reservation]:
        """Validates, then reserves quota and persists the job in one statement. Raises UserFacingError.

        The block must `start` the reservation; if it ends any other way (an exception, Discord refusing the
        acknowledgement, a database error), the job is abandoned and its quota given back.
        """
        if not self._accepting:
            raise UserFacingError(RESTARTING_MESSAGE)
        cleaned = validate_request(request, self._backend.capabilities)
        job_id = await self._quota.reserve_generation(requester, cleaned, backend=self._backend.name)
        self._claimed.add(job_id)
        log.info(
            "job=%d guild=%d user=%d phase=reserved mode=%s",
            job_id,
            requester.guild_id,
            requester.user_id,
            cleaned.mode,
        )
        reservation: Reservation | None = None
        try:
            reservation = Reservation(await self._jobs.get(job_id), self._jobs, self.start)
            yield reservation
        finally:
            if reservation is None or not reservation.started:
                reason = reservation.abandon_reason if reservation else FailureReason.INTERNAL
                await self._give_back(job_id, requester.guild_id, reason)

    async def _give_back(self, job_id: int, guild_id: int, reason: FailureReason) -> None:
        """Ends a job that never reached the API; its quota is given back. If the database refuses now, the
        job stays reserved and the resume loop gives it back once it is older than the reservation time-out."""
        log.warning("job=%d guild=%d phase=abandoned reason=%s", job_id, guild_id, reason)
        try:
            await self._jobs.finish(job_id, now=self._clock(), reason=reason)
        except Exception:
            log.exception("job=%d could not be abandoned now; the resume loop will refund it", job_id)
        finally:
            self._claimed.discard(job_id)
            self._claims_changed.set()

    async def job(self, job_id: int) -> Job:
        return await self._jobs.get(job_id)

    def start(self, job: Job, target: DeliveryTarget, *, resumed: bool = False) -> asyncio.Task[JobOutcome]:
        """Runs the job in the background; the task is kept so it is not garbage-collected mid-flight."""
        self._claimed.add(job.id)
        task = asyncio.create_task(self.run(job, target, resumed=resumed), name=f"job-{job.id}")
        self._running[job.id] = task
        self._claims_changed.set()

        def forget(_: asyncio.Task[JobOutcome]) -> None:
            self._running.pop(job.id, None)
            self._claimed.discard(job.id)

        task.add_done_callback(forget)
        return task

    async def resume_orphans(self, target_for: TargetFactory) -> list[asyncio.Task[JobOutcome]]:
        """Starts every unfinished job that no task of this process is running (after a restart, or
        when Discord failed and the job waits for redelivery). Returns their tasks."""
        started = []
        now = self._clock()
        for job in await self._jobs.unfinished():
            if job.id in self._claimed:  # started here (a running task) or about to be
                continue
            if job.status is JobStatus.RESERVED and now - job.created_at < self._reservation_timeout:
                continue  # still being admitted; judged by its age, whichever process reserved it
            log.info("job=%d guild=%d phase=resume status=%s", job.id, job.requester.guild_id, job.status)
            started.append(self.start(job, target_for(job), resumed=True))
        return started

    def stop_accepting(self) -> None:
        self._accepting = False

    async def drain(self, grace_seconds: float) -> None:
        """Lets running jobs finish for up to `grace_seconds`; the rest stop where they are and stay in the
        database to be resumed at the next start. A clip being posted is always allowed to finish."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_seconds
        # A command accepted a moment ago may still be acknowledging before its task starts.
        while self._claimed - self._running.keys() and loop.time() < deadline:
            self._claims_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._claims_changed.wait(), deadline - loop.time())
        running = list(self._running.values())
        if running:
            log.info("waiting up to %.0fs for %d running jobs", grace_seconds, len(running))
            _, unfinished = await asyncio.wait(running, timeout=max(0.0, deadline - loop.time()))
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
            if unfinished:
                log.info("%d jobs left for the next start", len(unfinished))
        if self._posting:
            # A clip being posted may finish within the grace; past it, it is stopped, and its
            # `posting_started_at` makes the next start look for it in the channel before posting again.
            _, stuck = await asyncio.wait(set(self._posting), timeout=max(0.0, deadline - loop.time()))
            for posting in stuck:
                posting.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), *self._posting, return_exceptions=True)

    async def run(self, job: Job, target: DeliveryTarget, *, resumed: bool = False) -> JobOutcome:
        started = time.monotonic()
        progress = _ProgressThrottle(target, job, self._progress_interval)
        try:
            outcome = await self._drive(job, target, progress, resumed=resumed)
        except asyncio.CancelledError:
            log.info("job=%d phase=stopped (resumable)", job.id)
            raise
        except Exception as error:
            if not is_transient_storage_error(error):
                log.exception("job=%d phase=crashed", job.id)
                outcome = await self._settle(job, 0, FailureReason.INTERNAL, None)
            else:
                # Nothing is settled on a database that cannot write: the job stays unfinished, charged, and is
                # resumed by the redelivery loop (a paid job is never refunded because the disk was busy).
                log.warning("job=%d phase=paused the database failed (%s); resumed later", job.id, error)
                outcome = JobOutcome(
                    job, 0, 0, "The bot's database is busy; the bot will finish this as soon as it can."
                )
        log.info(
            "job=%d guild=%d phase=%s delivered=%d/%d seconds=%.1f",
            job.id,
            job.requester.guild_id,
            outcome.job.status,
            outcome.delivered,
            outcome.expected,
            time.monotonic() - started,
        )
        try:
            await target.show_outcome(outcome)
        except Exception:
            log.warning("job=%d could not show the outcome", job.id, exc_info=True)
        return outcome

    async def _drive(
        self, job: Job, target: DeliveryTarget, progress: _ProgressThrottle, *, resumed: bool
    ) -> JobOutcome:
        """Picks up the job wherever it is: new, interrupted before or during the paid call, or following clips."""
        if job.status is JobStatus.RESERVED and not resumed:
            return await self._submit_and_follow(job, target, progress)
        if job.status is JobStatus.RESERVED:
            detail = "it had not reached the music service yet, so nothing was spent"
            return await self._settle(job, 0, FailureReason.INTERRUPTED, detail)
        stored = await self._jobs.clips(job.id)
        keys = (job.provider_task_id,) if job.provider_task_id else tuple(clip.id for clip in stored)
        if not keys:
            detail = "the music service's answer was lost, so the songs cannot be found"
            return await self._settle(job, 0, FailureReason.INTERRUPTED, detail)
        submitted_at = job.submitted_at or job.created_at
        return await self._follow(job, stored, keys, target, progress, submitted_at + self._deadline, resumed=True)

    async def _submit_and_follow(self, job: Job, target: DeliveryTarget, progress: _ProgressThrottle) -> JobOutcome:
        await progress.show(Phase.QUEUED, force=True)
        submitted_at = self._clock()
        await self._jobs.mark_submitted(job.id, submitted_at)
        log.info("job=%d guild=%d phase=submitted wait_audio=%s", job.id, job.requester.guild_id, self._wait_audio)
        sent = time.monotonic()
        try:
            # Paid: only sent again when the API said it created nothing (rate limited).
            submission = await retry(
                lambda: self._backend.submit(job.request, wait_audio=self._wait_audio),
                backoff=self._backoff,
                should_retry=lambda error: (
                    isinstance(error, MusicApiError) and error.nothing_created and error.retryable
                ),
                what=f"job {job.id} submit",
            )
        except MusicApiError as exc:
            log.warning("job=%d phase=submit failed reason=%s detail=%s", job.id, exc.reason, exc.detail)
            return await self._settle(job, 0, exc.reason, exc.detail)
        if submission.task_id:
            await self._jobs.set_task_id(job.id, submission.task_id)
        keys, clips = self._within_capacity(job, submission)
        try:
            await self._jobs.save_clips(job.id, list(enumerate(clips)), polling=True)
        except ForeignClipError as error:
            log.warning("job=%d phase=submit bad answer: %s", job.id, error)
            return await self._settle(job, 0, FailureReason.API_BAD_RESPONSE, None)
        log.info(
            "job=%d phase=generated task=%s clips=%s seconds=%.1f",
            job.id,
            submission.task_id or "-",
            ",".join(f"{clip.id}:{clip.status}" for clip in clips) or "-",
            time.monotonic() - sent,
        )
        deadline = submitted_at + self._deadline
        return await self._follow(job, clips, keys, target, progress, deadline, resumed=False)

    def _within_capacity(self, job: Job, submission: Submission) -> tuple[tuple[str, ...], list[Clip]]:
        """What one request can have made: at most the backend's outputs per request, each id once. An answer
        listing more (25 clips, 10,000 ids) would otherwise post and poll all of them for one quota unit."""
        limit = self._backend.capabilities.outputs_per_request
        keys = tuple(dict.fromkeys(submission.poll_keys))[:limit]
        clips = list({clip.id: clip for clip in submission.clips}.values())
        if submission.task_id is None:  # polled by clip id: the clips are the keys
            clips = [clip for clip in clips if clip.id in keys]
        clips = clips[:limit]
        if len(keys) < len(submission.poll_keys) or len(clips) < len(submission.clips):
            log.warning(
                "job=%d the API answered %d keys and %d clips for one request; kept %d and %d",
                job.id,
                len(submission.poll_keys),
                len(submission.clips),
                len(keys),
                len(clips),
            )
        return keys, clips

    async def _follow(
        self,
        job: Job,
        clips: list[Clip],
        keys: tuple[str, ...],
        target: DeliveryTarget,
        progress: _ProgressThrottle,
        deadline: datetime,
        *,
        resumed: bool,
    ) -> JobOutcome:
        """Delivers each clip as soon as it has audio, until every poll key is done or the deadline passes."""
        book = _ClipBook(
            capacity=self._backend.capabilities.outputs_per_request,
            positions={clip.id: position for position, clip in enumerate(clips)},
            delivered=await self._jobs.delivered_clip_ids(job.id) if resumed else set(),
            maybe_posted=await self._jobs.clips_maybe_posted(job.id) if resumed else set(),
        )

        async def absorb(update: PollUpdate) -> None:
            await self._absorb(job, book, update, target, progress, deadline)

        poll_error: MusicApiError | None = None
        pending = set(keys)
        try:
            if resumed:  # fresh states first: the clips may have finished while the bot was away
                book.latest.update({clip.id: clip for clip in clips})
                pending = await self._poll_now(job, keys, absorb)
            else:
                for clip in clips:
                    await absorb(PollUpdate(key=clip.id, clips=(clip,), done=clip.status.is_terminal))
                pending -= {clip.id for clip in clips if clip.status.is_terminal}
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
                    await absorb(update)
                    if update.done:
                        pending.discard(update.key)
        except ForeignClipError as error:
            log.warning("job=%d phase=poll bad answer: %s", job.id, error)
            poll_error = MusicApiBadResponseError(str(error))
        if book.waiting_for_discord:
            return await self._hold_for_redelivery(job, len(book.delivered), max(len(book.latest), 1))
        return await self._conclude(job, book, pending | book.unsettled(), poll_error or book.task_error)

    async def _absorb(
        self,
        job: Job,
        book: _ClipBook,
        update: PollUpdate,
        target: DeliveryTarget,
        progress: _ProgressThrottle,
        deadline: datetime,
    ) -> None:
        """Stores fresh clip states, delivers clips that have audio, and notes the ones that failed. Clips past
        what one request makes are ignored; a clip id of another job raises ForeignClipError."""
        clips = [clip for clip in update.clips if book.admits(clip.id)]
        fresh = [clip for clip in clips if clip != book.latest.get(clip.id)]
        if fresh:
            await self._jobs.save_clips(job.id, [(book.position(clip.id), clip) for clip in fresh], polling=True)
        for clip in clips:
            book.latest[clip.id] = clip
            if book.is_settled(clip.id):
                continue
            if clip.has_audio:
                await progress.show(Phase.FINISHING)
                maybe_posted = clip.id in book.maybe_posted
                delivery = await self._deliver(
                    job, clip, book.position(clip.id), target, deadline, maybe_posted=maybe_posted
                )
                book.record(clip.id, delivery)
            elif clip.status.is_terminal or update.done:
                book.failed[clip.id] = clip.error_message or "no audio was produced"
            elif clip.status is ClipStatus.STREAMING:
                await progress.show(Phase.GENERATING)
        if update.error is not None:
            book.task_error = update.error

    async def _poll_now(
        self, job: Job, keys: tuple[str, ...], absorb: Callable[[PollUpdate], Awaitable[None]]
    ) -> set[str]:
        """One immediate poll for a resumed job; returns the keys still pending afterwards."""
        try:
            updates = await self._backend.poll(list(keys))
        except MusicApiError as exc:
            log.warning("job=%d phase=resume poll failed (%s); the poller will retry", job.id, exc.detail)
            return set(keys)
        for update in updates:
            await absorb(update)
        done = {update.key for update in updates if update.done}
        return set(keys) - done

    async def _hold_for_redelivery(self, job: Job, delivered: int, expected: int) -> JobOutcome:
        """Discord kept failing: the job stays unfinished (and charged) so it is posted on a later attempt."""
        log.warning("job=%d phase=waiting_for_discord delivered=%d/%d", job.id, delivered, expected)
        message = (
            f"{delivered} of {expected} songs posted so far. Posting is failing right now (Discord or the bot's "
            "database); the bot will post the rest as soon as it can."
        )
        return JobOutcome(job=await self._jobs.get(job.id), delivered=delivered, expected=expected, message=message)

    async def _conclude(
        self, job: Job, book: _ClipBook, pending: set[str], poll_error: MusicApiError | None
    ) -> JobOutcome:
        expected, delivered, failed = max(len(book.latest), 1), len(book.delivered), book.failed
        if poll_error is not None:
            return await self._settle(job, delivered, poll_error.reason, poll_error.detail, expected)
        if pending:
            minutes = self._deadline.total_seconds() / 60
            detail = f"{len(pending)} of {expected} songs unfinished after {minutes:g} minutes"
            return await self._settle(job, delivered, FailureReason.DEADLINE, detail, expected)
        if failed and not delivered:
            if all(reason == UNPOSTABLE for reason in failed.values()):
                return await self._settle(job, 0, FailureReason.DELIVERY_FAILED, None, expected)
            reasons = "; ".join(sorted(set(failed.values())))
            return await self._settle(job, 0, FailureReason.CLIPS_FAILED, reasons, expected)
        if failed:
            reasons = "; ".join(sorted(set(failed.values())))
            return await self._settle(job, delivered, FailureReason.CLIPS_FAILED, reasons, expected)
        return await self._settle(job, delivered, None, None, expected)

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
            if reason
            in (
                FailureReason.API_INVALID_REQUEST,
                FailureReason.CLIPS_FAILED,
                FailureReason.DEADLINE,
                FailureReason.INTERRUPTED,
                FailureReason.API_CONTENT_POLICY,
                FailureReason.API_MODEL_GONE,
            )
            else None
        )
        if reason is None:
            message = f"Done: {delivered} song{'s' if delivered != 1 else ''} below."
        elif delivered:
            message = (
                f"{delivered} of {expected} songs delivered. "
                f"{describe_failure(reason).rstrip('.')}. This generation still counts against quota."
            )
        else:
            refund = " It was not counted against the server's quota." if not finished.charged else ""
            message = describe_failure(reason).rstrip(".") + "." + refund
        return JobOutcome(job=finished, delivered=delivered, expected=expected, message=message, detail=shown_detail)

    async def _deliver(
        self,
        job: Job,
        clip: Clip,
        position: int,
        target: DeliveryTarget,
        deadline: datetime,
        *,
        maybe_posted: bool,
    ) -> ClipDelivery:
        """Posts one complete clip exactly once. The post and its record run shielded from cancellation, so a
        shutdown never leaves a clip posted but unrecorded (the drain bounds how long it may take)."""
        if maybe_posted:
            message_id = await target.find_posted_clip(job, position)
            if message_id is not None:
                log.info("job=%d clip=%s phase=found_posted message=%d", job.id, clip.id, message_id)
                await self._jobs.record_delivery(clip.id, message_id, self._clock())
                return ClipDelivery(DeliveryResult.POSTED)
        posting = asyncio.create_task(self._download_and_post(job, clip, position, target, deadline))
        self._posting.add(posting)
        posting.add_done_callback(self._posting.discard)
        return await asyncio.shield(posting)

    async def _download_and_post(
        self, job: Job, clip: Clip, position: int, target: DeliveryTarget, deadline: datetime
    ) -> ClipDelivery:
        started = time.monotonic()
        if clip.image_url and not is_public_http_url(clip.image_url, [self._own_origin]):
            log.warning("job=%d clip=%s cover image at a refused address; posted without it", job.id, clip.id)
            clip = replace(clip, image_url="")
        fetched = await self._fetch_audio(job, clip, position, target.upload_limit, deadline)
        if isinstance(fetched, ClipDelivery):
            return fetched
        audio, link_note = fetched
        try:
            try:
                await self._jobs.mark_posting(clip.id, self._clock())
            except Exception as error:
                if not is_transient_storage_error(error):
                    raise
                log.warning("job=%d clip=%s not posted yet: the database failed (%s)", job.id, clip.id, error)
                return ClipDelivery(DeliveryResult.PENDING)  # nothing posted; tried again on redelivery
            message_id = await retry(
                lambda: target.post_clip(job, clip, position, audio, link_note),
                backoff=self._backoff,
                should_retry=_transient_delivery_error,
                what=f"job {job.id} post",
            )
        except DeliveryError as exc:
            log.warning("job=%d clip=%s phase=post failed transient=%s: %s", job.id, clip.id, exc.transient, exc.detail)
            return ClipDelivery(DeliveryResult.PENDING) if exc.transient else ClipDelivery(DeliveryResult.FAILED)
        except Exception:
            log.exception("job=%d clip=%s phase=post crashed", job.id, clip.id)
            return ClipDelivery(DeliveryResult.FAILED)
        finally:
            if audio is not None:
                await asyncio.to_thread(audio.unlink, missing_ok=True)
        return await self._record_delivery(job, clip, message_id, started)

    async def _fetch_audio(
        self, job: Job, clip: Clip, position: int, upload_limit: int, deadline: datetime
    ) -> tuple[Path | None, str] | ClipDelivery:
        """The clip's file downloaded for attaching, or (None, why) to post the music service's link instead,
        or a failed delivery when what the service pointed at must not be posted at all."""
        destination = self._audio_dir / f"{job.id}-{position}.download"

        def attempt() -> Awaitable[DownloadedAudio]:
            time_limit = min(self._download_timeout, (deadline - self._clock()).total_seconds())
            if time_limit <= 0:
                raise MusicApiTimeoutError("the job's deadline passed before the file could be fetched")
            return self._backend.download(clip.audio_url, destination, max_bytes=upload_limit, time_limit=time_limit)

        started = time.monotonic()
        try:
            downloaded = await retry(
                attempt, backoff=self._backoff, should_retry=_retryable_api_error, what=f"job {job.id} download"
            )
        except AudioTooLargeError as exc:
            log.info("job=%d clip=%s too large to attach (%s); posting a link", job.id, clip.id, exc)
            return None, too_large_note(exc.size, exc.limit)
        except (UnsafeUrlError, NotAudioError) as exc:
            log.warning("job=%d clip=%s phase=download refused: %s", job.id, clip.id, exc.detail)
            return ClipDelivery(DeliveryResult.FAILED, exc.detail)
        except AudioStoreError as exc:
            log.error("job=%d clip=%s could not be stored for attaching (%s); posting a link", job.id, clip.id, exc)
            return None, "The bot could not store the mp3 to attach it; here is the music service's link."
        except MusicApiError as exc:
            log.warning("job=%d clip=%s download failed (%s); posting a link", job.id, clip.id, exc.detail)
            return None, "The mp3 could not be fetched for attaching; here is the music service's link."
        path = destination.with_suffix(f".{downloaded.format}")
        await asyncio.to_thread(destination.replace, path)
        log.info(
            "job=%d clip=%s phase=downloaded bytes=%d format=%s seconds=%.2f",
            job.id,
            clip.id,
            downloaded.size,
            downloaded.format,
            time.monotonic() - started,
        )
        return path, ""

    async def _record_delivery(self, job: Job, clip: Clip, message_id: int, started: float) -> ClipDelivery:
        """Records the posted message (safe to repeat). If the database keeps failing, the job waits for
        redelivery, which finds the message in the channel: never settled as failed with a song posted."""
        try:
            await retry(
                lambda: self._jobs.record_delivery(clip.id, message_id, self._clock()),
                backoff=self._backoff,
                should_retry=is_transient_storage_error,
                what=f"job {job.id} record delivery",
            )
        except Exception as error:
            if not is_transient_storage_error(error):
                raise
            log.error(
                "job=%d clip=%s phase=posted message=%d not recorded (%s); kept for redelivery",
                job.id,
                clip.id,
                message_id,
                error,
            )
            return ClipDelivery(DeliveryResult.PENDING)
        log.info(
            "job=%d clip=%s phase=posted message=%d seconds=%.2f",
            job.id,
            clip.id,
            message_id,
            time.monotonic() - started,
        )
        return ClipDelivery(DeliveryResult.POSTED)


UNPOSTABLE = "could not be posted"


@dataclass(eq=False)
class _ClipBook:
    """Where each clip of one job stands while the job is followed: its latest state, its position in the
    job, and how it was settled (posted, failed, or waiting for Discord to recover)."""

    capacity: int  # how many clips one request makes; more in an answer are ignored
    positions: dict[str, int]
    delivered: set[str]
    maybe_posted: set[str]
    latest: dict[str, Clip] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    waiting_for_discord: set[str] = field(default_factory=set)
    task_error: MusicApiError | None = None

    def admits(self, clip_id: str) -> bool:
        """A clip already known, or a new one (given the next position) while the job has fewer clips than
        one request makes."""
        if clip_id not in self.positions and len(self.positions) < self.capacity:
            self.positions[clip_id] = len(self.positions)
        return clip_id in self.positions

    def position(self, clip_id: str) -> int:
        """A clip keeps the position it first appeared at; new ones (task backends) go after the others."""
        return self.positions.setdefault(clip_id, len(self.positions))

    def is_settled(self, clip_id: str) -> bool:
        return clip_id in self.delivered or clip_id in self.failed or clip_id in self.waiting_for_discord

    def unsettled(self) -> set[str]:
        return {clip_id for clip_id in self.latest if not self.is_settled(clip_id)}

    def record(self, clip_id: str, delivery: ClipDelivery) -> None:
        if delivery.result is DeliveryResult.POSTED:
            self.delivered.add(clip_id)
        elif delivery.result is DeliveryResult.PENDING:
            self.waiting_for_discord.add(clip_id)
        else:
            self.failed[clip_id] = delivery.failure or UNPOSTABLE


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
