"""What processes sharing one database agree on: which of them handles an interaction, and when each may
IDENTIFY to Discord's gateway."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.storage.database import Database, Lock, LockSpace, from_db_time, to_db_time

# Discord allows one IDENTIFY per bucket (shard_id % max_concurrency) every 5 seconds, for the whole token.
IDENTIFY_SPACING = timedelta(seconds=5)
# Discord answers an interaction within 15 minutes at most; a day of claims is plenty to recognise a repeat.
KEEP_CLAIMS = timedelta(days=1)
PRUNE_EVERY = 500


class CoordinationStore:
    def __init__(self, database: Database, *, owner: str) -> None:
        self._database = database
        self._owner = owner
        self._claims = 0

    async def claim_interaction(self, interaction_id: int, now: datetime) -> bool:
        """True for the one process (and the one call) that handles this interaction; False for every other."""
        self._claims += 1
        if self._claims % PRUNE_EVERY == 0:
            await self._database.execute(
                "DELETE FROM handled_interactions WHERE handled_at < ?", (to_db_time(now - KEEP_CLAIMS),)
            )
        changed = await self._database.execute(
            """INSERT INTO handled_interactions (id, owner, handled_at) VALUES (?, ?, ?)
               ON CONFLICT (id) DO NOTHING""",
            (interaction_id, self._owner, to_db_time(now)),
        )
        return changed == 1

    async def book_identify(self, bucket: int, now: datetime) -> timedelta:
        """Books this process the bucket's next IDENTIFY slot; returns how long to wait before identifying
        (zero when the bucket has been quiet for 5 seconds). Each booking moves the slot 5 seconds on."""
        async with self._database.transaction(locks=[Lock(LockSpace.IDENTIFY, bucket)]) as transaction:
            row = await transaction.fetch_one(
                f"SELECT next_at FROM identify_slots WHERE bucket = ?{self._database.dialect.for_update}", (bucket,)
            )
            start = max(now, from_db_time(row["next_at"])) if row else now
            await transaction.execute(
                """INSERT INTO identify_slots (bucket, next_at) VALUES (?, ?)
                   ON CONFLICT (bucket) DO UPDATE SET next_at = excluded.next_at""",
                (bucket, to_db_time(start + IDENTIFY_SPACING)),
            )
        return start - now
