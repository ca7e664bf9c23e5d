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
        ({"discord_token": "t", "aiml_api_key": "k", "public_base_url": "ftp://x"}, "PUBLIC_BASE_URL is invalid"),
        ({"discord_token": "t", "aiml_api_key": "k", "public_base_url": "https://bot.example"}, "needs HTTP_PORT"),
        ({"discord_token": "t", "aiml_api_key": "k", "blocklist_file": "/nonexistent"}, "BLOCKLIST_FILE is invalid"),
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


def test_the_example_env_file_is_a_valid_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    filled = example.replace("DISCORD_TOKEN=\n", "DISCORD_TOKEN=t\n").replace("AIML_API_KEY=\n", "AIML_API_KEY=k\n")
    (tmp_path / ".env").write_text(filled)
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith(("DISCORD_", "AIML_", "GLOBAL_", "MAX_", "ALLOWED_", "DEFAULT_")):
            monkeypatch.delenv(key)
    settings = Settings()  # type: ignore[call-arg]
    assert settings.global_daily_limit == -1
    assert settings.allowed_guild_ids == frozenset()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", frozenset()), ("123", {123}), ("1,2, 3", {1, 2, 3}), ("4 5", {4, 5}), ("[6, 7]", {6, 7})],
)
def test_allowed_guild_ids_take_commas_spaces_or_json(
    raw: str, expected: frozenset[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLOWED_GUILD_IDS", raw)
    assert make(discord_token="t", aiml_api_key="k").allowed_guild_ids == expected


def test_a_non_numeric_allowed_guild_id_names_the_variable() -> None:
    with pytest.raises(ValidationError) as caught:
        make(discord_token="t", aiml_api_key="k", allowed_guild_ids="12,abc")
    assert "ALLOWED_GUILD_IDS is invalid" in describe_settings_error(caught.value)


def test_downloads_live_in_one_folder_beside_the_database_unless_data_dir_is_set() -> None:
    settings = make(discord_token="t", aiml_api_key="k", database_url="sqlite:////srv/bot/db.sqlite3")
    assert settings.temp_audio_dir == Path("/srv/bot/tmp-audio")
    assert make(discord_token="t", aiml_api_key="k", data_dir="/var/tmp/mb").temp_audio_dir == Path(
        "/var/tmp/mb/tmp-audio"
    )


@pytest.mark.parametrize(("text", "expected"), [("0-3", [0, 1, 2, 3]), ("0,2", [0, 2]), ("5 1-2", [1, 2, 5])])
def test_shard_ids_take_ranges_and_lists(text: str, expected: list[int]) -> None:
    settings = make(discord_token="t", aiml_api_key="k", shard_count=8, shard_ids=text)
    assert settings.shard_ids == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"shard_ids": "0"}, "SHARD_IDS needs SHARD_COUNT"),
        ({"shard_count": 2, "shard_ids": "1-2"}, "SHARD_IDS [2] are not below SHARD_COUNT 2"),
        ({"shard_count": 2, "shard_ids": "one"}, "SHARD_IDS is invalid: must list shard ids like 0-7 or 0,2"),
        ({"shard_count": 0}, "SHARD_COUNT is invalid"),
        ({"database_url": "postgresql://host-only"}, "DATABASE_URL is invalid"),
        ({"database_url": "mysql://x/y"}, "DATABASE_URL is invalid"),
    ],
)
def test_bad_shard_and_database_settings_name_the_variable(values: dict[str, object], expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make(discord_token="t", aiml_api_key="k", **values)
    assert expected in describe_settings_error(caught.value)


def test_a_postgresql_url_keeps_downloads_per_process_under_data_dir() -> None:
    settings = make(
        discord_token="t", aiml_api_key="k", database_url="postgresql://bot:pw@db:5432/musicbot", instance_id="bot/1"
    )
    assert settings.uses_postgres
    assert settings.temp_audio_dir == Path("data/tmp-audio/bot_1")
