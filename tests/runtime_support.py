"""What the runtime's own tests drive it with: a recording fake backend, a recording delivery target, the real
runtime on a real database, and small helpers to wait and to build clips."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.backends import Capabilities, ModelSpec, PollUpdate, ServerProgress, Submission
from bot.backends.base import DownloadedAudio
from bot.clock import utc_now
from bot.models import (
    Clip,
    ClipStatus,
    GenerationMode,
    GenerationRequest,
    Job,
    QuotaLimits,
    Requester,
)
from bot.quota import QuotaService
from bot.retry import Backoff
from bot.runtime import AsLink, JobOutcome, JobRuntime, ListenLink, Phase
from bot.storage import Database, JobStore, QuotaStore

REQUESTER = Requester(guild_id=1, channel_id=2, user_id=3)
REQUEST = GenerationRequest(GenerationMode.DESCRIPTION, "a song about tests")
CAPABILITIES = Capabilities(
    models=(ModelSpec("test-model"),),
    default_model="test-model",
    outputs_per_request=2,
    cover_art=False,
    writes_titles=True,
)


def clip(clip_id: str, status: ClipStatus, **fields: Any) -> Clip:
    audio = f"https://files.example/{clip_id}.mp3" if status is ClipStatus.COMPLETE else ""
    return Clip(id=clip_id, status=status, audio_url=audio, **fields)


@dataclass
class RecordingBackend:
    """Answers from scripts and records every call: submits (an error or a Submission each), and per clip id
    the states its polls return, the last one repeated."""

    submits: deque[Submission | Exception] = field(default_factory=deque)
    states: dict[str, deque[Clip]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    name: str = "test-backend"
    capabilities: Capabilities = CAPABILITIES

    async def submit(
        self, request: GenerationRequest, *, wait_audio: bool, callback_url: str | None = None
    ) -> Submission:
        self.calls.append("submit")
        answer = self.submits.popleft()
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def poll(self, keys: Sequence[str]) -> list[PollUpdate]:
        self.calls.append("poll")
        updates = []
        for key in keys:
            states = self.states[key]
            current = states.popleft() if len(states) > 1 else states[0]
            updates.append(PollUpdate(key=key, clips=(current,), done=current.status.is_terminal))
        return updates

    async def probe(self) -> str:
        return "fine"


async def download(url: str, destination: Path, *, max_bytes: int, time_limit: float) -> DownloadedAudio:
    """The one download path, faked: every song is a small MP3."""
    data = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(64)
    await asyncio.to_thread(destination.write_bytes, data)
    return DownloadedAudio(size=len(data), format="mp3")


@dataclass
class RecordingTarget:
    """Records what the runtime shows and posts; `refuse` holds the errors the next posts raise."""

    refuse: deque[Exception] = field(default_factory=deque)
    progress: list[Phase] = field(default_factory=list)
    posted: list[tuple[int, str, bool]] = field(default_factory=list)  # (position, clip id, attached)
    outcomes: list[JobOutcome] = field(default_factory=list)
    listened: list[tuple[ListenLink, ...]] = field(default_factory=list)  # the listen links of each progress edit
    lines: list[int | None] = field(default_factory=list)  # the place in line each progress edit showed
    upload_limit: int = 10 * 1024 * 1024

    async def find_posted_clip(self, job: Job, position: int) -> int | None:
        return None

    async def show_progress(
        self,
        job: Job,
        phase: Phase,
        listen: Sequence[ListenLink] = (),
        line: int | None = None,
        server: ServerProgress | None = None,
    ) -> None:
        self.progress.append(phase)
        self.listened.append(tuple(listen))
        self.lines.append(line)

    async def post_clip(self, job: Job, clip: Clip, position: int, audio: Path | None, link: AsLink | None) -> int:
        if self.refuse:
            raise self.refuse.popleft()
        self.posted.append((position, clip.id, audio is not None))
        return 1000 + len(self.posted)

    async def show_outcome(self, outcome: JobOutcome) -> None:
        self.outcomes.append(outcome)


@dataclass
class World:
    runtime: JobRuntime
    backend: RecordingBackend
    target: RecordingTarget
    database: Database

    async def run_one(self) -> JobOutcome | None:
        async with self.runtime.admit(REQUESTER, REQUEST) as reservation:
            task = reservation.start(self.target)
        return await task

    async def job(self) -> dict[str, Any]:
        row = await self.database.fetch_one("SELECT status, charged, failure_reason, owner FROM jobs")
        assert row is not None
        return dict(row)


def make_runtime(database: Database, backend: RecordingBackend, tmp_path: Path, **overrides: Any) -> JobRuntime:
    quota = QuotaService(
        QuotaStore(database, defaults=QuotaLimits(-1, -1, -1, 0, -1)),
        clock=utc_now,
    )
    values: dict[str, Any] = {
        "backend": backend,
        "jobs": JobStore(database),
        "quota": quota,
        "download": download,
        "clock": utc_now,
        "owner": "test-process",
        "audio_dir": tmp_path,
        "wait_audio": False,
        "deadline_seconds": 5.0,
        "progress_interval": 0,
        "backoff": Backoff(attempts=3, base_delay=0.001),
        "poll_interval": 0.01,
        "poll_batch_size": 10,
    }
    values.update(overrides)
    return JobRuntime(**values)


@asynccontextmanager
async def running_world(database: Database, tmp_path: Path) -> AsyncIterator[World]:
    """The runtime running with a fresh recording backend and target."""
    backend = RecordingBackend()
    runtime = make_runtime(database, backend, tmp_path)
    target = RecordingTarget()

    async with runtime.running(lambda job: target, connected):
        yield World(runtime, backend, target, database)


async def until(condition: Callable[[], bool]) -> None:
    """Waits (up to 10 s) for what the runtime does in the background."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the runtime never got there")


async def connected() -> None:
    """Discord is "ready" at once."""


def submitted(*clips: Clip) -> Submission:
    return Submission(poll_keys=tuple(c.id for c in clips), clips=clips)
