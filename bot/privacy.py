"""Members' data is theirs: a member forgetting themselves, a moderator deleting one song, and the servers the bot
left (their data is erased by the runtime's retention loop, bot/runtime/retention.py)."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import Clock, start_of_utc_day
from bot.storage.privacy import ForgetReport, PrivacyStore, SongRecord

__all__ = ["ForgetReport", "PrivacyService", "SongRecord"]


class PrivacyService:
    """`cooldown_horizon`: the longest a cooldown can last; a forgotten member's last request time is kept that
    long, so forgetting never shortens one (see PrivacyStore.forget_member)."""

    def __init__(self, store: PrivacyStore, *, clock: Clock, cooldown_horizon: timedelta) -> None:
        self._store = store
        self._clock = clock
        self.cooldown_horizon = cooldown_horizon

    async def running_requests(self, member_id: int) -> int:
        """How many of the member's requests are unfinished (forgetting waits until they end)."""
        return await self._store.running_requests(member_id)

    async def forget(self, member_id: int) -> ForgetReport:
        """Deletes the member's votes, prompts, lyrics and history in every server, keeping what their limits
        need; refused (`running` > 0) while a request of theirs is unfinished."""
        now = self._clock()
        return await self._store.forget_member(
            member_id, now=now, today=start_of_utc_day(now), cooldown_since=now - self.cooldown_horizon
        )

    async def song(self, guild_id: int, message_id: int) -> SongRecord | None:
        """The bot's song posted as this message in this server, or None."""
        return await self._store.song(guild_id, message_id)

    async def delete_song(self, song: SongRecord, *, actor_id: int) -> int | None:
        """Deletes the song's record and votes (its message is the Discord layer's to delete); None when it was
        already gone."""
        return await self._store.delete_song(song.clip_id, actor_id=actor_id, now=self._clock())

    async def guild_left(self, guild_id: int) -> None:
        await self._store.guild_left(guild_id, self._clock())

    async def guild_joined(self, guild_id: int) -> None:
        await self._store.guild_joined(guild_id)
