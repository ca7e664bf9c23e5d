"""The song sooner: each clip polled at its own pace (slow while far from done, fast once close), through the
real bot against a fake whose clips complete at random times. Asserted: the request count stays within the
README's bound, every request within the batch size, and each song posted in the order it completed (the
first is not held back for its sibling); never a timing."""

from __future__ import annotations

import asyncio
import math
import random
import time
from pathlib import Path

import pytest

from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import ClipTimings, FakeMusicApi
from tests.harness import running_bot

INTERVAL, FAST, BATCH = 1.0, 0.1, 4
EARLIEST, LATEST = 0.6, 3.0


@pytest.mark.parametrize("backend", ["aimlapi-suno", "suno-api"])  # the clip APIs; sunoapi: test_e2e_backends
async def test_clips_completing_at_random_times_are_posted_in_order_within_the_request_bound(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path, backend: str
) -> None:
    rng = random.Random(12)

    def random_timings(clip_id: str) -> ClipTimings:
        complete = rng.uniform(EARLIEST, LATEST)
        return ClipTimings(queued_after=0.05, streaming_after=complete / 2, complete_after=complete)

    api.timings_per_clip = random_timings
    async with running_bot(
        discord_fake,
        api,
        tmp_path / "db.sqlite3",
        poll_interval_seconds=INTERVAL,
        fast_poll_interval_seconds=FAST,
        poll_batch_size=BATCH,
        wait_audio=False,
        default_max_concurrent=-1,
        default_per_member_daily=-1,
        music_backend=backend,
        suno_api_base_url=api.base_url,
    ) as harness:
        members = [discord_fake.add_member(harness.guild_id, name=f"m{index}") for index in range(5)]
        started = time.monotonic()
        interactions = await asyncio.gather(*(harness.music(f"song {n}", user_id=m) for n, m in enumerate(members)))
        for interaction in interactions:
            await harness.finished(interaction, timeout=30)
        span = time.monotonic() - started
        clips = await harness.query("SELECT id, job_id, message_id FROM clips ORDER BY job_id, position")

    batches = api.fetch_batches() if backend == "aimlapi-suno" else api.gcui_get_batches()
    assert batches
    assert all(len(batch) <= BATCH for batch in batches)
    pending = len(clips)
    # The README's bound, with every clip close to done all along (the worst case), over the polling span.
    bound = (span / INTERVAL + 1 + span / FAST + 1) * math.ceil(pending / BATCH)
    assert len(batches) <= bound, (len(batches), bound)
    # And fewer than a fetch of every pending clip at the fast pace all along: young clips are polled slowly.
    completes_in = sorted(api.timings_of(clip_id).complete_after for clip_id in api.clips)
    all_fast = sum(
        math.ceil(sum(1 for done in completes_in if done > step * FAST) / BATCH)
        for step in range(1, int(LATEST / FAST) + 1)
    )
    assert len(batches) < 0.8 * all_fast, (len(batches), all_fast)
    completes = {clip_id: api.timings_of(clip_id).complete_after for clip_id in api.clips}
    by_job: dict[int, list[dict[str, int]]] = {}
    for clip in clips:
        by_job.setdefault(clip["job_id"], []).append(clip)
    for siblings in by_job.values():
        first, second = sorted(siblings, key=lambda clip: completes[clip["id"]])
        if completes[second["id"]] - completes[first["id"]] > 1.0:  # clearly apart: the first is posted first
            assert first["message_id"] < second["message_id"], siblings
