"""What a run keeps track of: its clips' book (where each stands, how it was settled) and the throttle of its
progress edits."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from bot.backends import ServerProgress
from bot.errors import MusicApiError
from bot.models import Clip, Job
from bot.runtime.clip_delivery import UNPOSTABLE, ClipDelivery, DeliveryResult
from bot.runtime.outcome import DeliveryTarget, ListenLink, Phase

log = logging.getLogger(__name__)


@dataclass(eq=False)
class ClipBook:
    """Where each clip of one job stands while the job is followed: its latest state, its position in the
    job, and how it was settled (posted, failed, or waiting for Discord to recover)."""

    capacity: int  # how many clips one request makes; more in an answer are ignored
    positions: dict[str, int]
    delivered: set[str] = field(default_factory=set)
    maybe_posted: set[str] = field(default_factory=set)
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
        return self.positions[clip_id]

    def is_settled(self, clip_id: str) -> bool:
        return clip_id in self.delivered or clip_id in self.failed or clip_id in self.waiting_for_discord

    def unsettled(self) -> set[str]:
        return {clip_id for clip_id in self.latest if not self.is_settled(clip_id)}

    @property
    def expected(self) -> int:
        return max(len(self.latest), 1)

    def record(self, clip_id: str, delivery: ClipDelivery) -> None:
        if delivery.result is DeliveryResult.POSTED:
            self.delivered.add(clip_id)
        elif delivery.result is DeliveryResult.PENDING:
            self.waiting_for_discord.add(clip_id)
        else:
            self.failed[clip_id] = delivery.failure or UNPOSTABLE


_PHASE_ORDER = (Phase.QUEUED, Phase.GENERATING, Phase.FINISHING)


class ProgressThrottle:
    """Shows the job's progress at most once per interval: its phase, which only moves forward (a second song
    still generating after the first was posted does not take the message back to "generating"), the takes
    one can listen to while they are made, and the music service's own word on its progress."""

    def __init__(self, target: DeliveryTarget, job: Job, interval: float) -> None:
        self._target = target
        self._job = job
        self._interval = interval
        self._shown: Phase | None = None
        self._listen: tuple[ListenLink, ...] = ()
        self._line: int | None = None
        self._server: ServerProgress | None = None
        self._last_edit = float("-inf")

    async def show(
        self,
        phase: Phase,
        *,
        force: bool = False,
        listen: tuple[ListenLink, ...] | None = None,
        line: int | None = None,
        server: ServerProgress | None = None,
    ) -> None:
        if self._shown is not None and _PHASE_ORDER.index(phase) < _PHASE_ORDER.index(self._shown):
            phase = self._shown
        links = self._listen if listen is None else listen
        line = line if phase is Phase.QUEUED else None
        server = (self._server if server is None else server) if phase is not Phase.FINISHING else None
        if phase is self._shown and links == self._listen and line == self._line and server == self._server:
            return
        now = time.monotonic()
        if not force and now - self._last_edit < self._interval:
            return
        self._shown, self._listen, self._line, self._server = phase, links, line, server
        self._last_edit = now
        try:
            await self._target.show_progress(self._job, phase, links, line, server)
        except Exception:
            log.warning("job %d: progress update failed", self._job.id, exc_info=True)
