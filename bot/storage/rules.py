"""Rules SQL: the phrases a server refuses and the channels where it allows /music, each change audited."""

from __future__ import annotations

from datetime import datetime

from bot.errors import RuleLimitError
from bot.models import BlockedPhrase
from bot.storage.database import Database, Lock, LockSpace, from_db_time, to_db_time
from bot.storage.quota import log_moderation


class RuleStore:
    """Every read goes to the database (no cache), so a change made through any process applies at once."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def phrases(self, guild_id: int) -> list[BlockedPhrase]:
        rows = await self._database.fetch_all(
            "SELECT phrase, words, added_by, added_at FROM blocked_phrases WHERE guild_id = ? ORDER BY added_at, words",
            (guild_id,),
        )
        return [
            BlockedPhrase(row["phrase"], row["words"], row["added_by"], from_db_time(row["added_at"])) for row in rows
        ]

    async def add_phrase(
        self, guild_id: int, phrase: str, words: str, *, actor_id: int, now: datetime, limit: int
    ) -> bool:
        """False when the server already blocks these words; RuleLimitError when it holds `limit` phrases."""
        async with self._database.transaction(locks=[Lock(LockSpace.GUILD_RULES, guild_id)]) as connection:
            if await connection.fetch_one(
                "SELECT 1 FROM blocked_phrases WHERE guild_id = ? AND words = ?", (guild_id, words)
            ):
                return False
            held = await connection.fetch_one(
                "SELECT count(*) AS n FROM blocked_phrases WHERE guild_id = ?", (guild_id,)
            )
            if held is not None and held["n"] >= limit:
                raise RuleLimitError(limit)
            await connection.execute(
                "INSERT INTO blocked_phrases (guild_id, words, phrase, added_by, added_at) VALUES (?, ?, ?, ?, ?)",
                (guild_id, words, phrase, actor_id, to_db_time(now)),
            )
            await log_moderation(connection, guild_id, actor_id, "blocklist_add", words, None, phrase, now)
            return True

    async def remove_phrase(self, guild_id: int, words: str, *, actor_id: int, now: datetime) -> str | None:
        """The phrase as it was written, or None when the server did not block these words."""
        async with self._database.transaction(locks=[Lock(LockSpace.GUILD_RULES, guild_id)]) as connection:
            row = await connection.fetch_one(
                "SELECT phrase FROM blocked_phrases WHERE guild_id = ? AND words = ?", (guild_id, words)
            )
            if row is None:
                return None
            await connection.execute("DELETE FROM blocked_phrases WHERE guild_id = ? AND words = ?", (guild_id, words))
            await log_moderation(connection, guild_id, actor_id, "blocklist_remove", words, row["phrase"], None, now)
            return str(row["phrase"])

    async def channels(self, guild_id: int) -> list[int]:
        rows = await self._database.fetch_all(
            "SELECT channel_id FROM allowed_channels WHERE guild_id = ? ORDER BY added_at, channel_id", (guild_id,)
        )
        return [row["channel_id"] for row in rows]

    async def add_channel(self, guild_id: int, channel_id: int, *, actor_id: int, now: datetime, limit: int) -> bool:
        """False when the channel is listed already; RuleLimitError when the server lists `limit` channels."""
        async with self._database.transaction(locks=[Lock(LockSpace.GUILD_RULES, guild_id)]) as connection:
            if await connection.fetch_one(
                "SELECT 1 FROM allowed_channels WHERE guild_id = ? AND channel_id = ?", (guild_id, channel_id)
            ):
                return False
            held = await connection.fetch_one(
                "SELECT count(*) AS n FROM allowed_channels WHERE guild_id = ?", (guild_id,)
            )
            if held is not None and held["n"] >= limit:
                raise RuleLimitError(limit)
            await connection.execute(
                "INSERT INTO allowed_channels (guild_id, channel_id, added_by, added_at) VALUES (?, ?, ?, ?)",
                (guild_id, channel_id, actor_id, to_db_time(now)),
            )
            await log_moderation(connection, guild_id, actor_id, "channel_add", str(channel_id), None, None, now)
            return True

    async def remove_channel(self, guild_id: int, channel_id: int, *, actor_id: int | None, now: datetime) -> bool:
        """False when the channel was not listed. `actor_id` None: the channel was deleted (logged as by 0)."""
        async with self._database.transaction(locks=[Lock(LockSpace.GUILD_RULES, guild_id)]) as connection:
            removed = (
                await connection.execute(
                    "DELETE FROM allowed_channels WHERE guild_id = ? AND channel_id = ?", (guild_id, channel_id)
                )
                == 1
            )
            if removed:
                actor = actor_id if actor_id is not None else 0
                await log_moderation(connection, guild_id, actor, "channel_remove", str(channel_id), None, None, now)
            return removed
