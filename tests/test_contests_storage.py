"""Contest and hall-of-fame storage on both engines: one running contest per server, entries exactly within the
cap under concurrency, the ending claimed by one of two services on one database, a claim whose process died
taken over once, and a hall-of-fame forward claimed once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.contests import RESULTS_CLAIM, ContestService
from bot.hall_of_fame import FORWARD_CLAIM, HallOfFameService
from bot.models import VoteChoice
from bot.storage import Database, VoteStore
from bot.storage.contests import Contest, ContestStore, RankedSong
from bot.storage.hall_of_fame import FameCandidate, HallOfFameStore
from tests.clock import FakeClock
from tests.test_privacy_storage import ALICE, BOB, CAROL, GUILD, song_job


class CountingTarget:
    """Records what would be posted; `fail` makes the next results post die half-way (a crash)."""

    def __init__(self) -> None:
        self.results: list[tuple[int, list[str]]] = []
        self.forwards: list[str] = []
        self.fail = False

    async def show_standings(self, contest: Contest, standings: list[RankedSong]) -> None:
        return None

    async def post_results(self, contest: Contest, results: list[RankedSong], *, retaken: bool) -> int:
        await asyncio.sleep(0.01)  # let a racing service run meanwhile
        if self.fail:
            self.fail = False
            raise ConnectionError("the process died mid-post")
        self.results.append((contest.id, [song.clip_id for song in results]))
        return 1000 + contest.id

    async def forward_to_hall_of_fame(self, candidate: FameCandidate) -> int:
        await asyncio.sleep(0.01)
        self.forwards.append(candidate.clip_id)
        return 2000


async def start(service: ContestService, *, cap: int | None = None, exclude: bool = False) -> Contest:
    return await service.start(
        guild_id=GUILD,
        channel_id=20,
        theme="rain",
        ends_in="3h",
        started_by=CAROL,
        max_entries_per_member=cap,
        exclude_new_members=exclude,
    )


async def test_one_running_contest_per_server_even_when_started_at_once(database: Database, clock: FakeClock) -> None:
    service = ContestService(ContestStore(database), clock=clock, owner="a")
    outcomes = await asyncio.gather(*(start(service) for _ in range(5)), return_exceptions=True)
    assert sum(isinstance(outcome, Contest) for outcome in outcomes) == 1
    running = await service.running(GUILD)
    assert running is not None
    await service.cancel(GUILD)
    assert isinstance(await start(service), Contest)  # a cancelled one no longer counts


async def test_entries_never_pass_the_cap_under_concurrency(database: Database, clock: FakeClock) -> None:
    service = ContestService(ContestStore(database), clock=clock, owner="a")
    contest = await start(service, cap=2)
    clock.advance(seconds=1)
    jobs = []
    for n in range(6):
        jobs.append((await song_job(database, clock, ALICE, prompt=f"p{n}"))[0])
        clock.advance(minutes=11)  # past the test limits' cooldown
    outcomes = await asyncio.gather(*(service.enter(contest, job, ALICE) for job in jobs), return_exceptions=True)
    assert sum(outcome is None for outcome in outcomes) == 2
    assert await service.entered(contest, ALICE) == 2


async def test_two_services_on_one_database_settle_a_contest_once(database: Database, clock: FakeClock) -> None:
    first = ContestService(ContestStore(database), clock=clock, owner="a")
    second = ContestService(ContestStore(database), clock=clock, owner="b")
    contest = await start(first)
    clock.advance(minutes=1)
    job, clips = await song_job(database, clock, ALICE)
    rival, rival_clips = await song_job(database, clock, BOB)
    await first.enter(contest, job, ALICE)
    await first.enter(contest, rival, BOB)
    votes = VoteStore(database)
    await votes.toggle(rival_clips[1], CAROL, VoteChoice.UP, clock())
    clock.advance(hours=3)
    await votes.toggle(clips[0], CAROL, VoteChoice.UP, clock())  # at the end: outside the window
    target = CountingTarget()
    settled = await asyncio.gather(first.settle_due(target), second.settle_due(target), first.settle_due(target))
    assert sum(settled) == 1
    assert len(target.results) == 1
    _, ranked = target.results[0]
    assert ranked[0] == rival_clips[1]
    assert ranked[1:] == [clips[0], clips[1], rival_clips[0]]  # ties: the earlier song first
    assert await first.settle_due(target) == 0
    assert len(target.results) == 1


async def test_a_claim_whose_process_died_is_taken_over_once(database: Database, clock: FakeClock) -> None:
    dying = ContestService(ContestStore(database), clock=clock, owner="a")
    heirs = [ContestService(ContestStore(database), clock=clock, owner=name) for name in ("b", "c")]
    await start(dying)
    clock.advance(hours=4)
    target = CountingTarget()
    target.fail = True
    with pytest.raises(ConnectionError):
        await dying.settle_due(target)
    assert target.results == []
    assert await heirs[0].settle_due(target) == 0  # the claim still holds
    clock.advance(seconds=RESULTS_CLAIM.total_seconds() + 1)
    settled = await asyncio.gather(*(heir.settle_due(target) for heir in heirs))
    assert sum(settled) == 1
    assert len(target.results) == 1


async def test_a_hall_of_fame_forward_is_claimed_once(database: Database, clock: FakeClock) -> None:
    services = [HallOfFameService(HallOfFameStore(database), clock=clock, owner=name) for name in ("a", "b")]
    await services[0].configure(GUILD, 99, 2, actor_id=CAROL)
    _, clips = await song_job(database, clock, ALICE)
    target = CountingTarget()
    posted = await asyncio.gather(*(s.after_vote(GUILD, clips[0], 3, target) for s in services * 3))
    assert sum(posted) == 1
    assert target.forwards == [clips[0]]
    assert await services[1].after_vote(GUILD, clips[0], 1, target) is False  # below: nothing un-posted
    assert await services[1].after_vote(GUILD, clips[0], 5, target) is False
    clock.advance(seconds=FORWARD_CLAIM.total_seconds() * 2)
    assert await services[0].finish_stale(target) == 0
    assert target.forwards == [clips[0]]


async def test_a_forward_left_unfinished_is_completed_by_the_loop(database: Database, clock: FakeClock) -> None:
    store = HallOfFameStore(database)
    await store.configure(GUILD, 99, 1, actor_id=CAROL, now=clock())
    _, clips = await song_job(database, clock, ALICE)
    assert await store.claim(clips[0], GUILD, 99, "dead", now=clock(), until=clock() + timedelta(seconds=5))
    target = CountingTarget()
    service = HallOfFameService(store, clock=clock, owner="alive")
    assert await service.finish_stale(target) == 0
    clock.advance(seconds=6)
    assert await service.finish_stale(target) == 1
    assert target.forwards == [clips[0]]
