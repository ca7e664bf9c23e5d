"""The bot's configuration: one Settings class read from the environment and `.env`, built once at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.models import QuotaLimits

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
MusicBackendName = Literal["aimlapi-suno"]


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

    music_backend: MusicBackendName = "aimlapi-suno"
    aiml_api_key: SecretStr | None = None
    aiml_api_base_url: str = "https://api.aimlapi.com"
    wait_audio: bool = True

    database_url: str = "sqlite:///data/musicbot.sqlite3"
    log_level: LogLevel = "INFO"

    default_daily_limit: int = Field(default=20, ge=-1)
    default_monthly_limit: int = Field(default=300, ge=-1)
    default_per_member_daily: int = Field(default=5, ge=-1)
    default_cooldown_seconds: int = Field(default=0, ge=0)
    default_max_concurrent: int = Field(default=4, ge=-1)
    tokens_per_generation: int = Field(default=157_500, ge=0)

    wait_audio_timeout_seconds: float = Field(default=130.0, gt=0)
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    poll_interval_seconds: float = Field(default=10.0, gt=0)
    poll_batch_size: int = Field(default=10, ge=1, le=50)
    generation_deadline_seconds: float = Field(default=600.0, gt=0)
    progress_edit_interval_seconds: float = Field(default=5.0, ge=0)
    retry_attempts: int = Field(default=3, ge=1, le=10)
    retry_base_delay_seconds: float = Field(default=1.0, ge=0)
    redelivery_interval_seconds: float = Field(default=60.0, gt=0)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)

    @field_validator("aiml_api_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value.startswith("sqlite:///") or value == "sqlite:///":
            raise ValueError("must look like sqlite:///relative/path or sqlite:////absolute/path")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _require_backend_key(self) -> Settings:
        if self.music_backend.startswith("aimlapi") and not (
            self.aiml_api_key and self.aiml_api_key.get_secret_value()
        ):
            raise ValueError(f"AIML_API_KEY is required when MUSIC_BACKEND is {self.music_backend}")
        return self

    @property
    def default_limits(self) -> QuotaLimits:
        return QuotaLimits(
            daily=self.default_daily_limit,
            monthly=self.default_monthly_limit,
            per_member_daily=self.default_per_member_daily,
            cooldown_seconds=self.default_cooldown_seconds,
            max_concurrent=self.default_max_concurrent,
        )

    @property
    def database_path(self) -> Path:
        """The SQLite file: `sqlite:///rel` is relative to the working directory, `sqlite:////abs` absolute."""
        return Path(self.database_url.removeprefix("sqlite:///"))
