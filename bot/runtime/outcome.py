"""What a job run reports to the Discord layer: its phase while it waits, how it ended, and where it posts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from bot.backends import ServerProgress
from bot.models import Clip, FailureReason, Job, JobStatus


class Phase(StrEnum):
    """What the requester sees while waiting."""

    QUEUED = "queued"
    GENERATING = "generating"
    FINISHING = "finishing"


class Pause(StrEnum):
    """Why a job stopped without ending; it is picked up again by the runtime's redelivery."""

    POSTING = "posting"  # Discord (or recording a post) kept failing; the rest is posted later
    DATABASE = "database"  # the database could not write; the job goes on once it can


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """How a job ended, or why it paused. The Discord layer turns it into words.

    `detail` is the music service's own words (a song's error message, say), kept only for the reasons a member
    may read about: untrusted text, quoted and escaped where it is shown.
    """

    job: Job
    delivered: int
    expected: int
    reason: FailureReason | None = None
    detail: str | None = None
    pause: Pause | None = None

    @property
    def refunded(self) -> bool:
        return self.job.status is JobStatus.FAILED and not self.job.charged


class LinkReason(StrEnum):
    """Why a song is posted as a link to the music service's file instead of attached."""

    TOO_LARGE = "too_large"
    NOT_FETCHED = "not_fetched"
    NOT_STORED = "not_stored"


@dataclass(frozen=True, slots=True)
class AsLink:
    """A song posted as a link, why, and (when too large) its size against the upload limit."""

    reason: LinkReason
    size: int | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class ListenLink:
    """A take's stream while it is being made (the Suno shapes offer one 20-40 s in): something to hear in
    the progress message, as a link. The stream is not the song and is never posted as one."""

    position: int
    url: str


class DeliveryTarget(Protocol):
    """Where a job's progress and clips go; the Discord layer implements it.

    `post_clip` raises DeliveryError (transient or not) when Discord refuses or fails.
    """

    @property
    def upload_limit(self) -> int: ...

    async def find_posted_clip(self, job: Job, position: int) -> int | None:
        """The id of a message already carrying this clip (posted before a crash), if there is one."""
        ...

    async def show_progress(
        self,
        job: Job,
        phase: Phase,
        listen: Sequence[ListenLink] = (),
        line: int | None = None,
        server: ServerProgress | None = None,
    ) -> None:
        """The job's phase, the takes one can hear while they are made, its place in its server's line while it
        waits for a slot (1 = next), and what the music service says of its progress, where it says."""

    async def post_clip(self, job: Job, clip: Clip, position: int, audio: Path | None, link: AsLink | None) -> int:
        """Posts one clip: the file attached, or (when `audio` is None) a link saying why (`link`).

        Returns the id of the message that carries it.
        """
        ...

    async def show_outcome(self, outcome: JobOutcome) -> None: ...
