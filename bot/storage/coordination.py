"""What processes sharing one database agree on: which of them handles an interaction, and when each may
IDENTIFY to Discord's gateway."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.clock import Clock
from bot.storage.database import Database, Lock, LockSpace, from_db_time, to_db_time

# Discord allows one IDENTIFY per bucket (shard_id % max_concurrency) every 5 seconds, for the whole token. The
# slots are a second further apart: the clock is read before the commit and the IDENTIFY frame travels after
# the wait, and neither is instant on a busy host.
IDENTIFY_SPACING = timedelta(seconds=6)
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

    async def book_identify(self, bucket: int, clock: Clock) -> datetime:
        """Books this process the bucket's next IDENTIFY slot and returns when it starts (now, when the bucket
        has been quiet); the clock is read once the bucket is locked. Each booking moves the slot on."""
        async with self._database.transaction(locks=[Lock(LockSpace.IDENTIFY, bucket)]) as transaction:
            row = await transaction.fetch_one(
                f"SELECT next_at FROM identify_slots WHERE bucket = ?{self._database.dialect.for_update}", (bucket,)
            )
            now = clock()
            start = max(now, from_db_time(row["next_at"])) if row else now
            await transaction.execute(
                """INSERT INTO identify_slots (bucket, next_at) VALUES (?, ?)
                   ON CONFLICT (bucket) DO UPDATE SET next_at = excluded.next_at""",
                (bucket, to_db_time(start + IDENTIFY_SPACING)),
            )
        return start
