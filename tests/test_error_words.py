"""What a member reads when a command meets a failure that is nobody's fault in particular."""

from __future__ import annotations

import sqlite3

import pytest
from discord import app_commands

from bot.storage.database import StorageUnavailableError
from bot.tree import words_for_error


async def _noop(interaction: object) -> None:
    return None


COMMAND = app_commands.Command(name="music", description="d", callback=_noop)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [StorageUnavailableError("PostgreSQL is unavailable: ConnectionResetError"), sqlite3.OperationalError("locked")],
)
def test_a_database_that_does_not_answer_is_named_and_nothing_counts(error: Exception) -> None:
    text = words_for_error(error)
    assert words_for_error(app_commands.CommandInvokeError(COMMAND, error)) == text
    assert text.startswith("The bot's database is not answering right now")
    assert "does not count against any limit" in text
    assert "error code" not in text
    assert "PostgreSQL" not in text  # what failed inside stays in the log
