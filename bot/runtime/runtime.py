"""The job runtime: admits jobs, runs each as a JobRun task, and owns the background work: the poller, the heartbeat
of this process's leases, the takeover of jobs whose lease ran out, data retention, and the drain at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from bot.backends import Capabilities, MusicBackend
from bot.clock import Clock
from bot.errors import JobTakenOverError, UserFacingError
from bot.jobs import JobPoller
from bot.metrics import Metrics
from bot.models import FailureReason, GenerationRequest, Job, JobStatus, Requester
from bot.quota import QuotaService
from bot.retry import Backoff
from bot.runtime.clip_delivery import ClipDeliverer, Download
from bot.runtime.outcome import DeliveryTarget, JobOutcome, Pause
from bot.runtime.requests import validate_request
from bot.runtime.reservation import Reservation
from bot.runtime.retention import DataRetention
from bot.runtime.run import JobRun, RunContext
from bot.storage import JobStore, is_transient_storage_error

# Refuses a request (a UserFacingError) before it is reserved: the prompt rules of bot/rules.py.
RequestCheck = Callable[[int, GenerationRequest], Awaitable[None]]

log = logging.getLogger(__name__)

RESTARTING_MESSAGE = "The bot is restarting. Please try again in a minute."

# How the runtime reaches Discord for a job it resumes (no interaction token: the channel, as the bot).
TargetFactory = Callable[[Job], DeliveryTarget]


class JobRuntime:
    """Every paid job of this process, from admission to outcome, and the loops that finish the others. Jobs live in
    the database and belong to the process holding their lease (`owner`, kept alive by the heartbeat every third of
    `lease_seconds`); a job whose lease ran out (its process died, or stopped) is taken over, in one statement, by
    whichever process looks first. `retention`: the loop that erases data past DATA_RETENTION_DAYS."""

    def __init__(
        self,
        *,
        backend: MusicBackend,
        jobs: JobStore,
        quota: QuotaService,
        download: Download,
        clock: Clock,
        owner: str,
        audio_dir: Path,
        wait_audio: bool,
        deadline_seconds: float,
        progress_interval: float,
        backoff: Backoff,
        poll_interval: float,
        poll_batch_size: int,
        fast_poll_interval: float | None = None,
        lease_seconds: float = 30.0,
        redelivery_interval: float = 60.0,
        download_timeout: float = 300.0,
        own_origin: str = "",
        check_request: RequestCheck | None = None,
        metrics: Metrics | None = None,
        callback_url: Callable[[int], str] | None = None,
        retention: DataRetention | None = None,
    ) -> None:
        self.jobs = jobs
        self._check_request = check_request
        self._metrics = metrics or Metrics()
        self._retention = retention
        self.owner = owner
        self._backend = backend
        self._quota = quota
        self._clock = clock
        self._lease = timedelta(seconds=lease_seconds)
        self._redelivery_interval = redelivery_interval
        self._poller = JobPoller(
            backend, interval=poll_interval, batch_size=poll_batch_size, fast_interval=fast_poll_interval
        )
        self._deliverer = ClipDeliverer(
            jobs=jobs,
            download=download,
            clock=clock,
            owner=owner,
            audio_dir=audio_dir,
            backoff=backoff,
            download_timeout=download_timeout,
            own_origin=own_origin,
            metrics=self._metrics,
        )
        self._context = RunContext(
            backend=backend,
            jobs=jobs,
            poller=self._poller,
            deliverer=self._deliverer,
            clock=clock,
            owner=owner,
            backoff=backoff,
            wait_audio=wait_audio,
            deadline=timedelta(seconds=deadline_seconds),
            progress_interval=progress_interval,
            own_origin=own_origin,
            start_queued=lambda job: quota.start_queued(job.id, job.requester.guild_id, owner),
            callback_url=callback_url,
        )
        self._accepting = True
        self._held: set[int] = set()  # admitted or running here: their leases are kept alive
        self._runs: dict[int, asyncio.Task[JobOutcome | None]] = {}
        self._heartbeat_at = time.monotonic()
        self._cancels: dict[int, asyncio.Event] = {}  # per job run here: set when a member asked to cancel it
        self._held_changed = asyncio.Event()
        self._claiming = asyncio.Lock()  # one takeover at a time: a job claimed twice would run twice

    @property
    def capabilities(self) -> Capabilities:
        return self._backend.capabilities

    @property
    def poller(self) -> JobPoller:
        return self._poller

    async def job(self, job_id: int) -> Job:
        return await self.jobs.get(job_id)

    @contextlib.asynccontextmanager
    async def admit(self, requester: Requester, request: GenerationRequest) -> AsyncIterator[Reservation]:
        """Validates, then reserves quota and persists the job in one statement. Raises UserFacingError.

        The block must `start` the reservation; if it ends any other way (an exception, Discord refusing the
        acknowledgement, a database error), the job is abandoned and its quota given back.
        """
        if not self._accepting:
            raise UserFacingError(RESTARTING_MESSAGE, key="request.restarting")
        cleaned = validate_request(request, self._backend.capabilities)
        if self._check_request is not None:  # the moderators' rules, before anything is reserved
            await self._check_request(requester.guild_id, cleaned)
        job_id = await self._quota.reserve_generation(
            requester, cleaned, backend=self._backend.name, owner=self.owner, lease=self._lease
        )
        self._held.add(job_id)
        log.info(
            "job=%d guild=%d user=%d phase=reserved mode=%s",
            job_id,
            requester.guild_id,
            requester.user_id,
            cleaned.mode,
        )
        reservation: Reservation | None = None
        try:
            reservation = Reservation(await self.jobs.get(job_id), self)
            yield reservation
        finally:
            if reservation is not None and reservation.handed_over:
                self._held.discard(job_id)
                self._held_changed.set()
            elif reservation is None or not reservation.started:
                reason = reservation.abandon_reason if reservation else FailureReason.INTERNAL
                await self._give_back(job_id, requester.guild_id, reason)

    async def _give_back(self, job_id: int, guild_id: int, reason: FailureReason) -> None:
        """Ends a job that never reached the API; its quota is given back. If the database refuses now, the
        job stays reserved, and its lease runs out: whichever process looks next gives it back."""
        log.warning("job=%d guild=%d phase=abandoned reason=%s", job_id, guild_id, reason)
        try:
            await self.jobs.finish(job_id, self.owner, now=self._clock(), reason=reason)
            self._metrics.job_finished(JobStatus.FAILED, reason)
        except JobTakenOverError:
            log.warning("job=%d phase=taken_over before it was given back; the process holding it does", job_id)
        except Exception:
            log.exception("job=%d could not be abandoned now; it is refunded when its lease runs out", job_id)
        finally:
            self._held.discard(job_id)
            self._cancels.pop(job_id, None)
            self._held_changed.set()

    def wake(self, job_id: int) -> bool:
        """A provider pushed news of the job: its next poll comes now (at most once per fast pace). False when
        this process is not following it (another process is, or it is over): its polling goes on as it was."""
        return self._poller.wake(job_id)

    def start(self, job: Job, target: DeliveryTarget, *, resumed: bool = False) -> asyncio.Task[JobOutcome | None]:
        """Runs the job in the background; the task is kept so it is not garbage-collected mid-flight."""
        self._held.add(job.id)
        cancelled = self._cancels.setdefault(job.id, asyncio.Event())
        if job.cancel_requested_by is not None:
            cancelled.set()
        task = asyncio.create_task(self._run(job, target, cancelled, resumed=resumed), name=f"job-{job.id}")
        self._runs[job.id] = task
        self._held_changed.set()

        def forget(_: asyncio.Task[JobOutcome | None]) -> None:
            self._runs.pop(job.id, None)
            self._cancels.pop(job.id, None)
            self._held.discard(job.id)

        task.add_done_callback(forget)
        return task

    @contextlib.asynccontextmanager
    async def running(self, target_for: TargetFactory, ready: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
        """The background work, from entry to exit: the poller, the heartbeat, retention, and (once `ready`: Discord
        is connected) the takeover loop. On exit every run still going stops where it is, for the next process."""
        await self._learn_recent_durations()
        self._poller.start()
        loops = [
            asyncio.create_task(self._heartbeat(), name="job-leases"),
            asyncio.create_task(self._keep_jobs_moving(target_for, ready), name="job-takeover"),
        ]
        if self._retention is not None:
            loops.append(asyncio.create_task(self._retention.run(), name="data-retention"))
        try:
            yield
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self.close()
            await self._poller.stop()

    async def _learn_recent_durations(self) -> None:
        """The poller's pace starts from how long this bot's recent songs took, not from nothing."""
        try:
            recent = await self.jobs.recent_durations()
        except Exception as error:
            if not is_transient_storage_error(error):
                raise
            log.warning("could not read the recent songs' durations (%s); the poller learns them anew", error)
            return
        for profile, seconds in reversed(recent):  # oldest first: the newest stay in the history
            self._poller.history.record(profile, seconds)

    async def resume_expired(self, target_for: TargetFactory) -> list[asyncio.Task[JobOutcome | None]]:
        """Takes over every unfinished job whose lease ran out (or that this process holds but no longer runs:
        it waits for redelivery) and starts it. Returns their tasks."""
        async with self._claiming:
            now = self._clock()
            claimed = await self.jobs.claim(
                self.owner,
                now=now,
                until=now + self._lease,
                stale_before=now - self._lease,
                running=sorted(self._held),
            )
            started = []
            for job in claimed:
                if job.id in self._held:  # admitted here while the claim ran: already this process's
                    continue
                log.info("job=%d guild=%d phase=resume status=%s", job.id, job.requester.guild_id, job.status)
                started.append(self.start(job, target_for(job), resumed=True))
            return started

    async def _keep_jobs_moving(self, target_for: TargetFactory, ready: Callable[[], Awaitable[None]]) -> None:
        await ready()
        while True:
            try:
                resumed = await self.resume_expired(target_for)
                if resumed:
                    log.info("resumed %d unfinished jobs", len(resumed))
            except Exception:
                log.exception("resuming unfinished jobs failed; will try again")
            await asyncio.sleep(min(self._redelivery_interval, self._lease.total_seconds()))

    def heartbeat_problem(self) -> str | None:
        """None while the heartbeat keeps this process's leases (it beats every third of a lease)."""
        late = time.monotonic() - self._heartbeat_at
        if late > self._lease.total_seconds():
            return f"job runtime: no heartbeat for {late:.0f} s (leases of {self._lease.total_seconds():g} s)"
        return None

    async def _heartbeat(self) -> None:
        self._heartbeat_at = time.monotonic()
        while True:
            await asyncio.sleep(self._lease.total_seconds() / 3)
            try:
                asked = await self.jobs.extend_leases(self.owner, sorted(self._held), until=self._clock() + self._lease)
                self._heartbeat_at = time.monotonic()
                for job_id in asked:  # asked through another process: this one runs the job
                    if job_id in self._cancels:
                        self._cancels[job_id].set()
            except Exception:
                log.warning("could not renew the leases of %d jobs; will try again", len(self._held), exc_info=True)

    async def cancel(self, job_id: int, member_id: int) -> Job | None:
        """A member asks to cancel the job: noted in the database (whichever process runs it sees it, this
        one at once, another at its next heartbeat), and the job as it stands; None when it had ended."""
        job = await self.jobs.request_cancel(job_id, member_id)
        if job is not None and (job_id in self._cancels or job_id in self._held):
            self._cancels.setdefault(job_id, asyncio.Event()).set()
        if job is not None:
            log.info("job=%d phase=cancel_requested by=%d status=%s", job_id, member_id, job.status)
        return job

    def stop_accepting(self) -> None:
        self._accepting = False

    async def drain(self, grace_seconds: float) -> None:
        """Lets running jobs finish for up to `grace_seconds` (a clip being downloaded or posted included);
        the rest stop where they are, and their leases are expired so the next process takes them at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_seconds
        # A command accepted a moment ago may still be acknowledging before its task starts.
        while self._held - self._runs.keys() and loop.time() < deadline:
            self._held_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._held_changed.wait(), deadline - loop.time())
        running = list(self._runs.values())
        if running:
            log.info("waiting up to %.0fs for %d running jobs", grace_seconds, len(running))
            _, unfinished = await asyncio.wait(running, timeout=max(0.0, deadline - loop.time()))
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
            if unfinished:
                log.info("%d jobs left for the next start", len(unfinished))
        await self._deliverer.finish_in_flight(deadline - loop.time())
        released = await self.jobs.release(self.owner, now=self._clock())
        if released:
            log.info("expired the leases of %d unfinished jobs", released)

    async def close(self) -> None:
        for task in list(self._runs.values()):
            task.cancel()
        await asyncio.gather(*self._runs.values(), return_exceptions=True)
        await self._deliverer.close()

    async def _taken_over(self, job_id: int) -> bool:
        """Whether another process holds (or has finished) the job; False when the database cannot say."""
        try:
            current = await self.jobs.get(job_id)
        except Exception as error:
            if not is_transient_storage_error(error):
                raise
            return False
        return current.owner != self.owner

    async def _run(
        self, job: Job, target: DeliveryTarget, cancelled: asyncio.Event, *, resumed: bool
    ) -> JobOutcome | None:
        started = time.monotonic()
        try:
            outcome = await JobRun(job, target, self._context, resumed=resumed, cancelled=cancelled).execute()
        except asyncio.CancelledError:
            log.info("job=%d phase=stopped (resumable)", job.id)
            raise
        except JobTakenOverError:
            log.warning("job=%d phase=taken_over by another process; this run stops", job.id)
            return None
        except Exception as error:
            if is_transient_storage_error(error):
                if await self._taken_over(job.id):  # e.g. stopped mid-transaction past its lease: not ours now
                    log.warning("job=%d phase=taken_over by another process after a database error", job.id)
                    return None
                # Nothing is settled on a database that cannot write: the job stays unfinished, charged, and is
                # resumed once its lease runs out (a paid job is never refunded because the disk was busy).
                log.warning("job=%d phase=paused the database failed (%s); resumed later", job.id, error)
                outcome = JobOutcome(job, 0, 0, pause=Pause.DATABASE)
            else:
                log.exception("job=%d phase=crashed", job.id)
                try:
                    finished = await self.jobs.finish(
                        job.id, self.owner, now=self._clock(), reason=FailureReason.INTERNAL
                    )
                except JobTakenOverError:  # another process holds it now: it settles the job, not this run
                    log.warning("job=%d phase=taken_over while this run had crashed", job.id)
                    return None
                outcome = JobOutcome(finished, 0, 1, FailureReason.INTERNAL)
        if outcome.pause is None:
            self._metrics.job_finished(outcome.job.status, outcome.reason)
        log.info(
            "job=%d guild=%d phase=%s delivered=%d/%d seconds=%.1f",
            job.id,
            job.requester.guild_id,
            outcome.pause or outcome.job.status,
            outcome.delivered,
            outcome.expected,
            time.monotonic() - started,
        )
        try:
            await target.show_outcome(outcome)
        except Exception:
            log.warning("job=%d could not show the outcome", job.id, exc_info=True)
        return outcome
