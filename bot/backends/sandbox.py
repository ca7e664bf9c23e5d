"""`sandbox`: the bot makes its own short test songs, free and without a key: tunes synthesised from the prompt,
not AI music. It behaves like a task API (submit, then poll: queued, streaming, complete after a few seconds)
and serves its files from its own little server (bot/backends/sandbox_server.py), so everything else in the bot
runs as it does with a paid backend.

Stateless: the task id carries the request and the time it was made, so any process of the bot (this one, or
the next after a restart) answers a poll for it the same way.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import aiohttp

from bot.backends.base import Capabilities, ModelSpec, PollUpdate, Submission, error_detail
from bot.backends.sandbox_cover import PNG_SIGNATURE, draw_cover
from bot.backends.sandbox_server import cover_path, serve, take_path
from bot.backends.sandbox_synth import (
    MAX_SECONDS,
    MIN_SECONDS,
    SAMPLE_RATE,
    Mp3Summary,
    TakePlan,
    arrange,
    pick_seconds,
    read_mp3_frames,
    render_mp3,
    take_seed,
)
from bot.backends.spec import AdapterSpec, BackendConfig
from bot.errors import MusicApiBadResponseError, MusicApiError, MusicApiInvalidRequestError, MusicApiUnavailableError
from bot.models import Clip, ClipStatus, GenerationMode, GenerationRequest

NAME = "sandbox"
MODEL = "sandbox"
MODEL_NAME = "sandbox (not AI music)"  # what the embed shows as the model
TAKES = 2
CAPABILITIES = Capabilities(
    models=(ModelSpec(MODEL, duration_range=(MIN_SECONDS, MAX_SECONDS)),),
    default_model=MODEL,
    outputs_per_request=TAKES,
    cover_art=True,
    writes_titles=True,
    notice="Sandbox: a test tune the bot synthesised itself from the prompt, not AI music.",
)
# Seconds after the submit: queued, then streaming, then each take complete (the second a little later).
QUEUED_FOR = 1.0
COMPLETE_AFTER = (3.0, 4.5)
KEY_PREFIX = "sandbox."
NOTICE = "(Sandbox: nobody sings this. It is a test tune the bot synthesised itself, not AI music.)"
_REFRAINS = ("la la la", "oh oh oh", "na na na", "hey hey hey")
_HEADLINE_WORDS = 6


@dataclass(frozen=True, slots=True)
class SandboxTask:
    """One request of two takes, as its task id carries it."""

    nonce: str
    submitted_at: float  # wall-clock seconds, so that another process reads the same timeline
    mode: GenerationMode
    prompt: str
    title: str
    tags: str
    instrumental: bool
    seconds: int | None

    @classmethod
    def for_request(cls, request: GenerationRequest, now: float) -> SandboxTask:
        return cls(
            nonce=secrets.token_hex(6),
            submitted_at=now,
            mode=request.mode,
            prompt=request.prompt,
            title=request.title or "",
            tags=request.tags or "",
            instrumental=request.instrumental,
            seconds=request.duration_seconds,
        )

    @property
    def key(self) -> str:
        fields = [self.nonce, round(self.submitted_at, 3), self.mode.value, self.prompt, self.title, self.tags]
        packed = json.dumps([*fields, self.instrumental, self.seconds], separators=(",", ":")).encode()
        return KEY_PREFIX + base64.urlsafe_b64encode(zlib.compress(packed, 9)).decode().rstrip("=")

    @classmethod
    def from_key(cls, key: str) -> SandboxTask | None:
        """The task a key names; None for anything this backend did not make."""
        if not key.startswith(KEY_PREFIX):
            return None
        encoded = key.removeprefix(KEY_PREFIX)
        try:
            packed = zlib.decompress(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
            nonce, submitted_at, mode, prompt, title, tags, instrumental, seconds = json.loads(packed)
            task = cls(
                str(nonce), float(submitted_at), GenerationMode(mode), prompt, title, tags, instrumental, seconds
            )
        except (ValueError, TypeError, zlib.error):
            return None
        texts = (task.prompt, task.title, task.tags)
        if not all(isinstance(text, str) for text in texts) or not isinstance(task.instrumental, bool):
            return None
        if task.seconds is not None and not isinstance(task.seconds, int):
            return None
        return task

    @property
    def song_seed(self) -> bytes:
        """The same words make the same song, whatever else differs."""
        words = "\x00".join((self.mode.value, self.prompt.strip(), self.title.strip(), self.tags.strip()))
        return hashlib.sha256(words.encode()).digest()

    def take(self, index: int) -> TakePlan:
        seed = take_seed(self.song_seed, index)
        seconds = self.seconds if self.seconds is not None else pick_seconds(seed)
        return TakePlan(seed, max(MIN_SECONDS, min(MAX_SECONDS, seconds)), self.instrumental)

    def clip_id(self, index: int) -> str:
        return f"sandbox-{self.nonce}-{index + 1}"


def headline(text: str) -> str:
    """The first words of a prompt, title-cased, for a title."""
    words = re.findall(r"[\w'\u2019-]+", text)[:_HEADLINE_WORDS]
    return " ".join(word[:1].upper() + word[1:] for word in words) or "Untitled"


def clip_words(task: SandboxTask, index: int) -> tuple[str, str, str]:
    """Title, style tags and lyrics of one take: each says it is the sandbox."""
    plan = task.take(index)
    custom = task.mode is GenerationMode.CUSTOM
    name = task.title.strip() if custom and task.title.strip() else headline(task.prompt)
    title = f"{name} (sandbox)"  # the footer numbers the takes
    style = ", ".join(
        part
        for part in (
            task.tags.strip(),
            "sandbox test tune",
            arrange(plan).describe(),
            "instrumental" if plan.instrumental else "",
        )
        if part
    )
    if plan.instrumental:
        lyrics = ""
    elif custom and task.prompt.strip():
        lyrics = f"{NOTICE}\n\n{task.prompt.strip()}"
    else:
        words = task.prompt.split()
        verse = [" ".join(words[start : start + 5]) for start in range(0, min(len(words), 20), 5)]
        refrain = f"{headline(task.prompt)}, {_REFRAINS[plan.seed % len(_REFRAINS)]}"
        lyrics = "\n".join([NOTICE, "", "[Verse]", *verse, "", "[Chorus]", refrain, refrain])
    return title, style, lyrics


class SandboxBackend:
    """Answers from the task id and the clock alone; the files are at its base URL (its own server's)."""

    name = NAME
    capabilities = CAPABILITIES

    def __init__(
        self, session: aiohttp.ClientSession, config: BackendConfig, *, now: Callable[[], float] = time.time
    ) -> None:
        self._base_url = config.base_url.rstrip("/")
        self._now = now

    async def submit(
        self, request: GenerationRequest, *, wait_audio: bool, callback_url: str | None = None
    ) -> Submission:
        """Always asynchronous, like a task API: two queued takes, and the task id to poll."""
        if request.model not in (None, MODEL):
            raise MusicApiInvalidRequestError(f"the sandbox has no model {request.model!r}")
        task = SandboxTask.for_request(request, self._now())
        return Submission(poll_keys=(task.key,), clips=self._clips(task), task_id=task.key)

    async def poll(self, keys: Sequence[str]) -> list[PollUpdate]:
        return [self._update(key) for key in keys]

    async def probe(self) -> str:
        """Synthesises a one-second take here and reads its frames back, and draws a cover; spends nothing."""
        started = time.process_time()
        try:
            frames, cover = await asyncio.to_thread(_probe_files)
        except ValueError as error:
            raise MusicApiBadResponseError(f"its self-test failed: {error}") from error
        cpu_ms = (time.process_time() - started) * 1000
        return (
            f"needs no key and spends nothing: synthesised a {frames.seconds:.1f}-second test take here "
            f"({frames.frames} mp3 frames at {frames.sample_rate / 1000:g} kHz) and a {len(cover):,}-byte cover "
            f"in {cpu_ms:.0f} ms of CPU"
        )

    def _update(self, key: str) -> PollUpdate:
        task = SandboxTask.from_key(key)
        if task is None:
            error = MusicApiInvalidRequestError("the sandbox made no task with this id (was MUSIC_BACKEND changed?)")
            return PollUpdate(key=key, clips=(), done=True, error=error)
        clips = self._clips(task)
        return PollUpdate(key=key, clips=clips, done=all(clip.status.is_terminal for clip in clips))

    def _clips(self, task: SandboxTask) -> tuple[Clip, ...]:
        age = max(0.0, self._now() - task.submitted_at)
        return tuple(self._clip(task, index, age) for index in range(TAKES))

    def _clip(self, task: SandboxTask, index: int, age: float) -> Clip:
        title, style, lyrics = clip_words(task, index)
        clip = Clip(
            id=task.clip_id(index),
            status=ClipStatus.QUEUED,
            title=title,
            tags=style,
            lyrics=lyrics,
            model_name=MODEL_NAME,
        )
        if age < QUEUED_FOR:
            return clip
        cover = self._base_url + cover_path(int.from_bytes(task.song_seed[:8], "big"), index)
        if age < COMPLETE_AFTER[index]:
            # No stream to listen to: the bot would show its link to members, who cannot reach this server.
            return replace(clip, status=ClipStatus.STREAMING, image_url=cover)
        plan = task.take(index)
        audio = self._base_url + take_path(plan.seed, plan.seconds, instrumental=plan.instrumental)
        return replace(clip, status=ClipStatus.COMPLETE, image_url=cover, audio_url=audio, duration=float(plan.seconds))


def _probe_files() -> tuple[Mp3Summary, bytes]:
    frames = read_mp3_frames(render_mp3(TakePlan(seed=1, seconds=1, instrumental=False)))
    if frames.sample_rate != SAMPLE_RATE:
        raise ValueError(f"its test take is at {frames.sample_rate} Hz, not {SAMPLE_RATE}")
    cover = draw_cover(seed=1, take=0)
    if not cover.startswith(PNG_SIGNATURE):
        raise ValueError("its cover is no PNG")
    return frames, cover


def sandbox_error(status: int, body: str) -> MusicApiError:
    """Its own server's answers: only a 404 (a take it cannot make) is expected."""
    detail = f"HTTP {status}: {error_detail(body)}"
    if status == 404:
        return MusicApiInvalidRequestError(detail, status=status)
    return MusicApiUnavailableError(detail, status=status)


ADAPTER = AdapterSpec(
    name=NAME,
    summary=(
        "the sandbox: free test songs the bot synthesises itself (15-30 s tunes, not AI music), served to itself "
        "from 127.0.0.1 (port 0: any free one); no key"
    ),
    cost_unit="credits (the sandbox is free)",
    default_cost=0,
    capabilities=CAPABILITIES,
    create=SandboxBackend,
    error_for_status=sandbox_error,
    base_url_setting="sandbox_base_url",
    keyless_credential="nothing (the sandbox needs no key)",
    serve=serve,
)
