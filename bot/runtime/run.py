"""One paid job from wherever it stands to its outcome: submit → follow (delivering each clip) → conclude."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum

from bot.backends import MusicBackend, PollUpdate, Submission
from bot.backends.fetch_policy import is_public_http_url
from bot.clock import Clock
from bot.errors import ForeignClipError, MusicApiBadResponseError, MusicApiError
from bot.jobs import JobPoller
from bot.models import Clip, ClipStatus, FailureReason, Job, JobStatus
from bot.retry import Backoff, retry
from bot.runtime.clip_delivery import UNPOSTABLE, ClipDeliverer
from bot.runtime.outcome import DeliveryTarget, JobOutcome, ListenLink, Pause, Phase
from bot.runtime.tracking import ClipBook, ProgressThrottle
from bot.storage import JobStore

log = logging.getLogger(__name__)

# The reasons whose detail (the music service's words, or what the bot knows) the requester is shown.
_SHOWN_DETAIL = frozenset(
    {
        FailureReason.API_INVALID_REQUEST,
        FailureReason.CLIPS_FAILED,
        FailureReason.DEADLINE,
        FailureReason.INTERRUPTED,
        FailureReason.API_CONTENT_POLICY,
        FailureReason.API_MODEL_GONE,
    }
)


class Step(StrEnum):
    """Where a run starts: at the paid call (a new job), or following the clips a resumed job already has."""

    SUBMIT = "submit"
    FOLLOW = "follow"


@dataclass(frozen=True, slots=True)
class RunContext:
    """What every run of this process shares: the backend, the store, the poller, the clip deliverer."""

    backend: MusicBackend
    jobs: JobStore
    poller: JobPoller
    deliverer: ClipDeliverer
    clock: Clock
    owner: str
    backoff: Backoff
    wait_audio: bool
    deadline: timedelta
    progress_interval: float
    own_origin: str = ""  # the backend's base URL: what it serves is fetched even from a private address
    # A queued job takes a free slot if first in its server's line: None once started, else its place.
    start_queued: Callable[[Job], Awaitable[int | None]] | None = None
    # This job's address for the provider's progress pushes (bot/callbacks.py), when the bot has one.
    callback_url: Callable[[int], str] | None = None


# How often a job waiting in its server's line looks whether its turn has come, and how long it may wait (a line
# that does not move: a moderator set max_concurrent to 0) before it is given back.
LINE_CHECK_SECONDS = 1.0
LINE_WAIT_LIMIT = timedelta(hours=6)
# How soon a run waiting for its clips notices a cancel asked through another process's heartbeat or this one.
CANCEL_CHECK_SECONDS = 0.5
# A stream URL longer than this (from the API: untrusted) is not offered; two fit any progress message.
MAX_LISTEN_URL = 512


class JobRun:
    """Drives one job through its steps. Every write names this process as the job's owner: when another
    process has taken the job over, the write raises JobTakenOverError and the run stops where it is."""

    def __init__(
        self,
        job: Job,
        target: DeliveryTarget,
        context: RunContext,
        *,
        resumed: bool,
        cancelled: asyncio.Event | None = None,
    ) -> None:
        self.job = job
        # Set when a member asked to cancel: nothing more is sent or posted from the next safe point on (a clip
        # being posted is finished and counts).
        self._cancelled = cancelled or asyncio.Event()
        self._target = target
        self._context = context
        self._resumed = resumed
        self._progress = ProgressThrottle(target, job, context.progress_interval)
        self._keys: tuple[str, ...] = ()
        self._book = ClipBook(capacity=context.backend.capabilities.outputs_per_request, positions={})
        self._deadline = job.created_at + context.deadline
        self._submitted: list[Clip] = []  # what the paid call answered, absorbed first
        self._pending: set[str] = set()
        self._error: MusicApiError | None = None

    async def execute(self) -> JobOutcome:
        """submit → follow (each clip delivered as it completes) → conclude, from wherever the job stands; an
        outcome (or a pause, when Discord keeps failing) at the end."""
        step = await self._start()
        if isinstance(step, JobOutcome):  # a resumed job that cannot be recovered
            return step
        if step is Step.SUBMIT and (refused := await self._submit()) is not None:
            return refused
        await self._follow()
        return await self._conclude()

    async def _start(self) -> Step | JobOutcome:
        """Which step the job is at: a new one submits; a resumed one follows its stored clips, or is reported
        when it cannot be recovered."""
        job = self.job
        if job.status is JobStatus.RESERVED and (job.queued or not self._resumed):
            return Step.SUBMIT  # a queued job waits for its turn first, also after a restart
        if job.status is JobStatus.RESERVED:
            detail = "it had not reached the music service yet, so nothing was spent"
            return await self._settle(FailureReason.INTERRUPTED, detail)
        stored = await self._context.jobs.clips(job.id)
        self._keys = (job.provider_task_id,) if job.provider_task_id else tuple(clip.id for clip in stored)
        if not self._keys:
            detail = "the music service's answer was lost, so the songs cannot be found"
            return await self._settle(FailureReason.INTERRUPTED, detail)
        self._deadline = (job.submitted_at or job.created_at) + self._context.deadline
        self._book.positions.update({clip.id: position for position, clip in enumerate(stored)})
        self._book.latest.update({clip.id: clip for clip in stored})
        self._book.delivered = await self._context.jobs.delivered_clip_ids(job.id)
        self._book.maybe_posted = await self._context.jobs.clips_maybe_posted(job.id)
        return Step.FOLLOW

    async def _submit(self) -> JobOutcome | None:
        """The paid call, sent once (again only when the API said it created nothing). None when it went
        through and its clips are to be followed."""
        context, job = self._context, self.job
        if job.queued and (ended := await self._wait_in_line()) is not None:
            return ended
        await self._progress.show(Phase.QUEUED, force=True)
        if self._cancelled.is_set():  # before the money is spent: given back
            return await self._settle(FailureReason.CANCELLED, None)
        submitted_at = context.clock()
        await context.jobs.mark_submitted(job.id, context.owner, submitted_at)  # before the money is spent
        self.job = replace(self.job, submitted_at=submitted_at)
        log.info("job=%d guild=%d phase=submitted wait_audio=%s", job.id, job.requester.guild_id, context.wait_audio)
        sent = time.monotonic()
        try:
            submission = await retry(
                lambda: context.backend.submit(
                    job.request,
                    wait_audio=context.wait_audio,
                    callback_url=context.callback_url(job.id) if context.callback_url else None,
                ),
                backoff=context.backoff,
                should_retry=lambda error: (
                    isinstance(error, MusicApiError) and error.nothing_created and error.retryable
                ),
                what=f"job {job.id} submit",
            )
        except MusicApiError as exc:
            log.warning("job=%d phase=submit failed reason=%s detail=%s", job.id, exc.reason, exc.detail)
            return await self._settle(exc.reason, exc.detail)
        if submission.task_id:
            await context.jobs.set_task_id(job.id, context.owner, submission.task_id)
        self._keys, clips = self._within_capacity(submission)
        try:
            await context.jobs.save_clips(job.id, context.owner, list(enumerate(clips)), polling=True)
        except ForeignClipError as error:
            log.warning("job=%d phase=submit bad answer: %s", job.id, error)
            return await self._settle(FailureReason.API_BAD_RESPONSE, None)
        log.info(
            "job=%d phase=generated task=%s clips=%s seconds=%.1f",
            job.id,
            submission.task_id or "-",
            ",".join(f"{clip.id}:{clip.status}" for clip in clips) or "-",
            time.monotonic() - sent,
        )
        self._deadline = submitted_at + context.deadline
        self._book.positions.update({clip.id: position for position, clip in enumerate(clips)})
        self._submitted = clips
        if submission.progress is not None:  # its place in the music service's own queue
            await self._progress.show(Phase.QUEUED, force=True, server=submission.progress)
        return None

    async def _wait_in_line(self) -> JobOutcome | None:
        """Waits for a slot in FIFO order of the server's line, showing the job's place; None once it has one.
        Cancelled meanwhile, or still waiting at the deadline: ended and given back (nothing was sent)."""
        context, job = self._context, self.job
        assert context.start_queued is not None
        give_up = job.created_at + LINE_WAIT_LIMIT
        forced = True
        while True:
            if self._cancelled.is_set():
                return await self._settle(FailureReason.CANCELLED, None)
            place = await context.start_queued(job)
            if place is None:
                self.job = replace(job, queued=False)
                log.info("job=%d guild=%d phase=started_from_line", job.id, job.requester.guild_id)
                return None
            await self._progress.show(Phase.QUEUED, force=forced, line=place)
            forced = False
            if context.clock() >= give_up:
                return await self._settle(FailureReason.DEADLINE, "it waited in the server's line for 6 hours")
            await asyncio.sleep(LINE_CHECK_SECONDS)

    def _within_capacity(self, submission: Submission) -> tuple[tuple[str, ...], list[Clip]]:
        """What one request can have made: at most the backend's outputs per request, each id once. An answer
        listing more (25 clips, 10,000 ids) would otherwise post and poll all of them for one quota unit."""
        limit = self._context.backend.capabilities.outputs_per_request
        keys = tuple(dict.fromkeys(submission.poll_keys))[:limit]
        clips = list({clip.id: clip for clip in submission.clips}.values())
        if submission.task_id is None:  # polled by clip id: the clips are the keys
            clips = [clip for clip in clips if clip.id in keys]
        clips = clips[:limit]
        if len(keys) < len(submission.poll_keys) or len(clips) < len(submission.clips):
            log.warning(
                "job=%d the API answered %d keys and %d clips for one request; kept %d and %d",
                self.job.id,
                len(submission.poll_keys),
                len(submission.clips),
                len(keys),
                len(clips),
            )
        return keys, clips

    async def _follow(self) -> None:
        """Delivers each clip as soon as it has audio, until every poll key is done or the deadline passes."""
        context = self._context
        self._pending = set(self._keys)
        try:
            if self._resumed:  # fresh states first: the clips may have finished while the bot was away
                self._pending = await self._poll_now()
            else:
                for clip in self._submitted:
                    await self._absorb(PollUpdate(key=clip.id, clips=(clip,), done=clip.status.is_terminal))
                    if clip.status.is_terminal:
                        self._pending.discard(clip.id)
            submitted = self._deadline - context.deadline
            profile = f"{self.job.backend}:{self.job.request.model or ''}"  # songs alike take alike long
            age = (context.clock() - submitted).total_seconds()
            with context.poller.watch(self._pending, profile=profile, age=age, job_id=self.job.id) as watch:
                while self._pending and not self._cancelled.is_set():
                    remaining = (self._deadline - context.clock()).total_seconds()
                    if remaining <= 0:
                        break
                    try:
                        update = await watch.next_update(min(remaining, CANCEL_CHECK_SECONDS))
                    except TimeoutError:
                        continue  # the deadline or a cancel, looked at again above
                    if isinstance(update, MusicApiError):
                        self._error = update
                        break
                    await self._absorb(update)
                    if update.done:
                        self._pending.discard(update.key)
        except ForeignClipError as error:
            log.warning("job=%d phase=poll bad answer: %s", self.job.id, error)
            self._error = MusicApiBadResponseError(str(error))

    async def _absorb(self, update: PollUpdate) -> None:
        """Stores fresh clip states, delivers clips that have audio, and notes the ones that failed. Clips past
        what one request makes are ignored; a clip id of another job raises ForeignClipError."""
        book, context, job = self._book, self._context, self.job
        clips = [clip for clip in update.clips if book.admits(clip.id)]
        fresh = [clip for clip in clips if clip != book.latest.get(clip.id)]
        if fresh:
            positioned = [(book.position(clip.id), clip) for clip in fresh]
            await context.jobs.save_clips(job.id, context.owner, positioned, polling=True)
        for clip in clips:
            book.latest[clip.id] = clip
        if update.progress is not None and not self._cancelled.is_set():
            moving = any(clip.status is ClipStatus.STREAMING for clip in clips)
            await self._progress.show(Phase.GENERATING if moving else Phase.QUEUED, server=update.progress)
        for clip in clips:
            if book.is_settled(clip.id) or self._cancelled.is_set():
                continue
            if clip.has_audio:
                await self._progress.show(Phase.FINISHING, listen=self._listen_links())
                delivery = await context.deliverer.deliver(
                    job,
                    clip,
                    book.position(clip.id),
                    self._target,
                    self._deadline,
                    maybe_posted=clip.id in book.maybe_posted,
                )
                book.record(clip.id, delivery)
            elif clip.status.is_terminal or update.done:
                book.failed[clip.id] = clip.error_message or "no audio was produced"
            elif clip.status is ClipStatus.STREAMING:
                await self._progress.show(Phase.GENERATING, listen=self._listen_links())
        if update.error is not None:
            book.task_error = update.error

    def _listen_links(self) -> tuple[ListenLink, ...]:
        """The takes still being made that already stream, in order: their stream URL, when the download
        policy would fetch it (a public address, or the backend's own origin)."""
        book, origin = self._book, self._context.own_origin
        return tuple(
            sorted(
                (
                    ListenLink(book.position(clip.id), clip.audio_url.strip())
                    for clip in book.latest.values()
                    if clip.status is ClipStatus.STREAMING
                    and not book.is_settled(clip.id)
                    and 0 < len(clip.audio_url.strip()) <= MAX_LISTEN_URL
                    and is_public_http_url(clip.audio_url.strip(), [origin])
                ),
                key=lambda link: link.position,
            )
        )

    async def _poll_now(self) -> set[str]:
        """One immediate poll for a resumed job; returns the keys still pending afterwards."""
        try:
            updates = await self._context.backend.poll(list(self._keys))
        except MusicApiError as exc:
            log.warning("job=%d phase=resume poll failed (%s); the poller will retry", self.job.id, exc.detail)
            return set(self._keys)
        for update in updates:
            await self._absorb(update)
        return set(self._keys) - {update.key for update in updates if update.done}

    async def _conclude(self) -> JobOutcome:
        book = self._book
        if self._cancelled.is_set():  # the music service was paid: it still counts; what was posted stays
            return await self._settle(FailureReason.CANCELLED, None, refund=False)
        if book.waiting_for_discord:
            log.warning(
                "job=%d phase=waiting_for_discord delivered=%d/%d", self.job.id, len(book.delivered), book.expected
            )
            job = await self._context.jobs.get(self.job.id)
            return JobOutcome(job, len(book.delivered), book.expected, pause=Pause.POSTING)
        error = self._error or book.task_error
        if error is not None:
            return await self._settle(error.reason, error.detail)
        if self._pending | book.unsettled():
            minutes = self._context.deadline.total_seconds() / 60
            unfinished = len(self._pending | book.unsettled())
            detail = f"{unfinished} of {book.expected} songs unfinished after {minutes:g} minutes"
            return await self._settle(FailureReason.DEADLINE, detail)
        if book.failed and not book.delivered and all(reason == UNPOSTABLE for reason in book.failed.values()):
            return await self._settle(FailureReason.DELIVERY_FAILED, None)
        if book.failed:
            return await self._settle(FailureReason.CLIPS_FAILED, "; ".join(sorted(set(book.failed.values()))))
        return await self._settle(None, None)

    async def _settle(self, reason: FailureReason | None, detail: str | None, *, refund: bool = True) -> JobOutcome:
        """Ends the job in the database (refund when nothing was delivered, unless `refund` is False)."""
        context = self._context
        finished = await context.jobs.finish(
            self.job.id, context.owner, now=context.clock(), reason=reason, detail=detail, refund=refund
        )
        shown = detail if reason in _SHOWN_DETAIL else None
        return JobOutcome(finished, len(self._book.delivered), self._book.expected, reason, shown)
