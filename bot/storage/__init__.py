"""Storage: the only place with SQL. One aiosqlite connection, numbered migrations, and the stores."""

from bot.storage.database import Database
from bot.storage.jobs import JobStore
from bot.storage.quota import QuotaStore
from bot.storage.state import BotStateStore
from bot.storage.votes import VoteStore

__all__ = ["BotStateStore", "Database", "JobStore", "QuotaStore", "VoteStore"]
