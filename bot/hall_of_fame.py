"""The hall of fame: a song whose score reaches the server's threshold is forwarded once into its channel; its
forward is claimed in the database first, and one left unfinished by a stopped process is completed later."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Protocol

from bot.clock import Clock
from bot.errors import UserFacingError
from bot.storage.hall_of_fame import FameCandidate, HallOfFame, HallOfFameStore

__all__ = ["FameCandidate", "FameTarget", "HallOfFame", "HallOfFameService"]

log = logging.getLogger(__name__)

# How long a process holds a forward before another may take it over (the posts carry nonces, which Discord
# remembers for a few minutes, so a taken-over forward that had reached Discord is not posted twice).
FORWARD_CLAIM = timedelta(seconds=60)
MAX_THRESHOLD = 1_000_000


class FameTarget(Protocol):
    async def forward_to_hall_of_fame(self, candidate: FameCandidate) -> int:
        """Credits the requester and forwards the song into the hall-of-fame channel, idempotently; returns the
        forward's message id."""


class HallOfFameService:
    def __init__(self, store: HallOfFameStore, *, clock: Clock, owner: str) -> None:
        self._store = store
        self._clock = clock
        self._owner = owner

    async def configure(self, guild_id: int, channel_id: int, threshold: int, *, actor_id: int) -> None:
        if not 1 <= threshold <= MAX_THRESHOLD:
            raise UserFacingError("The score must be at least 1.", key="fame.refused.threshold")
        await self._store.configure(guild_id, channel_id, threshold, actor_id=actor_id, now=self._clock())

    async def turn_off(self, guild_id: int) -> bool:
        return await self._store.turn_off(guild_id)

    async def settings(self, guild_id: int) -> HallOfFame | None:
        return await self._store.settings(guild_id)

    async def after_vote(self, guild_id: int, clip_id: str, score: int, target: FameTarget) -> bool:
        """Forwards the song if its score reached the threshold and nobody has claimed its forward yet. A song
        that falls back below keeps its post. True when this call posted it."""
        settings = await self._store.settings(guild_id)
        if settings is None or score < settings.threshold:
            return False
        now = self._clock()
        candidate = await self._store.claim(
            clip_id, guild_id, settings.channel_id, self._owner, now=now, until=now + FORWARD_CLAIM
        )
        return candidate is not None and await self._forward(candidate, target)

    async def finish_stale(self, target: FameTarget) -> int:
        """Completes forwards whose claim ran out before they were recorded (their process stopped)."""
        done = 0
        for clip_id, guild_id, channel_id in await self._store.stale_claims(self._clock()):
            now = self._clock()
            candidate = await self._store.claim(
                clip_id, guild_id, channel_id, self._owner, now=now, until=now + FORWARD_CLAIM
            )
            if candidate is not None and await self._forward(candidate, target):
                done += 1
        return done

    async def _forward(self, candidate: FameCandidate, target: FameTarget) -> bool:
        message_id = await target.forward_to_hall_of_fame(candidate)
        posted = await self._store.mark_posted(candidate.clip_id, self._owner, message_id, self._clock())
        if posted:
            log.info(
                "guild=%d clip=%s phase=hall_of_fame message=%d", candidate.guild_id, candidate.clip_id, message_id
            )
        return posted
