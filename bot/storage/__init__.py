"""Storage: the only place with SQL. One aiosqlite connection, numbered migrations, and the stores."""

import sqlite3

from bot.storage.database import Database
from bot.storage.jobs import JobStore
from bot.storage.quota import QuotaStore
from bot.storage.state import BotStateStore
from bot.storage.votes import VoteStore

__all__ = ["BotStateStore", "Database", "JobStore", "QuotaStore", "VoteStore", "is_transient_storage_error"]


def is_transient_storage_error(error: BaseException) -> bool:
    """The database failed in a way that may pass (locked by another writer, disk full, I/O): work that hit it
    is kept to be tried again later instead of being settled as failed."""
    return isinstance(error, sqlite3.OperationalError)
