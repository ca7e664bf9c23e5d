"""Delivering one clip: download it (or fall back to a link), post it, record the post; exactly once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from bot.backends.base import DownloadedAudio
from bot.backends.fetch_policy import is_public_http_url
from bot.clock import Clock
from bot.errors import (
    AudioStoreError,
    AudioTooLargeError,
    DeliveryError,
    JobTakenOverError,
    MusicApiError,
    MusicApiTimeoutError,
    NotAudioError,
    UnsafeUrlError,
)
from bot.metrics import Metrics
from bot.models import Clip, Job
from bot.retry import Backoff, retry
from bot.runtime.outcome import AsLink, DeliveryTarget, LinkReason
from bot.storage import JobStore, is_transient_storage_error

log = logging.getLogger(__name__)

# (url, destination, max_bytes, time_limit) -> what arrived
Download = Callable[..., Awaitable[DownloadedAudio]]


class DeliveryResult(StrEnum):
    POSTED = "posted"
    FAILED = "failed"
    PENDING = "pending"  # Discord (or the database) kept failing; the job is kept and redelivered later


@dataclass(frozen=True, slots=True)
class ClipDelivery:
    """How delivering one clip went; a failed one says why (a detail the requester may read)."""

    result: DeliveryResult
    failure: str = ""


UNPOSTABLE = "could not be posted"


def _retryable_api_error(error: Exception) -> bool:
    return isinstance(error, MusicApiError) and error.retryable


def _transient_delivery_error(error: Exception) -> bool:
    return isinstance(error, DeliveryError) and error.transient


class ClipDeliverer:
    """Delivers the clips of every run of this process. Each post and its record run as their own task,
    shielded from the run's cancellation, so a shutdown never leaves a clip posted but unrecorded; the drain
    bounds how long they may take with `finish_in_flight`."""

    def __init__(
        self,
        *,
        jobs: JobStore,
        download: Download,
        clock: Clock,
        owner: str,
        audio_dir: Path,
        backoff: Backoff,
        download_timeout: float,
        own_origin: str,
        metrics: Metrics,
    ) -> None:
        self._jobs = jobs
        self._metrics = metrics
        self._download = download
        self._clock = clock
        self._owner = owner
        self._audio_dir = audio_dir
        self._backoff = backoff
        self._download_timeout = download_timeout
        self._own_origin = own_origin  # the backend's base URL: its covers may be on a private address
        self._in_flight: set[asyncio.Task[ClipDelivery]] = set()

    async def deliver(
        self,
        job: Job,
        clip: Clip,
        position: int,
        target: DeliveryTarget,
        deadline: datetime,
        *,
        maybe_posted: bool,
    ) -> ClipDelivery:
        """Posts one complete clip exactly once: one whose posting began before a crash is looked up first."""
        if maybe_posted:
            message_id = await target.find_posted_clip(job, position)
            if message_id is not None:
                log.info("job=%d clip=%s phase=found_posted message=%d", job.id, clip.id, message_id)
                await self._jobs.record_delivery(job.id, self._owner, clip.id, message_id, self._clock())
                return ClipDelivery(DeliveryResult.POSTED)
        posting = asyncio.create_task(self._download_and_post(job, clip, position, target, deadline))
        self._in_flight.add(posting)
        posting.add_done_callback(self._in_flight.discard)
        return await asyncio.shield(posting)

    async def finish_in_flight(self, timeout: float) -> None:
        """Waits up to `timeout` for the posts in progress; past it they are stopped, and their
        `posting_started_at` makes the next run look for them in the channel before posting again."""
        if not self._in_flight:
            return
        _, stuck = await asyncio.wait(set(self._in_flight), timeout=max(0.0, timeout))
        for posting in stuck:
            posting.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)

    async def close(self) -> None:
        for posting in list(self._in_flight):
            posting.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)

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
        audio, link = fetched
        try:
            try:
                await self._jobs.mark_posting(job.id, self._owner, clip.id, self._clock())
            except Exception as error:
                if not is_transient_storage_error(error):
                    raise
                log.warning("job=%d clip=%s not posted yet: the database failed (%s)", job.id, clip.id, error)
                return ClipDelivery(DeliveryResult.PENDING)  # nothing posted; tried again on redelivery
            message_id = await retry(
                lambda: target.post_clip(job, clip, position, audio, link),
                backoff=self._backoff,
                should_retry=_transient_delivery_error,
                what=f"job {job.id} post",
            )
        except DeliveryError as exc:
            log.warning("job=%d clip=%s phase=post failed transient=%s: %s", job.id, clip.id, exc.transient, exc.detail)
            return ClipDelivery(DeliveryResult.PENDING) if exc.transient else ClipDelivery(DeliveryResult.FAILED)
        except JobTakenOverError:
            raise
        except Exception:
            log.exception("job=%d clip=%s phase=post crashed", job.id, clip.id)
            return ClipDelivery(DeliveryResult.FAILED)
        finally:
            if audio is not None:
                await asyncio.to_thread(audio.unlink, missing_ok=True)
        return await self._record(job, clip, message_id, started)

    async def _fetch_audio(
        self, job: Job, clip: Clip, position: int, upload_limit: int, deadline: datetime
    ) -> tuple[Path | None, AsLink | None] | ClipDelivery:
        """The clip's file downloaded for attaching, or (None, why) to post the music service's link instead,
        or a failed delivery when what the service pointed at must not be posted at all."""
        destination = self._audio_dir / f"{job.id}-{position}.download"

        def attempt() -> Awaitable[DownloadedAudio]:
            time_limit = min(self._download_timeout, (deadline - self._clock()).total_seconds())
            if time_limit <= 0:
                raise MusicApiTimeoutError("the job's deadline passed before the file could be fetched")
            return self._download(clip.audio_url, destination, max_bytes=upload_limit, time_limit=time_limit)

        started = time.monotonic()
        try:
            downloaded = await retry(
                attempt, backoff=self._backoff, should_retry=_retryable_api_error, what=f"job {job.id} download"
            )
        except AudioTooLargeError as exc:
            log.info("job=%d clip=%s too large to attach (%s); posting a link", job.id, clip.id, exc)
            return None, AsLink(LinkReason.TOO_LARGE, exc.size, exc.limit)
        except (UnsafeUrlError, NotAudioError) as exc:
            log.warning("job=%d clip=%s phase=download refused: %s", job.id, clip.id, exc.detail)
            return ClipDelivery(DeliveryResult.FAILED, exc.detail)
        except AudioStoreError as exc:
            log.error("job=%d clip=%s could not be stored for attaching (%s); posting a link", job.id, clip.id, exc)
            return None, AsLink(LinkReason.NOT_STORED)
        except MusicApiError as exc:
            log.warning("job=%d clip=%s download failed (%s); posting a link", job.id, clip.id, exc.detail)
            return None, AsLink(LinkReason.NOT_FETCHED)
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
        return path, None

    async def _record(self, job: Job, clip: Clip, message_id: int, started: float) -> ClipDelivery:
        """Records the posted message (safe to repeat). If the database keeps failing, the job waits for
        redelivery, which finds the message in the channel: never settled as failed with a song posted."""
        try:
            first = await retry(
                lambda: self._jobs.record_delivery(job.id, self._owner, clip.id, message_id, self._clock()),
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
        seconds = time.monotonic() - started
        log.info("job=%d clip=%s phase=posted message=%d seconds=%.2f", job.id, clip.id, message_id, seconds)
        since_submit = (self._clock() - job.submitted_at).total_seconds() if first and job.submitted_at else None
        self._metrics.clip_posted(job.backend, since_complete=seconds, since_submit=since_submit)
        return ClipDelivery(DeliveryResult.POSTED)
