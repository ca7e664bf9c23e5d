"""SQLite, the embedded default: one file (WAL), one serialised writer with group commit, a few readers."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import aiosqlite

from bot.storage.database import (
    SQLITE,
    Database,
    DatabaseOpenError,
    Lock,
    Migration,
    MigrationError,
    Parameters,
    Row,
    Transaction,
    bundled_migrations,
)

log = logging.getLogger(__name__)

Synchronous = Literal["FULL", "NORMAL"]
READERS = 2
MINIMUM_SQLITE = (3, 35, 0)  # RETURNING


class _SqliteTransaction:
    """Statements on the writer between BEGIN IMMEDIATE and COMMIT."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def fetch_all(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        return list(await self._connection.execute_fetchall(sql, parameters))

    async def fetch_one(self, sql: str, parameters: Parameters = ()) -> Row | None:
        rows = await self.fetch_all(sql, parameters)
        return rows[0] if rows else None

    async def execute(self, sql: str, parameters: Parameters = ()) -> int:
        cursor = await self._connection.execute(sql, parameters)
        changed = cursor.rowcount
        await cursor.close()
        return changed

    async def execute_many(self, sql: str, rows: Sequence[Parameters]) -> None:
        await self._connection.executemany(sql, rows)


class SqliteDatabase(Database):
    """Owns the one writer connection and a few read-only ones (WAL readers: they never wait for the writer or
    for each other). Reads go to a reader; writes that span statements go through `transaction()`. The writer
    is alone, so `BEGIN IMMEDIATE` makes every transaction exact and locks are not needed."""

    dialect = SQLITE

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self.url = f"sqlite:///{path}"
        self._connection = connection
        self._readers = 0  # none while migrating: reads then use the writer
        self._idle_readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._write_lock = asyncio.Lock()
        self._group: list[tuple[str, Parameters, asyncio.Future[list[Row]]]] = []
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
    ) -> AsyncIterator[SqliteDatabase]:
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
            database = cls(connection, path)
            await database.migrate(bundled_migrations("sqlite") if migrations is None else migrations)
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

    async def schema_version(self) -> int:
        row = await self.fetch_one("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def migrate(self, migrations: Sequence[Migration]) -> None:
        """Applies each migration newer than `user_version`; every file carries its own transaction."""
        async with self._write_lock:
            current = await self.schema_version()
            for migration in migrations:
                if migration.version <= current:
                    continue
                try:
                    await self._connection.executescript(migration.sql)
                except sqlite3.Error as exc:
                    if self._connection.in_transaction:
                        await self._connection.execute("ROLLBACK")
                    raise MigrationError(f"{migration.name} failed and was rolled back: {exc}") from exc
                current = await self.schema_version()
                if current != migration.version:
                    raise MigrationError(f"{migration.name} must set PRAGMA user_version = {migration.version}")
                log.info("database migrated to version %d (%s)", current, migration.name)

    @asynccontextmanager
    async def transaction(self, *, locks: Sequence[Lock] = ()) -> AsyncIterator[Transaction]:
        """BEGIN IMMEDIATE ... COMMIT, one at a time: coroutines sharing the connection never interleave."""
        async with self._write_lock:
            await self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTransaction(self._connection)
            except BaseException:
                await self._connection.execute("ROLLBACK")
                raise
            await self._connection.execute("COMMIT")

    @property
    def writer(self) -> aiosqlite.Connection:
        """The writer connection itself, for tests and tools that need SQLite's own API."""
        return self._connection

    async def fetch_all(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        """One read on an idle reader: it sees everything committed before it started, never a transaction
        still open on the writer (read inside `transaction()` through it instead)."""
        if not self._readers:
            return list(await self._connection.execute_fetchall(sql, parameters))
        reader = await self._idle_readers.get()
        try:
            return list(await reader.execute_fetchall(sql, parameters))
        finally:
            self._idle_readers.put_nowait(reader)

    async def write_returning(self, sql: str, parameters: Parameters, *, locks: Sequence[Lock] = ()) -> list[Row]:
        """One atomic write statement with RETURNING, committed before its rows are returned.

        Statements arriving together share one transaction (group commit): each still runs alone and sees the
        ones before it, but the commit, the costly part, is paid once per group instead of once per statement.
        """
        answer: asyncio.Future[list[Row]] = asyncio.get_running_loop().create_future()
        self._group.append((sql, parameters, answer))
        if len(self._group) == 1:
            task = asyncio.create_task(self._commit_group())
            self._group_tasks.add(task)
            task.add_done_callback(self._group_tasks.discard)
        return await answer

    async def _commit_group(self) -> None:
        async with self._write_lock:
            group, self._group = self._group, []
            results: list[tuple[asyncio.Future[list[Row]], list[Row] | BaseException]] = []
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

    async def execute(self, sql: str, parameters: Parameters = ()) -> int:
        """One write statement in its own implicit transaction; returns the rows changed."""
        async with self._write_lock:
            cursor = await self._connection.execute(sql, parameters)
            changed = cursor.rowcount
            await cursor.close()
            return changed
