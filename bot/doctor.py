"""`musicbot doctor`: checks the settings, the database, the operator's limits and both APIs' keys, spending nothing."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp

from bot.backends import create_backend
from bot.clock import start_of_utc_day, utc_now
from bot.errors import (
    MusicApiAuthError,
    MusicApiCreditsError,
    MusicApiError,
    MusicApiInvalidRequestError,
    MusicApiModelGoneError,
    MusicApiRateLimitedError,
    MusicApiTimeoutError,
    MusicApiUnavailableError,
)
from bot.models import CEILING_NAMES, UNLIMITED
from bot.settings import Settings
from bot.storage.database import bundled_migrations, to_db_time


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report; a warning is not a problem (the exit status stays 0) but deserves a look."""

    ok: bool
    text: str
    warning: bool = False

    def __str__(self) -> str:
        mark = "BAD" if not self.ok else "WARN" if self.warning else "OK "
        return f"{mark}  {self.text}"


def check_settings(settings: Settings) -> list[Finding]:
    spec, config = settings.backend_spec, settings.backend_config()
    key = "not set" if spec.key_setting and not config.api_key else "set"
    return [
        Finding(True, "settings load without errors"),
        Finding(True, f"music backend: {spec.name} at {config.base_url} (API key {key})"),
        Finding(True, f"  {spec.summary}"),
        Finding(
            True, f"wait_audio: {settings.wait_audio}; generation deadline {settings.generation_deadline_seconds:g}s"
        ),
    ]


def check_database(path: Path) -> Finding:
    """Reads the file without changing it: its schema version against this bot's, and a quick integrity check."""
    latest = len(bundled_migrations())
    if not path.exists():
        folder = next((parent for parent in path.parents if parent.exists()), Path("."))
        if not folder.is_dir() or not _writable(folder):
            return Finding(False, f"database {path} does not exist and {folder} is not writable")
        return Finding(True, f"database {path} does not exist yet; it is created at the first start")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            version = int(connection.execute("PRAGMA user_version").fetchone()[0])
            integrity = str(connection.execute("PRAGMA quick_check").fetchone()[0])
        finally:
            connection.close()
    except sqlite3.Error as error:
        return Finding(False, f"database {path} cannot be read: {error}")
    if integrity != "ok":
        return Finding(False, f"database {path} is damaged: {integrity}; restore it from a backup")
    if version > latest:
        return Finding(
            False, f"database {path} is at schema {version}, newer than this bot ({latest}); upgrade the bot"
        )
    if version < latest:
        return Finding(
            True, f"database {path} is at schema {version}; {latest - version} upgrade(s) apply at next start"
        )
    return Finding(True, f"database {path} is up to date (schema {version})")


def read_budget_used(path: Path, now: datetime) -> tuple[int, int] | None:
    """Generations charged bot-wide today and this month, read without changing the file; None if unreadable."""
    if not path.exists():
        return 0, 0
    day, month = to_db_time(start_of_utc_day(now))[:10], to_db_time(now)[:7]
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "global_counters" in tables:
                query = "SELECT coalesce(sum(used), 0) FROM global_counters WHERE scope = ? AND period = ?"
                today = connection.execute(query, ("day", day)).fetchone()[0]
                this_month = connection.execute(query, ("month", month)).fetchone()[0]
            elif "jobs" in tables:  # a database from before the budget: count the job rows
                query = "SELECT count(*) FROM jobs WHERE charged = 1 AND substr(created_at, 1, ?) = ?"
                today = connection.execute(query, (10, day)).fetchone()[0]
                this_month = connection.execute(query, (7, month)).fetchone()[0]
            else:
                return 0, 0
        finally:
            connection.close()
    except sqlite3.Error:
        return None
    return int(today), int(this_month)


def _budget_part(period: str, variable: str, limit: int, used: int | None) -> str:
    spent = "usage unknown (the database cannot be read)" if used is None else f"{used:,} used"
    if limit == UNLIMITED:
        return f"{period}: {spent}, no limit ({variable} is -1)"
    if limit == 0:
        return f"{period}: generation switched off ({variable} is 0)"
    left = "" if used is None else f", {max(0, limit - used):,} left"
    return f"{period}: {spent} of {limit:,}{left}"


def check_operator_limits(settings: Settings, *, now: datetime | None = None) -> list[Finding]:
    """The operator's protection from the servers: the bot-wide budget and what is left, ceilings, allow-list."""
    moment = now or utc_now()
    daily, monthly = settings.global_daily_limit, settings.global_monthly_limit
    findings: list[Finding] = []
    if daily == UNLIMITED and monthly == UNLIMITED:
        findings.append(
            Finding(
                True,
                "no bot-wide budget is set (GLOBAL_DAILY_LIMIT and GLOBAL_MONTHLY_LIMIT are -1): nothing limits "
                "what all servers together spend",
                warning=True,
            )
        )
    else:
        used = read_budget_used(settings.database_path, moment)
        today, this_month = used if used else (None, None)
        parts = [
            _budget_part("today (UTC)", "GLOBAL_DAILY_LIMIT", daily, today),
            _budget_part("this month (UTC)", "GLOBAL_MONTHLY_LIMIT", monthly, this_month),
        ]
        findings.append(Finding(True, f"bot-wide budget: {'; '.join(parts)}"))
    ceilings, defaults = settings.ceilings, settings.default_limits
    capped = [name for name in CEILING_NAMES if getattr(ceilings, name) != UNLIMITED]
    if capped:
        listed = ", ".join(f"{name} {getattr(ceilings, name):,}" for name in capped)
        findings.append(Finding(True, f"ceilings no server can go above: {listed}"))
        for name in capped:
            ceiling, default = getattr(ceilings, name), getattr(defaults, name)
            if default == UNLIMITED or default > ceiling:
                findings.append(
                    Finding(True, f"  the default {name} ({default}) is above its ceiling: servers get {ceiling}")
                )
    else:
        findings.append(
            Finding(True, "no ceilings (MAX_*_LIMIT are -1): moderators may set any limit, unlimited included")
        )
    allowed = settings.allowed_guild_ids
    if allowed:
        findings.append(
            Finding(True, f"allow-list: {len(allowed)} server(s) may generate (ALLOWED_GUILD_IDS); others are refused")
        )
    else:
        findings.append(Finding(True, "allow-list: not set; every server the bot is invited to may generate"))
    return findings


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK)


async def check_music_api(session: aiohttp.ClientSession, settings: Settings) -> Finding:
    """Asks the active backend for something free that proves the URL and the key; spends nothing."""
    spec, config = settings.backend_spec, settings.backend_config()
    where = f"music API ({spec.name}) at {config.base_url}"
    key = spec.credential
    try:
        words = await create_backend(session, config).probe()
    except MusicApiAuthError as error:
        return Finding(False, f"{where} refused {key} ({error.status}): check it")
    except MusicApiCreditsError:
        return Finding(False, f"{where} accepted {key}, but the account is out of credits")
    except (MusicApiModelGoneError, MusicApiInvalidRequestError) as error:
        return Finding(False, f"{where} does not offer this route ({error.detail}); check the base URL and backend")
    except (MusicApiUnavailableError, MusicApiTimeoutError, MusicApiRateLimitedError) as error:
        return Finding(False, f"{where} cannot be reached or is failing: {error.detail}")
    except MusicApiError as error:
        return Finding(False, f"{where} answered, but not as this bot expects: {error.detail}")
    return Finding(True, f"{where} {words}")


async def check_discord(session: aiohttp.ClientSession, settings: Settings, *, api_base: str) -> Finding:
    try:
        async with session.get(
            f"{api_base}/users/@me",
            headers={"Authorization": f"Bot {settings.discord_token.get_secret_value()}"},
            timeout=aiohttp.ClientTimeout(total=settings.http_timeout_seconds),
        ) as response:
            status = response.status
            data = await response.json(content_type=None) if status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        return Finding(False, f"Discord cannot be reached: {type(error).__name__}")
    if status == 401:
        return Finding(False, "Discord refused DISCORD_TOKEN (401): copy the bot token again from the developer portal")
    if status != 200 or not isinstance(data, dict):
        return Finding(False, f"Discord answered HTTP {status} to the token check")
    return Finding(True, f"Discord accepts DISCORD_TOKEN: logged in as {data.get('username')} ({data.get('id')})")


async def run_doctor(settings: Settings, *, discord_api_base: str) -> list[Finding]:
    findings = check_settings(settings)
    findings.append(check_database(settings.database_path))
    findings.extend(check_operator_limits(settings))
    async with aiohttp.ClientSession() as session:
        findings.append(await check_music_api(session, settings))
        findings.append(await check_discord(session, settings, api_base=discord_api_base))
    return findings
