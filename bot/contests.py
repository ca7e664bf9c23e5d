"""Contests: one per server at a time, entries that are ordinary generations (capped per member), and the loop
that ends each contest exactly once, at its time, and posts its results (also after restarts, in any process)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Protocol

from bot.clock import Clock
from bot.errors import UserFacingError
from bot.hall_of_fame import FameTarget, HallOfFameService
from bot.storage.contests import Contest, ContestStore, RankedSong, ResultsClaim

__all__ = [
    "CommunityLoop",
    "CommunityTarget",
    "Contest",
    "ContestService",
    "ContestTarget",
    "RankedSong",
    "parse_duration",
]

log = logging.getLogger(__name__)

THEME_MAX_CHARS = 200
SHORTEST_CONTEST = timedelta(minutes=10)
LONGEST_CONTEST = timedelta(days=60)
RESULTS_SIZE = 10
STANDINGS_SIZE = 5
STANDINGS_EDIT_INTERVAL = timedelta(minutes=1)
# How long a process holds the posting of a contest's results before another may take it over.
RESULTS_CLAIM = timedelta(minutes=2)
PAST_PAGE_SIZE = 5

_DURATION = re.compile(r"(\d+)\s*([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


class ContestTarget(Protocol):
    """How the loop reaches Discord (the Discord layer implements it)."""

    async def show_standings(self, contest: Contest, standings: list[RankedSong]) -> None: ...

    async def post_results(self, contest: Contest, results: list[RankedSong], *, retaken: bool) -> int:
        """Posts the results (and forwards the winner) idempotently; returns the results message's id. `retaken`:
        another process claimed them first and stopped, so they may be in the channel already."""


def parse_duration(text: str) -> timedelta:
    """`3d`, `12h`, `90m` or a mix (`1d12h`); between SHORTEST_CONTEST and LONGEST_CONTEST."""
    cleaned = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(cleaned)
    if not parts or "".join(f"{n}{unit}" for n, unit in parts) != cleaned:
        raise UserFacingError(
            "Give the contest's length like `3d`, `12h`, `90m` or `1d12h`.", key="contest.refused.length_format"
        )
    length = sum((timedelta(**{_UNITS[unit]: int(n)}) for n, unit in parts), timedelta())
    if not SHORTEST_CONTEST <= length <= LONGEST_CONTEST:
        raise UserFacingError("A contest lasts between 10 minutes and 60 days.", key="contest.refused.length_range")
    return length


class ContestService:
    def __init__(self, store: ContestStore, *, clock: Clock, owner: str) -> None:
        self._store = store
        self._clock = clock
        self._owner = owner
        self.settled = asyncio.Event()  # set whenever this process posted a contest's results (tests wait on it)

    async def start(
        self,
        *,
        guild_id: int,
        channel_id: int,
        theme: str,
        ends_in: str,
        started_by: int,
        max_entries_per_member: int | None,
        exclude_new_members: bool,
    ) -> Contest:
        theme = " ".join(theme.split())
        if not theme:
            raise UserFacingError("A contest needs a theme.", key="contest.refused.no_theme")
        length = parse_duration(ends_in)
        now = self._clock()
        contest = await self._store.start(
            guild_id=guild_id,
            channel_id=channel_id,
            theme=theme[:THEME_MAX_CHARS],
            started_by=started_by,
            starts_at=now,
            ends_at=now + length,
            max_entries_per_member=max_entries_per_member,
            exclude_new_members=exclude_new_members,
        )
        if contest is None:
            raise UserFacingError(
                "A contest is already running here. End or cancel it first.", key="contest.refused.already_running"
            )
        log.info("guild=%d contest=%d phase=started ends_at=%s", guild_id, contest.id, contest.ends_at.isoformat())
        return contest

    async def announced(self, contest: Contest, message_id: int) -> None:
        await self._store.set_announcement(contest.id, message_id)

    async def running(self, guild_id: int) -> Contest | None:
        return await self._store.running(guild_id)

    async def end_now(self, guild_id: int) -> Contest:
        """Brings the end to now; the results are posted by whichever process's loop claims it first."""
        contest = await self._store.end_now(guild_id, self._clock())
        if contest is None:
            raise UserFacingError("No contest is running here.", key="contest.refused.none_running")
        return contest

    async def cancel(self, guild_id: int) -> Contest:
        contest = await self._store.cancel(guild_id)
        if contest is None:
            raise UserFacingError("No contest is running here.", key="contest.refused.none_running")
        log.info("guild=%d contest=%d phase=cancelled", guild_id, contest.id)
        return contest

    async def check_entry(self, guild_id: int, user_id: int) -> Contest:
        """The contest a member may enter now, or the refusal (before anything is reserved)."""
        contest = await self._store.running(guild_id)
        if contest is None or contest.ends_at <= self._clock():
            raise UserFacingError(
                "No contest is running here, so there is nothing to enter.", key="contest.refused.none_to_enter"
            )
        cap = contest.max_entries_per_member
        if cap is not None and await self._store.entries_of(contest.id, user_id) >= cap:
            raise UserFacingError(
                f"You have entered this contest {cap} time(s), the most each member may.",
                key="contest.refused.entry_cap",
                values={"cap": cap},
            )
        return contest

    async def enter(self, contest: Contest, job_id: int, user_id: int) -> None:
        """Marks the reserved job as an entry, exactly within the cap; raises (and the job is given back) when a
        simultaneous entry took the last place or the contest ended meanwhile."""
        if not await self._store.enter(contest.id, job_id, user_id, now=self._clock()):
            raise UserFacingError(
                "This contest ended, or you reached its entry limit meanwhile; nothing was spent.",
                key="contest.refused.entry_race",
            )
        log.info("guild=%d contest=%d job=%d phase=entered", contest.guild_id, contest.id, job_id)

    async def entered(self, contest: Contest, user_id: int) -> int:
        return await self._store.entries_of(contest.id, user_id)

    async def member_songs(self, contest: Contest, user_id: int) -> list[RankedSong]:
        return await self._store.member_songs(contest, user_id, self._clock())

    async def standings(self, contest: Contest) -> list[RankedSong]:
        return await self._store.standings(contest, self._clock(), STANDINGS_SIZE)

    async def past(self, guild_id: int, page: int) -> list[tuple[Contest, list[RankedSong]]]:
        contests = await self._store.past(guild_id, PAST_PAGE_SIZE, (page - 1) * PAST_PAGE_SIZE)
        return [(contest, (await self._store.results(contest.id))[:3]) for contest in contests]

    async def settle_due(self, target: ContestTarget) -> int:
        """Ends every contest whose time came and posts its results; each claimed by one conditional UPDATE, so
        exactly one process posts them, and a claim whose process stopped is taken over once it runs out."""
        now = self._clock()
        settled = 0
        for contest_id in await self._store.due(now):
            claim = await self._store.claim_results(
                contest_id, self._owner, now=now, until=now + RESULTS_CLAIM, top=RESULTS_SIZE
            )
            if claim is None:
                continue
            contest = await self._store.get(contest_id)
            results = await self._store.results(contest_id)
            message_id = await target.post_results(contest, results, retaken=claim is ResultsClaim.RETAKEN)
            if await self._store.mark_posted(contest_id, self._owner, message_id, self._clock()):
                settled += 1
                log.info(
                    "guild=%d contest=%d phase=results_posted message=%d", contest.guild_id, contest.id, message_id
                )
        if settled:
            self.settled.set()
        return settled

    async def refresh_standings(self, target: ContestTarget) -> None:
        now = self._clock()
        for contest in await self._store.running_everywhere():
            if contest.ends_at <= now:
                continue
            if await self._store.claim_standings_edit(contest.id, now=now, not_since=now - STANDINGS_EDIT_INTERVAL):
                await target.show_standings(contest, await self.standings(contest))


class CommunityTarget(ContestTarget, FameTarget, Protocol):
    """Everything the community loop posts."""


class CommunityLoop:
    """The small loop the composition root runs beside the job runtime: contests whose end came are settled, their
    standings refreshed, and hall-of-fame forwards left unfinished by a stopped process completed."""

    def __init__(self, contests: ContestService, hall_of_fame: HallOfFameService, *, interval: float) -> None:
        self._contests = contests
        self._hall_of_fame = hall_of_fame
        self._interval = interval

    async def run(self, target: Callable[[], CommunityTarget | None], ready: Callable[[], Awaitable[None]]) -> None:
        await ready()
        while True:
            current = target()
            if current is not None:
                await self.round(current)
            await asyncio.sleep(self._interval)

    async def round(self, target: CommunityTarget) -> None:
        for step in (self._contests.settle_due, self._contests.refresh_standings):
            try:
                await step(target)
            except Exception:
                log.exception("community loop: %s failed; will try again", step.__name__)
        try:
            await self._hall_of_fame.finish_stale(target)
        except Exception:
            log.exception("community loop: unfinished hall-of-fame forwards failed; will try again")
