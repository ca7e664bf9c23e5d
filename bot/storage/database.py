"""What every store needs from a database, whichever it is: reads, one-statement writes, transactions with the
locks that keep them exact across processes, and numbered migrations. Two thin adapters implement it: SQLite
(`bot/storage/sqlite.py`, the embedded default) and PostgreSQL (`bot/storage/postgres.py`, for several
processes). The stores write their SQL once, in the subset both accept, with `?` or `:name` parameters."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

Parameters = Sequence[Any] | Mapping[str, Any]
DialectName = Literal["sqlite", "postgresql"]

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class Row(Protocol):
    """A result row, by column name or position (sqlite3.Row and asyncpg.Record both are)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...

    def keys(self) -> Any: ...


class LockSpace(IntEnum):
    """What a transaction's lock is about. On PostgreSQL each is an advisory lock (space, key) held to the end
    of the transaction; SQLite's one writer already serialises every write, so it needs none."""

    GUILD_QUOTA = 1  # a server's limits, counters and running jobs
    BOT_BUDGET = 2  # the bot-wide budget (only when the operator set one)
    VOTE = 3  # one clip's votes
    IDENTIFY = 4  # one Discord IDENTIFY bucket
    GUILD_RULES = 5  # a server's blocked phrases and allowed channels
    CONTEST = 6  # one contest: its entries and its ending


@dataclass(frozen=True, slots=True)
class Lock:
    space: LockSpace
    key: int


@dataclass(frozen=True, slots=True)
class Dialect:
    """The few places where the two engines need different SQL; everything else is one text."""

    name: DialectName
    # Row locks for "claim what nobody else is claiming" (nothing on SQLite: its writer is alone).
    skip_locked: str
    for_update: str

    def least(self, *values: str) -> str:
        return f"{'min' if self.name == 'sqlite' else 'least'}({', '.join(values)})"

    def greatest(self, *values: str) -> str:
        return f"{'max' if self.name == 'sqlite' else 'greatest'}({', '.join(values)})"

    def indexed_by(self, index: str) -> str:
        """SQLite's planner hint; PostgreSQL chooses by itself."""
        return f"INDEXED BY {index}" if self.name == "sqlite" else ""

    def plus_seconds(self, stamp: str, seconds: str) -> str:
        """A stored timestamp (see to_db_time) moved by whole seconds, in the same text format and with the same
        microseconds, so it still compares exactly as text."""
        if self.name == "sqlite":
            return (
                f"strftime('%Y-%m-%dT%H:%M:%S', substr({stamp}, 1, 19), '+' || {seconds} || ' seconds')"
                f" || substr({stamp}, 20)"
            )
        return (
            f"to_char(CAST(substr({stamp}, 1, 19) AS TIMESTAMP) + make_interval(secs => {seconds}),"
            f" 'YYYY-MM-DD\"T\"HH24:MI:SS') || substr({stamp}, 20)"
        )


SQLITE = Dialect("sqlite", skip_locked="", for_update="")
POSTGRESQL = Dialect("postgresql", skip_locked=" FOR UPDATE SKIP LOCKED", for_update=" FOR UPDATE")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def bundled_migrations(dialect: DialectName = "sqlite") -> list[Migration]:
    """The numbered SQL files shipped in bot/storage/migrations/<dialect>, in order. Both series use the same
    numbers for the same schema; PostgreSQL's starts at a baseline of the schema it joined at."""
    folder = resources.files("bot.storage") / "migrations" / dialect
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    for expected, migration in enumerate(found, start=found[0].version if found else 1):
        if migration.version != expected:
            raise RuntimeError(f"migration numbers must follow each other: {migration.name} is out of order")
    return found


def to_db_time(moment: datetime) -> str:
    """One fixed ISO-8601 UTC format, so timestamps compare correctly as text (on both engines)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_db_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


# `?` and `:name` outside quotes and comments (and not PostgreSQL's `::` casts).
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|::|:([A-Za-z_]\w*)|(\?)")


@lru_cache(maxsize=512)
def _numbered(sql: str) -> tuple[str, tuple[str, ...] | int]:
    """The SQL with `$1, $2...` for asyncpg, and the parameter names in order (or how many `?` there were)."""
    names: list[str] = []
    positional = 0

    def number(match: re.Match[str]) -> str:
        nonlocal positional
        name, mark = match.group(1), match.group(2)
        if mark:
            positional += 1
            return f"${positional}"
        if name is None:
            return match.group(0)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    text = _PLACEHOLDER.sub(number, sql)
    if names and positional:
        raise ValueError("one statement uses either ? or :name parameters, not both")
    return text, tuple(names) if names else positional


def numbered(sql: str, parameters: Parameters) -> tuple[str, list[Any]]:
    """Compiles `?` / `:name` parameters to PostgreSQL's `$n`, with the values in that order."""
    text, shape = _numbered(sql)
    if isinstance(shape, tuple):
        if not isinstance(parameters, Mapping):
            raise TypeError("this statement takes :name parameters (a mapping)")
        return text, [parameters[name] for name in shape]
    if isinstance(parameters, Mapping):
        if shape:
            raise TypeError("this statement takes ? parameters (a sequence)")
        return text, []
    if len(parameters) != shape:
        raise ValueError(f"the statement has {shape} ? parameters, {len(parameters)} values were given")
    return text, list(parameters)


def redact_url(url: str) -> str:
    """A database URL safe to print: the password (if any) replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    hidden = "*" * 3
    user = f"{parts.username or ''}:{hidden}@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


class DatabaseOpenError(RuntimeError):
    """The database cannot be created, reached or opened (a read-only folder, a file that is not SQLite, a
    PostgreSQL server that refuses the connection)."""


class MigrationError(RuntimeError):
    """A migration failed; the database was left at its previous version."""


class StorageUnavailableError(RuntimeError):
    """The database could not be reached or gave up on a statement in a way that may pass (a dropped connection,
    a server restarting, too many clients): the work is kept and tried again, never settled as failed."""


class Transaction(Protocol):
    """Statements inside one transaction: each sees the ones before it; all commit together or none does."""

    async def fetch_all(self, sql: str, parameters: Parameters = ()) -> list[Row]: ...

    async def fetch_one(self, sql: str, parameters: Parameters = ()) -> Row | None: ...

    async def execute(self, sql: str, parameters: Parameters = ()) -> int: ...

    async def execute_many(self, sql: str, rows: Sequence[Parameters]) -> None:
        """One statement for each parameter set (bulk loads: tests, the benchmark, migrate-db)."""


class Database(ABC):
    """The stores' one door to the data. Reads see everything committed before they started; a write is either
    one statement (`execute`, `write_returning`) or a `transaction()`; `locks` make a transaction exact against
    the same transaction in another process (taken first, in a fixed order, held to the commit)."""

    dialect: Dialect
    url: str

    @abstractmethod
    async def fetch_all(self, sql: str, parameters: Parameters = ()) -> list[Row]: ...

    async def fetch_one(self, sql: str, parameters: Parameters = ()) -> Row | None:
        rows = await self.fetch_all(sql, parameters)
        return rows[0] if rows else None

    @abstractmethod
    async def execute(self, sql: str, parameters: Parameters = ()) -> int:
        """One write statement, committed; returns how many rows it changed."""

    @abstractmethod
    async def write_returning(self, sql: str, parameters: Parameters, *, locks: Sequence[Lock] = ()) -> list[Row]:
        """One write statement with RETURNING, committed before its rows are returned."""

    @abstractmethod
    def transaction(self, *, locks: Sequence[Lock] = ()) -> AbstractAsyncContextManager[Transaction]: ...

    @abstractmethod
    async def schema_version(self) -> int:
        """The number of the last migration applied (0 for an empty database)."""

    @abstractmethod
    async def migrate(self, migrations: Sequence[Migration]) -> None: ...


def sqlite_path(url: str) -> Path:
    """sqlite:///relative/path or sqlite:////absolute/path -> the file's path."""
    return Path(url.removeprefix("sqlite:///"))


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


@asynccontextmanager
async def open_database(
    url: str, *, pool_size: int = 10, idle_transaction_timeout: float = 10.0
) -> AsyncIterator[Database]:
    """Opens and migrates the database DATABASE_URL names, and closes it on exit."""
    if is_postgres_url(url):
        from bot.storage.postgres import PostgresDatabase  # asyncpg is imported only when it is used

        async with PostgresDatabase.open(
            url, pool_size=pool_size, idle_transaction_timeout=idle_transaction_timeout
        ) as postgres:
            yield postgres
    else:
        from bot.storage.sqlite import SqliteDatabase

        async with SqliteDatabase.open(sqlite_path(url)) as sqlite:
            yield sqlite
