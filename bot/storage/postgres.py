"""PostgreSQL, for several processes or hosts: an asyncpg pool, READ COMMITTED, one transaction per write, and
advisory locks where a check and a write must be exact across processes (see bot/storage/database.py)."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from datetime import UTC, datetime

import asyncpg

from bot.storage.database import (
    POSTGRESQL,
    Database,
    DatabaseOpenError,
    Lock,
    Migration,
    MigrationError,
    Parameters,
    Row,
    StorageUnavailableError,
    Transaction,
    bundled_migrations,
    numbered,
    redact_url,
    to_db_time,
)

log = logging.getLogger(__name__)

# SQLSTATE classes that may pass: connection exception, transaction rollback (serialization, deadlock),
# insufficient resources (too many connections, disk full), operator intervention (shutdown, cancel); and the
# server ending a transaction left idle too long (25P03, see idle_transaction_timeout).
_TRANSIENT_CLASSES = ("08", "40", "53", "57")
_TRANSIENT_STATES = ("25P03",)
# Two processes starting together: the one holding this session lock migrates, the other waits and finds
# nothing left to do.
_MIGRATION_LOCK = (0x6D75_7369, 1)  # "musi", 1
CONNECT_TIMEOUT_SECONDS = 10.0
STATEMENT_TIMEOUT_SECONDS = 60.0


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, (OSError, TimeoutError, asyncpg.exceptions.ConnectionDoesNotExistError)):
        return True
    if isinstance(error, asyncpg.InterfaceError) and "closed" in str(error):
        return True
    # The connection's protocol state is lost (the server ended the session while this process was stopped).
    if isinstance(error, asyncpg.exceptions.InternalClientError):
        return True
    sqlstate = getattr(error, "sqlstate", None)
    if not isinstance(error, asyncpg.PostgresError) or not isinstance(sqlstate, str):
        return False
    return sqlstate[:2] in _TRANSIENT_CLASSES or sqlstate in _TRANSIENT_STATES


@contextmanager
def _transient_as_unavailable() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        if _is_transient(error):
            raise StorageUnavailableError(f"PostgreSQL is unavailable: {type(error).__name__}: {error}") from error
        raise


def _rowcount(status: str) -> int:
    """asyncpg's command tag ("UPDATE 3", "INSERT 0 1", "DELETE 0") -> rows changed."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _lock_arguments(lock: Lock) -> tuple[int, int]:
    """(space, key) as the two int4 of pg_advisory_xact_lock; keys are folded to 32 bits (a collision only makes
    two servers wait for each other now and then, never lets one pass the other's limit)."""
    folded = (lock.key ^ (lock.key >> 32)) & 0xFFFF_FFFF
    return int(lock.space), folded - (1 << 32) if folded >= 1 << 31 else folded


class _PostgresTransaction:
    def __init__(self, connection: asyncpg.pool.PoolConnectionProxy[asyncpg.Record]) -> None:
        self._connection = connection

    async def fetch_all(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        text, values = numbered(sql, parameters)
        with _transient_as_unavailable():
            return list(await self._connection.fetch(text, *values))

    async def fetch_one(self, sql: str, parameters: Parameters = ()) -> Row | None:
        rows = await self.fetch_all(sql, parameters)
        return rows[0] if rows else None

    async def execute(self, sql: str, parameters: Parameters = ()) -> int:
        text, values = numbered(sql, parameters)
        with _transient_as_unavailable():
            return _rowcount(await self._connection.execute(text, *values))

    async def execute_many(self, sql: str, rows: Sequence[Parameters]) -> None:
        if not rows:
            return
        text, _ = numbered(sql, rows[0])
        with _transient_as_unavailable():
            await self._connection.executemany(text, [numbered(sql, row)[1] for row in rows])


class PostgresDatabase(Database):
    dialect = POSTGRESQL

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self.url = url
        self._waiting: weakref.WeakValueDictionary[tuple[int, int], asyncio.Lock] = weakref.WeakValueDictionary()

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        url: str,
        *,
        migrations: Sequence[Migration] | None = None,
        pool_size: int = 10,
        idle_transaction_timeout: float = 10.0,
    ) -> AsyncIterator[PostgresDatabase]:
        """Connects a pool (its URL's password is never logged), migrates, and closes the pool on exit.

        A transaction left idle for `idle_transaction_timeout` seconds is ended by the server: a process
        stopped in the middle of one (SIGSTOP, a frozen VM) then holds no lock that would keep another process
        from taking its jobs over. Keep it below the job lease.
        """
        try:
            pool = await asyncpg.create_pool(
                url.replace("postgresql+asyncpg://", "postgresql://", 1),
                min_size=1,
                max_size=pool_size,
                timeout=CONNECT_TIMEOUT_SECONDS,
                command_timeout=STATEMENT_TIMEOUT_SECONDS,
                # The bot runs a few prepared statements over and over: plan each once per connection, not
                # at every execution (its quota statement takes longer to plan than to run).
                server_settings={
                    "plan_cache_mode": "force_generic_plan",
                    "idle_in_transaction_session_timeout": str(max(1, round(idle_transaction_timeout * 1000))),
                },
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as error:
            raise DatabaseOpenError(f"cannot open the database at {redact_url(url)}: {error}") from error
        try:
            database = cls(pool, url)
            await database.migrate(bundled_migrations("postgresql") if migrations is None else migrations)
            yield database
        finally:
            await pool.close()

    async def fetch_all(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        text, values = numbered(sql, parameters)
        with _transient_as_unavailable():
            return list(await self._pool.fetch(text, *values))

    async def execute(self, sql: str, parameters: Parameters = ()) -> int:
        text, values = numbered(sql, parameters)
        with _transient_as_unavailable():
            return _rowcount(await self._pool.execute(text, *values))

    async def write_returning(self, sql: str, parameters: Parameters, *, locks: Sequence[Lock] = ()) -> list[Row]:
        if not locks:
            return await self.fetch_all(sql, parameters)
        async with self.transaction(locks=locks) as transaction:
            return await transaction.fetch_all(sql, parameters)

    @asynccontextmanager
    async def transaction(self, *, locks: Sequence[Lock] = ()) -> AsyncIterator[Transaction]:
        """One connection, BEGIN (READ COMMITTED) ... COMMIT. The locks come first, each its own statement, in
        one order (no deadlock between two such transactions): every later statement takes its snapshot after
        the previous holder committed, so it reads what that one wrote."""
        keys = sorted({_lock_arguments(lock) for lock in locks})
        async with AsyncExitStack() as held:
            # Within this process, one transaction per lock waits for it in PostgreSQL; the others wait here,
            # holding no connection: a burst on one server neither fills the pool nor makes a convoy.
            for each in keys:
                await held.enter_async_context(self._local_lock(each))
            with _transient_as_unavailable():
                async with self._pool.acquire() as connection, connection.transaction():
                    for space, key in keys:
                        await connection.execute("SELECT pg_advisory_xact_lock($1, $2)", space, key)
                    yield _PostgresTransaction(connection)

    def _local_lock(self, key: tuple[int, int]) -> asyncio.Lock:
        lock = self._waiting.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._waiting[key] = lock
        return lock

    async def schema_version(self) -> int:
        with _transient_as_unavailable():
            exists = await self._pool.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
            if not exists:
                return 0
            return int(await self._pool.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))

    async def migrate(self, migrations: Sequence[Migration]) -> None:
        """Applies each migration newer than the last one recorded, one transaction per file, holding a session
        lock so that processes starting together migrate once. A fresh database starts at the series' first
        file (the baseline); its number says which SQLite version it equals."""
        async with self._pool.acquire() as connection:
            await connection.execute("SELECT pg_advisory_lock($1, $2)", *_MIGRATION_LOCK)
            try:
                await connection.execute(
                    """CREATE TABLE IF NOT EXISTS schema_migrations (
                           version    INTEGER PRIMARY KEY,
                           name       TEXT    NOT NULL,
                           applied_at TEXT    NOT NULL
                       )"""
                )
                current = int(await connection.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))
                for migration in migrations:
                    if migration.version <= current:
                        continue
                    try:
                        async with connection.transaction():
                            await connection.execute(migration.sql)
                            await connection.execute(
                                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                                migration.version,
                                migration.name,
                                to_db_time(datetime.now(UTC)),
                            )
                    except asyncpg.PostgresError as error:
                        raise MigrationError(f"{migration.name} failed and was rolled back: {error}") from error
                    current = migration.version
                    log.info("database migrated to version %d (%s)", current, migration.name)
            finally:
                await asyncio.shield(connection.execute("SELECT pg_advisory_unlock($1, $2)", *_MIGRATION_LOCK))
