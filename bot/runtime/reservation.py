"""A Reservation: a job admitted with its quota held, to be started by the Discord layer or given back."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.errors import JobTakenOverError
from bot.models import FailureReason, Job
from bot.runtime.outcome import DeliveryTarget, JobOutcome
from bot.storage import is_transient_storage_error

if TYPE_CHECKING:
    from bot.runtime.runtime import JobRuntime

log = logging.getLogger(__name__)


class Reservation:
    """A job with its quota held that has not started yet, handed out by `JobRuntime.admit`."""

    def __init__(self, job: Job, runtime: JobRuntime) -> None:
        self.job = job
        self.started = False
        self.handed_over = False  # taken over by another process before it started: not ours to give back
        # Why the job is given back if the block ends without starting it.
        self.abandon_reason = FailureReason.INTERNAL
        self._runtime = runtime

    async def remember_response_message(self, message_id: int) -> bool:
        """Best effort: without it only the progress edits after a restart are lost, never the job.

        False when another process has taken the job over meanwhile (this one's lease ran out: it was stopped or
        stalled): the job is that process's now, to run or to give back, and this one must do neither.
        """
        try:
            await self._runtime.jobs.set_response_message(self.job.id, self._runtime.owner, message_id)
        except JobTakenOverError:
            log.warning("job=%d phase=taken_over before it started; the process holding it answers", self.job.id)
            self.handed_over = True
            return False
        except Exception as error:
            if not is_transient_storage_error(error):
                raise
            log.warning("job=%d response message not recorded (%s); going on without it", self.job.id, error)
        self.job = replace(self.job, response_message_id=message_id)
        return True

    def start(self, target: DeliveryTarget) -> asyncio.Task[JobOutcome | None]:
        self.started = True
        return self._runtime.start(self.job, target)
