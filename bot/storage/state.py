"""Small key-value state the bot keeps between runs (for example the hash of the last synced commands)."""

from __future__ import annotations

from bot.storage.database import Database


class BotStateStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, key: str) -> str | None:
        row = await self._database.fetch_one("SELECT value FROM bot_state WHERE key = ?", (key,))
        return str(row["value"]) if row else None

    async def set(self, key: str, value: str) -> None:
        await self._database.execute(
            """INSERT INTO bot_state (key, value) VALUES (?, ?)
               ON CONFLICT (key) DO UPDATE SET value = excluded.value""",
            (key, value),
        )

    async def set_if_absent(self, key: str, value: str) -> None:
        """Keeps the value already there: the first writer wins, however many race."""
        await self._database.execute(
            "INSERT INTO bot_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, value)
        )
