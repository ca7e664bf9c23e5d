"""Voting and browsing: one vote per member per clip, the server's leaderboard and a member's history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.clock import Clock
from bot.errors import UserFacingError
from bot.models import PostedClip, VoteAction, VoteChoice, VoteTally
from bot.storage import VoteStore
from bot.storage.votes import ButtonClip

LEADERBOARD_SIZE = 10
HISTORY_SIZE = 10


class LeaderboardPeriod(StrEnum):
    """Rolling windows over vote timestamps: the last 24 hours, 7 days, 30 days, or every vote."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    ALL = "all"

    @property
    def window(self) -> timedelta | None:
        return {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}.get(self.value)


@dataclass(frozen=True, slots=True)
class VoteResult:
    action: VoteAction
    tally: VoteTally
    clip_id: str = ""


class VotingService:
    def __init__(self, store: VoteStore, *, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def clip_for_buttons(self, job_id: int, position: int) -> ButtonClip:
        """The clip under a message's buttons, from the moment the bot began posting it."""
        clip = await self._store.button_clip(job_id, position)
        if clip is None:
            raise UserFacingError("This song is not in the bot's records any more.", key="vote.song_gone")
        return clip

    async def vote(
        self,
        job_id: int,
        position: int,
        *,
        voter_id: int,
        voter_is_bot: bool,
        choice: VoteChoice,
        voter_joined_at: datetime | None = None,
    ) -> VoteResult:
        """Toggles the member's vote; refuses bots and the song's own requester. `voter_joined_at`: when the voter
        joined the server (kept with the vote, for contests that leave out members who joined after they began)."""
        if voter_is_bot:
            raise UserFacingError("Bots cannot vote.", key="vote.bots")
        clip = await self.clip_for_buttons(job_id, position)
        if clip.requester_id == voter_id:
            raise UserFacingError(
                "You can't vote on a song you requested; let the others judge it.", key="vote.own_song"
            )
        action, tally = await self._store.toggle(clip.clip_id, voter_id, choice, self._clock(), voter_joined_at)
        return VoteResult(action, tally, clip.clip_id)

    async def leaderboard(self, guild_id: int, period: LeaderboardPeriod) -> list[PostedClip]:
        window = period.window
        since = self._clock() - window if window else None
        return await self._store.top(guild_id, since, LEADERBOARD_SIZE)

    async def history(self, guild_id: int, member_id: int) -> list[PostedClip]:
        return await self._store.history(guild_id, member_id, HISTORY_SIZE)
