"""Storage: the only place with SQL. One interface (bot/storage/database.py) over SQLite or PostgreSQL, numbered
migrations per engine, and the stores."""

import sqlite3

from bot.storage.database import Database, StorageUnavailableError, open_database
from bot.storage.jobs import JobStore
from bot.storage.quota import QuotaStore
from bot.storage.sqlite import SqliteDatabase
from bot.storage.state import BotStateStore
from bot.storage.votes import VoteStore

__all__ = [
    "BotStateStore",
    "Database",
    "JobStore",
    "QuotaStore",
    "SqliteDatabase",
    "VoteStore",
    "is_transient_storage_error",
    "open_database",
]


def is_transient_storage_error(error: BaseException) -> bool:
    """The database failed in a way that may pass (locked by another writer, disk full, I/O, a PostgreSQL
    connection lost): work that hit it is kept to be tried again later instead of being settled as failed."""
    return isinstance(error, (sqlite3.OperationalError, StorageUnavailableError))
