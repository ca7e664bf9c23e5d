"""`LOG_FORMAT=json`: one JSON object per line, the message's job=… guild=… phase=… fields as keys."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from bot.log_format import JsonFormatter
from tests.bot_process import BotProcess
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import FakeMusicApi
from tests.harness import World


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            info = sys.exc_info()
    return logging.LogRecord("bot.runtime", logging.INFO, __file__, 1, message, args, info)


def test_the_fields_of_a_message_become_keys_numbers_as_numbers() -> None:
    line = JsonFormatter().format(record("job=%d guild=%d phase=posted seconds=%.1f url=%s", 12, 34, 1.5, "a=b"))
    entry = json.loads(line)
    assert entry["message"] == "job=12 guild=34 phase=posted seconds=1.5 url=a=b"
    assert (entry["job"], entry["guild"], entry["phase"], entry["seconds"]) == (12, 34, "posted", 1.5)
    assert (entry["level"], entry["logger"]) == ("INFO", "bot.runtime")
    assert entry["time"].endswith("+00:00")
    assert "a" not in entry  # only pairs that start a word


def test_a_traceback_stays_inside_its_one_line() -> None:
    line = JsonFormatter().format(record("unhandled error %s", "ab12cd", exc=True))
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]


async def test_the_bot_logs_one_json_object_per_line(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    world = World.create(discord_fake)
    bot = BotProcess(discord_fake, api, tmp_path / "db.sqlite3", tmp_path / "run", log_format="json")
    await bot.start_and_wait_ready()
    try:
        interaction = await discord_fake.invoke_command(
            "music", {"prompt": "logged as json"}, guild_id=world.guild_id, channel_id=world.channel_id,
            user_id=world.member_id,
        )  # fmt: skip
        await discord_fake.wait_for(lambda: len(interaction.followups) == 2, timeout=20)
        await discord_fake.wait_for(lambda: "phase=delivered" in bot.logs(), timeout=10)
    finally:
        assert bot.process is not None
        await bot.terminate()
    lines = [line for line in bot.logs().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    delivered = [entry for entry in entries if entry.get("phase") == "delivered"]
    assert delivered
    assert isinstance(delivered[0]["job"], int)
    assert delivered[0]["guild"] == world.guild_id
    assert discord_fake.bot_token not in bot.logs()
