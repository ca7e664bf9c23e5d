"""Privacy storage on both engines: forgetting a member removes exactly their rows (tallies kept equal to the votes,
also under concurrent clicks), deleting a song, erasing old jobs' words and a departed server's data."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bot.models import (
    FORGOTTEN_MEMBER,
    Clip,
    ClipStatus,
    FailureReason,
    GenerationMode,
    GenerationRequest,
    QuotaLimits,
    Requester,
    VoteChoice,
)
from bot.storage import Database, JobStore, QuotaStore, VoteStore
from bot.storage.erasure import ErasureStore
from bot.storage.privacy import PrivacyStore
from tests.clock import FakeClock

OWNER = "this-process"
LIMITS = QuotaLimits(daily=-1, monthly=-1, per_member_daily=-1, cooldown_seconds=600, max_concurrent=-1)
ALICE, BOB, CAROL = 101, 102, 103
GUILD, OTHER_GUILD = 1, 2
HORIZON = timedelta(days=7)


async def song_job(
    database: Database, clock: FakeClock, user_id: int, *, guild: int = GUILD, prompt: str = "rain", finish: bool = True
) -> tuple[int, list[str]]:
    """A job of `user_id` with two posted clips (and lyrics), finished unless `finish` is False."""
    jobs = JobStore(database)
    job_id = await QuotaStore(database, defaults=LIMITS).reserve_job(
        Requester(guild, 20, user_id),
        GenerationRequest(GenerationMode.CUSTOM, prompt, title=f"{prompt} title", tags="lo-fi"),
        backend="aimlapi-suno",
        now=clock(),
        day_start=clock().replace(hour=0, minute=0),
        month_start=clock().replace(day=1, hour=0, minute=0),
        owner=OWNER,
        lease_until=clock() + timedelta(seconds=30),
    )
    await jobs.mark_submitted(job_id, OWNER, clock())
    clips = [
        Clip(f"j{job_id}c{n}", ClipStatus.COMPLETE, title=f"{prompt} {n}", lyrics=f"la {prompt}", audio_url="http://a")
        for n in range(2)
    ]
    await jobs.save_clips(job_id, OWNER, list(enumerate(clips)), polling=True)
    for n, clip in enumerate(clips):
        await jobs.record_delivery(job_id, OWNER, clip.id, job_id * 10 + n, clock())
    if finish:
        await jobs.finish(job_id, OWNER, now=clock(), reason=None)
    return job_id, [clip.id for clip in clips]


async def rows(database: Database, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in await database.fetch_all(sql, parameters)]


async def assert_tallies_agree_with_votes(database: Database) -> None:
    """vote_tallies, vote_days and vote_hours hold exactly what the votes add up to (zero rows aside)."""
    count = "sum(CASE WHEN value = 1 THEN 1 ELSE 0 END), sum(CASE WHEN value = -1 THEN 1 ELSE 0 END)"
    for table, column, length in (("vote_tallies", None, 0), ("vote_days", "day", 10), ("vote_hours", "hour", 13)):
        group = f"clip_id, substr(voted_at, 1, {length})" if column else "clip_id"
        counted = await rows(database, f"SELECT {group}, {count} FROM votes GROUP BY {group}")
        kept = await rows(
            database, f"SELECT clip_id, {column + ', ' if column else ''}up, down FROM {table} WHERE up + down > 0"
        )
        assert sorted(counted) == sorted(kept), table


async def test_forget_removes_exactly_the_members_rows(database: Database, clock: FakeClock) -> None:
    votes = VoteStore(database)
    alice_job, alice_clips = await song_job(database, clock, ALICE, prompt="alice sings")
    bob_job, bob_clips = await song_job(database, clock, BOB, prompt="bob hums")
    elsewhere, elsewhere_clips = await song_job(database, clock, CAROL, guild=OTHER_GUILD, prompt="carol")
    for clip in bob_clips + elsewhere_clips:
        await votes.toggle(clip, ALICE, VoteChoice.UP, clock())
    await votes.toggle(bob_clips[0], CAROL, VoteChoice.DOWN, clock())
    await votes.toggle(alice_clips[0], BOB, VoteChoice.UP, clock())
    usage_before = await QuotaStore(database, defaults=LIMITS).usage(GUILD, None)
    clock.advance(days=1)  # yesterday's per-member counter goes, today's would stay

    report = await PrivacyStore(database).forget_member(
        ALICE, now=clock(), today=clock().replace(hour=0, minute=0, second=0), cooldown_since=clock() - HORIZON
    )

    assert (report.votes, report.requests, report.running) == (4, 1, 0)
    assert await rows(database, "SELECT clip_id, user_id FROM votes ORDER BY clip_id, user_id") == sorted(
        [(bob_clips[0], CAROL), (alice_clips[0], BOB)]
    )
    await assert_tallies_agree_with_votes(database)
    jobs = await rows(database, "SELECT id, requester_id, prompt, title, tags FROM jobs ORDER BY id")
    assert jobs == [
        (alice_job, FORGOTTEN_MEMBER, "", None, None),
        (bob_job, BOB, "bob hums", "bob hums title", "lo-fi"),
        (elsewhere, CAROL, "carol", "carol title", "lo-fi"),
    ]
    clips = await rows(database, "SELECT job_id, title, lyrics, audio_url FROM clips ORDER BY id")
    assert [clip for clip in clips if clip[0] == alice_job] == [(alice_job, "", "", "")] * 2
    assert {clip[1] for clip in clips if clip[0] != alice_job} == {"bob hums 0", "bob hums 1", "carol 0", "carol 1"}
    assert await rows(database, "SELECT user_id FROM quota_ledger WHERE job_id = ?", alice_job) == [(0,)]
    assert await rows(database, "SELECT scope FROM quota_counters WHERE scope LIKE 'member:%' ORDER BY scope") == [
        (f"member:{BOB}",),
        (f"member:{CAROL}",),
    ]
    assert await VoteStore(database).history(GUILD, ALICE, 10) == []
    assert len(await VoteStore(database).history(GUILD, BOB, 10)) == 2
    usage_after = await QuotaStore(database, defaults=LIMITS).usage(GUILD, None)
    assert (usage_after.requested, usage_after.delivered, usage_after.charged) == (
        usage_before.requested,
        usage_before.delivered,
        usage_before.charged,
    )
    assert dict(usage_after.top_members) == {FORGOTTEN_MEMBER: 1, BOB: 1}
    # Her last request's time stays for her cooldown, in the server where she made it.
    cooldown = await QuotaStore(database, defaults=LIMITS).snapshot(
        Requester(GUILD, 20, ALICE), now=clock() - timedelta(days=1), day_start=clock(), month_start=clock()
    )
    assert cooldown.cooldown_ends is not None


async def test_forget_is_refused_while_a_request_runs_and_touches_nothing(database: Database, clock: FakeClock) -> None:
    running, _ = await song_job(database, clock, ALICE, finish=False)
    report = await PrivacyStore(database).forget_member(
        ALICE, now=clock(), today=clock(), cooldown_since=clock() - HORIZON
    )
    assert report.running == 1
    assert await rows(database, "SELECT requester_id, prompt FROM jobs") == [(ALICE, "rain")]
    await JobStore(database).finish(running, OWNER, now=clock(), reason=FailureReason.DEADLINE)
    assert (await PrivacyStore(database).running_requests(ALICE)) == 0


async def test_votes_racing_forget_leave_tallies_equal_to_the_votes(database: Database, clock: FakeClock) -> None:
    votes = VoteStore(database)
    clips: list[str] = []
    for n in range(6):
        clips += (await song_job(database, clock, 200 + n, prompt=f"song {n}"))[1]
    voters = [ALICE, BOB, CAROL]
    for clip in clips:
        await votes.toggle(clip, ALICE, VoteChoice.UP, clock())

    async def click(n: int) -> None:
        await votes.toggle(clips[n % len(clips)], voters[n % 3], VoteChoice.UP if n % 2 else VoteChoice.DOWN, clock())

    store = PrivacyStore(database, batch=3)  # several batches, so clicks land between them
    forget = store.forget_member(ALICE, now=clock(), today=clock(), cooldown_since=clock() - HORIZON)
    results = await asyncio.gather(forget, *(click(n) for n in range(60)))
    await assert_tallies_agree_with_votes(database)
    assert results[0].votes > 0
    # A vote she cast after is hers to keep; none from before survives (the clock did not move: every vote
    # cast during the race counts as cast "until now", so all of hers went or came after the last batch).
    left = await rows(database, "SELECT count(*) FROM votes WHERE user_id = ?", ALICE)
    assert left[0][0] <= 20


async def test_deleting_a_song_removes_its_votes_tallies_and_clip_but_keeps_the_job(
    database: Database, clock: FakeClock
) -> None:
    votes = VoteStore(database)
    job_id, (first, second) = await song_job(database, clock, ALICE)
    for voter in (BOB, CAROL):
        await votes.toggle(first, voter, VoteChoice.UP, clock())
    await votes.toggle(second, BOB, VoteChoice.DOWN, clock())
    store = PrivacyStore(database)
    song = await store.song(GUILD, job_id * 10)
    assert song is not None
    assert (song.clip_id, song.job_finished, song.title) == (first, True, "rain 0")
    assert await store.song(OTHER_GUILD, job_id * 10) is None  # not this server's
    assert await store.delete_song(first, actor_id=7, now=clock()) == 2
    assert await store.delete_song(first, actor_id=7, now=clock()) is None
    assert await rows(database, "SELECT id FROM clips") == [(second,)]
    assert await rows(database, "SELECT clip_id FROM vote_tallies") == [(second,)]
    assert await rows(database, "SELECT DISTINCT clip_id FROM vote_hours") == [(second,)]
    await assert_tallies_agree_with_votes(database)
    audit = await rows(database, "SELECT guild_id, actor_id, action, subject FROM moderation_log")
    assert audit == [(GUILD, 7, "delete_song", first)]
    assert await rows(database, "SELECT count(*) FROM jobs") == [(1,)]
    assert [clip.clip_id for clip in await votes.top(GUILD, None, 10)] == [second]


async def test_retention_erases_old_finished_jobs_words_only(database: Database, clock: FakeClock) -> None:
    old, _ = await song_job(database, clock, ALICE, prompt="old one")
    old_running, _ = await song_job(database, clock, BOB, prompt="still going", finish=False)
    clock.advance(days=31)
    recent, _ = await song_job(database, clock, ALICE, prompt="new one")
    erasure = ErasureStore(database)
    assert await erasure.erase_old_jobs(created_before=clock() - timedelta(days=30), now=clock(), batch=1) == 1
    assert await erasure.erase_old_jobs(created_before=clock() - timedelta(days=30), now=clock(), batch=1) == 0
    jobs = await rows(database, "SELECT id, requester_id, prompt, erased_at IS NOT NULL FROM jobs ORDER BY id")
    assert jobs == [(old, ALICE, "", True), (old_running, BOB, "still going", False), (recent, ALICE, "new one", False)]
    assert await rows(database, "SELECT DISTINCT lyrics FROM clips WHERE job_id = ?", old) == [("",)]
    assert len(await VoteStore(database).history(GUILD, ALICE, 10)) == 4  # her songs are still hers


async def test_a_departed_server_is_erased_after_the_retention_unless_it_came_back(
    database: Database, clock: FakeClock
) -> None:
    votes = VoteStore(database)
    privacy, erasure = PrivacyStore(database), ErasureStore(database)
    _, clips = await song_job(database, clock, ALICE)
    _, other_clips = await song_job(database, clock, BOB, guild=OTHER_GUILD)
    for clip in clips + other_clips:
        await votes.toggle(clip, CAROL, VoteChoice.UP, clock())
    quota = QuotaStore(database, defaults=LIMITS)
    for guild in (GUILD, OTHER_GUILD):
        await quota.set_limits(guild, {"daily": 3}, actor_id=CAROL, now=clock())
        await quota.block(guild, BOB, reason="spam", actor_id=CAROL, now=clock())
    await privacy.guild_left(GUILD, clock())
    await privacy.guild_left(OTHER_GUILD, clock())
    await privacy.guild_joined(OTHER_GUILD)  # came back: kept
    clock.advance(days=10)
    cutoff = clock() - timedelta(days=7)
    assert await erasure.departed_before(cutoff, 10) == [GUILD]
    assert await erasure.erase_departed_guild(GUILD, left_before=cutoff, now=clock(), batch=1)
    assert await erasure.departed_before(cutoff, 10) == []
    for table in ("votes", "vote_tallies", "guild_limits", "blocked_members", "moderation_log"):
        column = "clip_id" if table == "votes" else "guild_id"
        kept = await rows(database, f"SELECT DISTINCT {column} FROM {table}")
        expected = set(other_clips) if table == "votes" else {OTHER_GUILD}
        assert set(kept) == {(value,) for value in expected}, table
    assert await rows(database, "SELECT guild_id, requester_id, prompt FROM jobs ORDER BY id") == [
        (GUILD, FORGOTTEN_MEMBER, ""),
        (OTHER_GUILD, BOB, "rain"),
    ]
    assert await rows(database, "SELECT DISTINCT guild_id FROM quota_counters WHERE scope LIKE 'member:%'") == [
        (OTHER_GUILD,)
    ]
    await assert_tallies_agree_with_votes(database)


async def test_a_forgotten_members_cooldown_mark_expires(database: Database, clock: FakeClock) -> None:
    await song_job(database, clock, ALICE)
    store = PrivacyStore(database)
    await store.forget_member(ALICE, now=clock(), today=clock(), cooldown_since=clock() - HORIZON)
    assert await rows(database, "SELECT guild_id, user_id FROM forgotten_requests") == [(GUILD, ALICE)]
    erasure = ErasureStore(database)
    assert await erasure.forget_expired_requests(before=clock() - HORIZON) == 0
    clock.advance(days=8)
    assert await erasure.forget_expired_requests(before=clock() - HORIZON) == 1
