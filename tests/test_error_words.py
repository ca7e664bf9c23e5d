"""What a member reads when a command meets a failure that is nobody's fault in particular."""

from __future__ import annotations

import sqlite3

import pytest
from discord import app_commands

from bot.backends import adapters
from bot.errors import InvalidRequestError, UserFacingError
from bot.models import GenerationMode, GenerationRequest
from bot.runtime.requests import validate_request
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


def test_a_core_refusal_with_a_key_is_worded_in_the_members_language() -> None:
    """The core words its refusals in English (for logs) and names a catalogue key; the tree translates it."""
    capabilities = adapters()["sandbox"].capabilities
    with pytest.raises(InvalidRequestError) as caught:
        validate_request(GenerationRequest(GenerationMode.DESCRIPTION, "   ", False, None), capabilities)
    assert caught.value.message == "The description is empty. Describe the song you want."
    assert words_for_error(caught.value) == caught.value.message
    assert words_for_error(caught.value, "fr") == "La description est vide. Décrivez la chanson que vous voulez."
    assert words_for_error(caught.value, "ko") == caught.value.message  # no catalogue: English
    unknown = UserFacingError("Plain English.", key="no.such.key")
    assert words_for_error(unknown, "fr") == "Plain English."
