"""The database owner: opens SQLite (WAL), applies numbered migrations, one serialised writer, a few readers."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import aiosqlite

log = logging.getLogger(__name__)

Synchronous = Literal["FULL", "NORMAL"]
READERS = 2

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
MINIMUM_SQLITE = (3, 35, 0)  # RETURNING


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def bundled_migrations() -> list[Migration]:
    """The numbered SQL files shipped in bot/storage/migrations, in order."""
    folder = resources.files("bot.storage") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise RuntimeError(f"migration numbers must run 1, 2, 3...: {migration.name} is out of order")
    return found


def to_db_time(moment: datetime) -> str:
    """One fixed ISO-8601 UTC format, so timestamps compare correctly as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_db_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class DatabaseOpenError(RuntimeError):
    """The database file cannot be created or opened (a missing or read-only folder, a file that is not SQLite)."""


class MigrationError(RuntimeError):
    """A migration failed; the database was left at its previous version."""


class Database:
    """Owns the one writer connection and a few read-only ones (WAL readers: they never wait for the writer or
    for each other). Reads go to a reader; writes that span statements go through `transaction()`."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection
        self._readers = 0  # none while migrating: reads then use the writer
        self._idle_readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._write_lock = asyncio.Lock()
        self._group: list[tuple[str, Sequence[Any] | dict[str, Any], asyncio.Future[list[sqlite3.Row]]]] = []
        self._group_tasks: set[asyncio.Task[None]] = set()

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        path: Path,
        *,
        migrations: Sequence[Migration] | None = None,
        synchronous: Synchronous = "FULL",
        readers: int = READERS,
    ) -> AsyncIterator[Database]:
        """Opens (creating folders as needed), migrates, and closes the database on exit.

        `synchronous` FULL makes every commit durable on power loss too; NORMAL may lose the last ones then (never
        on a crash). `readers` read-only connections serve fetch_all/fetch_one next to the one writer.
        """
        if sqlite3.sqlite_version_info < MINIMUM_SQLITE:
            raise RuntimeError(f"SQLite {sqlite3.sqlite_version} is too old; 3.35 or newer is needed")
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        try:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            connection = await aiosqlite.connect(path, isolation_level=None, timeout=5.0)
            await connection.execute("PRAGMA journal_mode = WAL")
        except (OSError, sqlite3.Error) as error:
            raise DatabaseOpenError(f"cannot open the database at {path}: {error}") from error
        opened = [connection]
        try:
            connection.row_factory = aiosqlite.Row
            await connection.execute("PRAGMA foreign_keys = ON")
            await connection.execute(f"PRAGMA synchronous = {synchronous}")
            database = cls(connection)
            await database.migrate(bundled_migrations() if migrations is None else migrations)
            for _ in range(readers):  # opened after migrating: they never see a half-built schema
                reader = await aiosqlite.connect(path, isolation_level=None, timeout=5.0)
                opened.append(reader)
                reader.row_factory = aiosqlite.Row
                await reader.execute("PRAGMA query_only = ON")
                database._add_reader(reader)
            yield database
        finally:
            for each in reversed(opened):
                await each.close()

    def _add_reader(self, reader: aiosqlite.Connection) -> None:
        self._readers += 1
        self._idle_readers.put_nowait(reader)

    async def user_version(self) -> int:
        row = await self.fetch_one("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def migrate(self, migrations: Iterable[Migration]) -> None:
        """Applies each migration newer than `user_version`; every file carries its own transaction."""
        async with self._write_lock:
            current = await self.user_version()
            for migration in migrations:
                if migration.version <= current:
                    continue
                try:
                    await self._connection.executescript(migration.sql)
                except sqlite3.Error as exc:
                    if self._connection.in_transaction:
                        await self._connection.execute("ROLLBACK")
                    raise MigrationError(f"{migration.name} failed and was rolled back: {exc}") from exc
                current = await self.user_version()
                if current != migration.version:
                    raise MigrationError(f"{migration.name} must set PRAGMA user_version = {migration.version}")
                log.info("database migrated to version %d (%s)", current, migration.name)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, one at a time: coroutines sharing the connection never interleave."""
        async with self._write_lock:
            await self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                await self._connection.execute("ROLLBACK")
                raise
            await self._connection.execute("COMMIT")

    async def fetch_all(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """One read on an idle reader: it sees everything committed before it started, never a transaction
        still open on the writer (read inside `transaction()` through its connection instead)."""
        if not self._readers:
            return list(await self._connection.execute_fetchall(sql, parameters))
        reader = await self._idle_readers.get()
        try:
            return list(await reader.execute_fetchall(sql, parameters))
        finally:
            self._idle_readers.put_nowait(reader)

    async def fetch_one(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        rows = await self.fetch_all(sql, parameters)
        return rows[0] if rows else None

    async def write_returning(self, sql: str, parameters: Sequence[Any] | dict[str, Any]) -> list[sqlite3.Row]:
        """One atomic write statement with RETURNING, committed before its rows are returned.

        Statements arriving together share one transaction (group commit): each still runs alone and sees the
        ones before it, but the commit, the costly part, is paid once per group instead of once per statement.
        """
        answer: asyncio.Future[list[sqlite3.Row]] = asyncio.get_running_loop().create_future()
        self._group.append((sql, parameters, answer))
        if len(self._group) == 1:
            task = asyncio.create_task(self._commit_group())
            self._group_tasks.add(task)
            task.add_done_callback(self._group_tasks.discard)
        return await answer

    async def _commit_group(self) -> None:
        async with self._write_lock:
            group, self._group = self._group, []
            results: list[tuple[asyncio.Future[list[sqlite3.Row]], list[sqlite3.Row] | BaseException]] = []
            try:
                await self._connection.execute("BEGIN IMMEDIATE")
                for sql, parameters, answer in group:
                    try:
                        # Read to the end: an unread RETURNING cursor keeps the write lock.
                        results.append((answer, list(await self._connection.execute_fetchall(sql, parameters))))
                    except sqlite3.Error as error:  # that statement alone was rolled back
                        results.append((answer, error))
                await self._connection.execute("COMMIT")
            except BaseException as error:
                if self._connection.in_transaction:
                    await self._connection.execute("ROLLBACK")
                results = [(answer, error) for _, _, answer in group]
                if not isinstance(error, Exception):
                    raise
            finally:
                for answer, result in results:
                    if answer.done():
                        continue
                    if isinstance(result, BaseException):
                        answer.set_exception(result)
                    else:
                        answer.set_result(result)

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        """One write statement in its own implicit transaction; returns the rows changed."""
        async with self._write_lock:
            cursor = await self._connection.execute(sql, parameters)
            changed = cursor.rowcount
            await cursor.close()
            return changed
