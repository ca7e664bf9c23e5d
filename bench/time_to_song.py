"""Time to song: from the moment the music API has a clip complete to the moment Discord holds its upload, with
the bot's default poll settings, for clips that complete at random times 20-60 s after submit (the smoke run
divides every time by ten), next to the fetch requests per minute it took."""

from __future__ import annotations

import asyncio
import math
import random
import signal
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from bench.instruments import TimedDiscord, TimedMusicApi
from bot.settings import Settings
from tests.bot_process import BotProcess
from tests.fakes.music_api import ClipTimings
from tests.harness import World

DEFAULTS = {name: Settings.model_fields[name].default for name in ("poll_interval_seconds", "poll_batch_size")}
FAST_DEFAULT = Settings.model_fields["fast_poll_interval_seconds"].default
EARLIEST, LATEST = 20.0, 60.0  # seconds after submit at which the clips complete


class RandomlyTimedMusicApi(TimedMusicApi):
    """Each clip completes at its own random moment in [earliest, latest] after it was made (streaming from
    half of it), through the fake's `timings_per_clip`; `completes_at` holds that moment on
    time.perf_counter's clock."""

    def __init__(self, *, earliest: float, latest: float, seed: int, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self._range = (earliest, latest)
        self._random = random.Random(seed)
        self.completes_at: dict[str, float] = {}
        self.timings_per_clip = self._random_timings

    def _random_timings(self, clip_id: str) -> ClipTimings:
        complete = self._random.uniform(*self._range)
        made = time.perf_counter() - (self._clock() - self.clips[clip_id].created_monotonic)
        self.completes_at[clip_id] = made + complete
        return ClipTimings(queued_after=0.05, streaming_after=complete / 2, complete_after=complete)


@dataclass(frozen=True, slots=True)
class TimeToSong:
    delays: list[float]  # seconds from complete at the API to the upload held by Discord, one per clip
    requests_per_minute: float
    fixed_ticks_per_minute: float  # what one fetch of every pending clip every POLL_INTERVAL would have made
    bound_per_minute: float  # the README's bound for the same clips


async def measure(workdir: Path, *, jobs: int, scale: float, seed: int = 7) -> TimeToSong:
    """`jobs` generations at once against a fresh bot with the default poll settings (times x `scale`)."""
    interval = float(DEFAULTS["poll_interval_seconds"]) * scale
    fast = float(FAST_DEFAULT) * scale
    batch = int(DEFAULTS["poll_batch_size"])
    async with (
        TimedDiscord(token_lifetime=3600) as discord,
        RandomlyTimedMusicApi(
            earliest=EARLIEST * scale, latest=LATEST * scale, seed=seed, audio_size=64 * 1024, wait_audio_timeout=0.5
        ) as api,
    ):
        world = World.create(discord)
        members = [discord.add_member(world.guild_id, name=f"m{index}") for index in range(jobs)]
        database = workdir / f"time-to-song-{jobs}.sqlite3"
        bot = BotProcess(
            discord,
            api,
            database,
            workdir / f"time-to-song-{jobs}",
            poll_interval_seconds=interval,
            fast_poll_interval_seconds=fast,
            poll_batch_size=batch,
            default_daily_limit=-1,
            default_monthly_limit=-1,
            default_per_member_daily=-1,
            default_max_concurrent=-1,
            generation_deadline_seconds=600,
            progress_edit_interval_seconds=5,
            log_level="INFO",
            http_timeout_seconds=60,
        )
        await bot.start_and_wait_ready(timeout=60)
        try:
            started = time.perf_counter()
            await asyncio.gather(
                *(
                    discord.invoke_command(
                        "music",
                        {"prompt": f"time to song {index}"},
                        guild_id=world.guild_id,
                        channel_id=world.channel_id,
                        user_id=members[index],
                    )
                    for index in range(jobs)
                )
            )
            await discord.wait_for(lambda: len(discord.uploads) >= 2 * jobs, timeout=LATEST * scale + 300)
            ended = time.perf_counter()
        finally:
            assert bot.process is not None
            bot.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(bot.process.wait(), 60)
        footers = _footers(database)
        arrived = {footer: at for at, footer, _ in discord.uploads}
        delays = [arrived[footers[clip_id]] - api.completes_at[clip_id] for clip_id in api.completes_at]
        fetches = [at for at, _ in api.fetches if started <= at <= ended]
    minutes = (ended - started) / 60
    # Fixed ticks: every interval, one fetch per batch of the clips not yet seen complete.
    completions = sorted(api.completes_at.values())
    ticks, moment = 0, started + interval
    while moment <= ended:
        ticks += math.ceil(sum(1 for done in completions if done > moment - interval) / batch)
        moment += interval
    # The README's bound with every clip close to done at once (the worst case): 60/interval x ceil(N/B) +
    # 60/fast x ceil(N/B) per minute.
    clips = len(completions)
    bound = (60 / interval + 60 / fast) * math.ceil(clips / batch)
    return TimeToSong(delays, len(fetches) / minutes, ticks / minutes, bound)


def _footers(database: Path) -> dict[str, str]:
    connection = sqlite3.connect(database)
    try:
        rows = connection.execute("SELECT id, job_id, position FROM clips").fetchall()
    finally:
        connection.close()
    return {clip_id: f"Song {position + 1} · job #{job_id}" for clip_id, job_id, position in rows}
