"""Settings: defaults, validation, and the one-line start-up error that never echoes a secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.__main__ import describe_settings_error
from bot.settings import Settings


def make(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_defaults_follow_the_design() -> None:
    settings = make(discord_token="t", aiml_api_key="k")
    assert settings.music_backend == "aimlapi-suno"
    assert settings.aiml_api_base_url == "https://api.aimlapi.com"
    assert settings.wait_audio is True
    assert settings.database_path == Path("data/musicbot.sqlite3")
    assert settings.default_daily_limit == 20
    assert settings.wait_audio_timeout_seconds > 100  # above the server's own 100 s wait


def test_absolute_database_url() -> None:
    settings = make(discord_token="t", aiml_api_key="k", database_url="sqlite:////var/lib/bot/db.sqlite3")
    assert settings.database_path == Path("/var/lib/bot/db.sqlite3")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"aiml_api_key": "k"}, "DISCORD_TOKEN is not set"),
        ({"discord_token": "t"}, "AIML_API_KEY is required"),
        ({"discord_token": "t", "aiml_api_key": "k", "database_url": "postgres://x"}, "DATABASE_URL is invalid"),
        ({"discord_token": "t", "aiml_api_key": "k", "poll_interval_seconds": 0}, "POLL_INTERVAL_SECONDS is invalid"),
        ({"discord_token": "t", "aiml_api_key": "k", "music_backend": "nope"}, "MUSIC_BACKEND is invalid"),
        ({"discord_token": "t", "aiml_api_key": "k", "unknown_knob": 1}, "UNKNOWN_KNOB is not a setting"),
    ],
)
def test_bad_settings_name_the_variable(values: dict[str, object], expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make(**values)
    assert expected in describe_settings_error(caught.value)


def test_missing_token_prints_one_line_and_exits_non_zero(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in {"DISCORD_TOKEN", "AIML_API_KEY"}}
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["musicbot: configuration error: DISCORD_TOKEN is not set (put it in the environment or in .env)"]


def test_invalid_secret_is_never_echoed(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DISCORD_TOKEN=super-secret-token\nAIML_API_KEY=\nLOG_LEVEL=LOUD\n")
    env = {key: value for key, value in os.environ.items() if key not in {"DISCORD_TOKEN", "AIML_API_KEY"}}
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "LOG_LEVEL is invalid" in result.stderr
    assert "super-secret-token" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


def test_malformed_json_setting_is_one_line_too(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in {"DISCORD_TOKEN", "AIML_API_KEY"}}
    env.update({"DISCORD_TOKEN": "t", "AIML_API_KEY": "k", "COST_PER_GENERATION": "{not json"})
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "musicbot: configuration error: COST_PER_GENERATION is invalid: it must be JSON"
    ]


def test_unusable_database_path_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database folder should be")
    env = {key: value for key, value in os.environ.items() if key not in {"DISCORD_TOKEN", "AIML_API_KEY"}}
    env.update({"DISCORD_TOKEN": "t", "AIML_API_KEY": "k", "DATABASE_URL": f"sqlite:///{blocker}/db.sqlite3"})
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("musicbot: cannot open the database at ")
    assert "check DATABASE_URL" in lines[0]
