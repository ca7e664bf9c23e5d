"""`musicbot migrate-db --to postgresql://…`: copies the bot's SQLite database into an empty PostgreSQL one, in
one PostgreSQL transaction (all of it or nothing), with the same ids, counters, ledger and tallies."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.models import JobStatus
from bot.storage import SqliteDatabase
from bot.storage.database import Transaction, redact_url, to_db_time
from bot.storage.postgres import PostgresDatabase

log = logging.getLogger(__name__)

# In an order that keeps every foreign key satisfied. The database's own bookkeeping (counters, ledger,
# tallies) is copied as it is, with PostgreSQL's triggers off meanwhile, so nothing is counted twice.
COPIED_TABLES = (
    "jobs",
    "clips",
    "votes",
    "vote_tallies",
    "vote_days",
    "vote_hours",
    "quota_ledger",
    "quota_counters",
    "global_counters",
    "guild_limits",
    "blocked_members",
    "moderation_log",
    "blocked_phrases",
    "allowed_channels",
    "departed_guilds",
    "forgotten_requests",
    "contests",
    "contest_entries",
    "contest_results",
    "hall_of_fame",
    "hall_of_fame_posts",
    "bot_state",
)
# Coordination between running processes: meaningless once the bot is stopped, so not copied.
SKIPPED_TABLES = ("handled_interactions", "identify_slots")
TRIGGERED_TABLES = ("jobs", "votes")
IDENTITY_TABLES = ("jobs", "quota_ledger", "moderation_log", "contests")
BATCH = 5_000


class TransferError(RuntimeError):
    """The copy cannot be made (the target is not empty, the bot still runs on the source, an unknown table)."""


@dataclass(frozen=True, slots=True)
class TransferReport:
    rows: dict[str, int]
    schema_version: int

    def describe(self, target: str) -> str:
        counted = ", ".join(f"{table} {count:,}" for table, count in self.rows.items() if count)
        return (
            f"copied into {redact_url(target)} (schema {self.schema_version}): {counted or 'no rows'}.\n"
            f"Now set DATABASE_URL to the PostgreSQL URL and start the bot; keep the SQLite file as a backup."
        )


async def copy_sqlite_to_postgres(source: Path, target: str, *, now: datetime) -> TransferReport:
    if not await asyncio.to_thread(source.exists):
        raise TransferError(f"there is no SQLite database at {source} (check DATABASE_URL)")
    async with SqliteDatabase.open(source) as sqlite, PostgresDatabase.open(target) as postgres:
        version = await sqlite.schema_version()
        if version != await postgres.schema_version():
            raise TransferError("the two databases are at different schema versions; use the same bot version")
        await _check_source(sqlite, now)
        tables = {row["name"] for row in await sqlite.fetch_all("SELECT name FROM sqlite_master WHERE type='table'")}
        unknown = tables - set(COPIED_TABLES) - set(SKIPPED_TABLES)
        if unknown:
            raise TransferError(f"tables this version does not know how to copy: {', '.join(sorted(unknown))}")
        rows: dict[str, int] = {}
        async with postgres.transaction() as transaction:
            await _check_empty(transaction)
            for table in TRIGGERED_TABLES:
                await transaction.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            for table in COPIED_TABLES:
                rows[table] = await _copy_table(sqlite, transaction, table)
            for table in TRIGGERED_TABLES:
                await transaction.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            for table in IDENTITY_TABLES:  # the next id continues after the copied ones
                await transaction.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false) "
                    f"FROM {table}"
                )
            for table, count in rows.items():
                copied = await transaction.fetch_one(f"SELECT count(*) FROM {table}")
                if copied is None or copied[0] != count:
                    raise TransferError(f"{table}: {count} rows read but {copied and copied[0]} written")
        return TransferReport(rows, version)


async def _check_source(sqlite: SqliteDatabase, now: datetime) -> None:
    unfinished = [status.value for status in JobStatus if not status.is_finished]
    marks = ", ".join("?" * len(unfinished))
    live = await sqlite.fetch_one(
        f"SELECT count(*) FROM jobs WHERE status IN ({marks}) AND lease_until > ?", (*unfinished, to_db_time(now))
    )
    if live is not None and live[0]:
        raise TransferError(
            f"{live[0]} job(s) are held by a running bot: stop it (SIGTERM) and run migrate-db again; "
            "unfinished jobs are copied and finished by the bot on PostgreSQL"
        )


async def _check_empty(transaction: Transaction) -> None:
    for table in COPIED_TABLES:
        if await transaction.fetch_one(f"SELECT 1 FROM {table} LIMIT 1"):
            raise TransferError(f"the PostgreSQL database is not empty ({table} has rows); use a new database")


async def _copy_table(sqlite: SqliteDatabase, transaction: Transaction, table: str) -> int:
    columns = [row["name"] for row in await sqlite.fetch_all(f"PRAGMA table_info({table})")]
    listed = ", ".join(columns)
    insert = f"INSERT INTO {table} ({listed}) VALUES ({', '.join('?' * len(columns))})"
    copied = 0
    async with sqlite.writer.execute(f"SELECT {listed} FROM {table}") as cursor:
        while batch := [tuple(row) for row in await cursor.fetchmany(BATCH)]:
            await transaction.execute_many(insert, batch)
            copied += len(batch)
    log.info("copied %s: %d rows", table, copied)
    return copied
