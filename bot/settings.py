"""The bot's configuration: one Settings class read from the environment and `.env`, built once at start-up."""

from __future__ import annotations

import json
import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.backends import ADAPTERS, AdapterSpec, BackendConfig, adapter, adapters
from bot.models import MAX_COOLDOWN_SECONDS, OperatorLimits, QuotaLimits
from bot.storage.database import is_postgres_url, sqlite_path

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
# Each adapter's spec names the settings it owns; those named as base URLs are checked here as web addresses.
BACKEND_BASE_URL_SETTINGS = tuple(dict.fromkeys(spec.base_url_setting for spec in ADAPTERS))


class Settings(BaseSettings):
    """Every knob the operator can turn; tests build it with keyword arguments and no environment."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        case_sensitive=False,
        hide_input_in_errors=True,
    )

    discord_token: SecretStr = Field(min_length=1)
    discord_dev_guild_id: int | None = None

    music_backend: str = "aimlapi-suno"
    # The backends' own settings: which belongs to which backend (base URL, key, callback) is declared by its
    # AdapterSpec in bot/backends/; the names here are the environment variables operators rely on.
    aiml_api_key: SecretStr | None = None
    aiml_api_base_url: str = "https://api.aimlapi.com"
    suno_api_base_url: str = "http://localhost:3000"
    sunoapi_key: SecretStr | None = None
    sunoapi_base_url: str = "https://api.sunoapi.org"
    sunoapi_callback_url: str | None = None
    acestep_base_url: str = "http://127.0.0.1:8001"
    acestep_api_key: SecretStr | None = None  # optional: only when the ACE-Step server was started with one
    # Where the `sandbox` backend serves its own songs to the bot; port 0 takes any free one.
    sandbox_base_url: str = "http://127.0.0.1:0"
    wait_audio: bool = True

    database_url: str = "sqlite:///data/musicbot.sqlite3"
    log_level: LogLevel = "INFO"
    # "text": readable lines; "json": one JSON object per line, with the job=… guild=… phase=… fields as keys.
    log_format: Literal["text", "json"] = "text"
    # The operators' HTTP endpoint (GET /healthz); unset = no server.
    http_port: int | None = Field(default=None, ge=1, le=65535)
    http_host: str = "127.0.0.1"
    # Where the world reaches that server (a reverse proxy's https address): with it, providers that push their
    # progress (sunoapi) are given a per-job callback address under it, and each push wakes that job's polling.
    public_base_url: str | None = None

    default_daily_limit: int = Field(default=20, ge=-1)
    default_monthly_limit: int = Field(default=300, ge=-1)
    default_per_member_daily: int = Field(default=5, ge=-1)
    default_cooldown_seconds: int = Field(default=0, ge=0)
    default_max_concurrent: int = Field(default=4, ge=-1)
    # Requests beyond max_concurrent wait in the server's line (reserved at once, started in order); 0 refuses.
    default_max_queued: int = Field(default=10, ge=-1)
    # The operator's protection from the servers: a bot-wide budget, ceilings moderators cannot pass, and an
    # optional list of the only servers allowed to generate. -1 = no budget / no ceiling; empty = every server.
    global_daily_limit: int = Field(default=-1, ge=-1)
    global_monthly_limit: int = Field(default=-1, ge=-1)
    max_daily_limit: int = Field(default=-1, ge=-1)
    max_monthly_limit: int = Field(default=-1, ge=-1)
    max_per_member_daily: int = Field(default=-1, ge=-1)
    max_concurrent_limit: int = Field(default=-1, ge=-1)
    max_queued_limit: int = Field(default=-1, ge=-1)
    allowed_guild_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    # What one generation costs on each backend, in that backend's unit; unset ones use the adapter's default.
    cost_per_generation: dict[str, int] = Field(default_factory=dict)

    wait_audio_timeout_seconds: float = Field(default=130.0, gt=0)
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    poll_interval_seconds: float = Field(default=10.0, gt=0)
    # A song close to done (older than its backend's songs usually take, or its sibling done) is polled this
    # often instead; never less often than POLL_INTERVAL_SECONDS.
    fast_poll_interval_seconds: float = Field(default=1.0, gt=0)
    poll_batch_size: int = Field(default=10, ge=1, le=50)
    generation_deadline_seconds: float = Field(default=600.0, gt=0)
    progress_edit_interval_seconds: float = Field(default=5.0, ge=0)
    retry_attempts: int = Field(default=3, ge=1, le=10)
    retry_base_delay_seconds: float = Field(default=1.0, ge=0)
    redelivery_interval_seconds: float = Field(default=60.0, gt=0)
    # Each unfinished job belongs to the process holding its lease (INSTANCE_ID), renewed every third of
    # JOB_LEASE_SECONDS; a job whose lease ran out (its process died) is taken over by another process or start.
    job_lease_seconds: float = Field(default=30.0, gt=0)
    instance_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}", min_length=1)
    # Discord sharding: SHARD_COUNT shards in all, this process runs SHARD_IDS of them (unset: Discord's
    # recommended count, all of them here). Processes coordinate IDENTIFY and interactions through the database.
    shard_count: int | None = Field(default=None, ge=1)
    shard_ids: Annotated[list[int] | None, NoDecode] = None
    # Connections each process keeps to PostgreSQL (about twice the database server's cores over all processes).
    database_pool_size: int = Field(default=5, ge=1, le=100)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    # A download may take at most this long (never past the job's deadline) and must keep at least this pace.
    download_timeout_seconds: float = Field(default=300.0, gt=0)
    download_min_bytes_per_second: int = Field(default=16_384, ge=0)
    # Working files (downloads before they are posted) live in DATA_DIR/tmp-audio; default: the database's folder.
    data_dir: Path | None = None
    # A file of phrases refused in every server (one per line, `#` starts a comment); re-read when it changes.
    blocklist_file: Path | None = None
    # Prompts and lyrics of finished jobs older than this, and the data of servers the bot left this long ago,
    # are erased (unset: kept for ever); the loop that does it looks every RETENTION_INTERVAL_SECONDS.
    data_retention_days: int | None = Field(default=None, ge=1)
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
    # How often the community loop looks for contests whose end came (and edits their standings, at most once a
    # minute), and for hall-of-fame forwards a stopped process left unfinished.
    community_interval_seconds: float = Field(default=15.0, gt=0)

    @field_validator(*BACKEND_BASE_URL_SETTINGS)
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("public_base_url")
    @classmethod
    def _check_public_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("must be an address like https://bot.example.org (or with a path prefix)")
        return value.rstrip("/")

    @field_validator("blocklist_file")
    @classmethod
    def _check_blocklist_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a file (one blocked phrase per line)")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if is_postgres_url(value):
            parts = urlsplit(value)
            if not parts.hostname or not parts.path.strip("/"):
                raise ValueError("must look like postgresql://user:password@host:5432/database")
            return value
        if not value.startswith("sqlite:///") or value == "sqlite:///":
            raise ValueError(
                "must look like sqlite:///relative/path, sqlite:////absolute/path or postgresql://user@host/db"
            )
        return value

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _parse_shard_ids(cls, value: object) -> object:
        """`SHARD_IDS=0-7`, `0,2` or `0-3,6`: ranges and single ids, commas or spaces."""
        if not isinstance(value, str):
            return value
        ids: list[int] = []
        for part in value.replace(",", " ").split():
            first, dash, last = part.partition("-")
            if not first.isdigit() or (dash and not last.isdigit()):
                raise ValueError("must list shard ids like 0-7 or 0,2")
            ids.extend(range(int(first), int(last) + 1) if dash else [int(first)])
        if not ids:
            return None
        return sorted(set(ids))

    @model_validator(mode="after")
    def _check_shards(self) -> Settings:
        if self.shard_ids is not None:
            if self.shard_count is None:
                raise ValueError("SHARD_IDS needs SHARD_COUNT (the total number of shards over every process)")
            outside = [shard for shard in self.shard_ids if shard >= self.shard_count]
            if outside:
                raise ValueError(f"SHARD_IDS {outside} are not below SHARD_COUNT {self.shard_count}")
        return self

    @model_validator(mode="after")
    def _check_public_base_url_has_a_server(self) -> Settings:
        if self.public_base_url is not None and self.http_port is None:
            raise ValueError("PUBLIC_BASE_URL needs HTTP_PORT (the server the callbacks arrive at)")
        return self

    @field_validator("allowed_guild_ids", mode="before")
    @classmethod
    def _split_guild_ids(cls, value: object) -> object:
        """`ALLOWED_GUILD_IDS=123,456` (commas or spaces), or a JSON list."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part for part in text.replace(",", " ").split() if part]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("music_backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in adapters():
            raise ValueError(f"must be one of {', '.join(adapters())}")
        return value

    @field_validator("cost_per_generation")
    @classmethod
    def _known_costs(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = set(value) - set(adapters())
        if unknown:
            raise ValueError(f"unknown backends {sorted(unknown)}; known: {', '.join(adapters())}")
        if any(cost < 0 for cost in value.values()):
            raise ValueError("costs cannot be negative")
        return value

    @model_validator(mode="after")
    def _require_backend_settings(self) -> Settings:
        key = self.backend_spec.key_setting
        if key and self.backend_spec.key_required and not self.secret(key):
            raise ValueError(f"{key.upper()} is required when MUSIC_BACKEND is {self.music_backend}")
        return self

    @property
    def backend_spec(self) -> AdapterSpec:
        """The chosen backend's spec."""
        return adapter(self.music_backend)

    def backend_config(self) -> BackendConfig:
        """The values the chosen backend is built from, read by the setting names its spec declares."""
        spec = self.backend_spec
        return BackendConfig(
            backend=spec.name,
            base_url=str(getattr(self, spec.base_url_setting)),
            request_timeout=self.http_timeout_seconds,
            wait_audio_timeout=self.wait_audio_timeout_seconds,
            download_min_bytes_per_second=self.download_min_bytes_per_second,
            api_key=self.secret(spec.key_setting) if spec.key_setting else "",
            callback_url=getattr(self, spec.callback_url_setting) if spec.callback_url_setting else None,
        )

    def secret(self, name: str) -> str:
        """A secret setting's value, for the one place that sends it; "" when unset."""
        value = getattr(self, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else ""

    def cost_of(self, backend: str) -> int:
        return self.cost_per_generation.get(backend, adapter(backend).default_cost)

    @property
    def default_limits(self) -> QuotaLimits:
        return QuotaLimits(
            daily=self.default_daily_limit,
            monthly=self.default_monthly_limit,
            per_member_daily=self.default_per_member_daily,
            cooldown_seconds=self.default_cooldown_seconds,
            max_concurrent=self.default_max_concurrent,
            max_queued=self.default_max_queued,
        )

    @property
    def ceilings(self) -> QuotaLimits:
        """The most any server may be given (-1 = no ceiling); cooldowns have none."""
        return QuotaLimits(
            daily=self.max_daily_limit,
            monthly=self.max_monthly_limit,
            per_member_daily=self.max_per_member_daily,
            cooldown_seconds=0,
            max_concurrent=self.max_concurrent_limit,
            max_queued=self.max_queued_limit,
        )

    @property
    def operator_limits(self) -> OperatorLimits:
        """What protects the operator from the servers: the bot-wide budget, the ceilings, the allow-list."""
        return OperatorLimits(
            global_daily=self.global_daily_limit,
            global_monthly=self.global_monthly_limit,
            ceilings=self.ceilings,
            allowed_guilds=self.allowed_guild_ids,
        )

    @property
    def cooldown_horizon(self) -> timedelta:
        """The longest any member's cooldown can last: what a moderator may set, or the default if longer."""
        return timedelta(seconds=max(MAX_COOLDOWN_SECONDS, self.default_cooldown_seconds))

    @property
    def temp_audio_dir(self) -> Path:
        """One folder for downloads in flight; emptied at every start (a killed process leaves files behind).
        Each process has its own (by INSTANCE_ID) when they share DATA_DIR with PostgreSQL."""
        if self.uses_postgres:
            return (self.data_dir or Path("data")) / "tmp-audio" / _safe_name(self.instance_id)
        return (self.data_dir or self.database_path.parent) / "tmp-audio"

    @property
    def uses_postgres(self) -> bool:
        return is_postgres_url(self.database_url)

    @property
    def database_path(self) -> Path:
        """The SQLite file: `sqlite:///rel` is relative to the working directory, `sqlite:////abs` absolute."""
        return sqlite_path(self.database_url)


def _safe_name(text: str) -> str:
    return "".join(character if character.isalnum() or character in "-_." else "_" for character in text)
