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
from bot.storage.database import bundled_migrations, redact_url, to_db_time

POSTGRES_CHECK_TIMEOUT = 10.0


class Unread:
    """The bot-wide use was not read by the caller."""


UNREAD = Unread()


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
    if spec.key_setting is None:
        key = "no API key"
    else:
        key = f"{spec.key_setting.upper()} {'set' if config.api_key else 'not set'}"
    return [
        Finding(True, "settings load without errors"),
        Finding(True, f"music backend: {spec.name} at {config.base_url} ({key})"),
        Finding(True, f"  {spec.summary}"),
        Finding(
            True, f"wait_audio: {settings.wait_audio}; generation deadline {settings.generation_deadline_seconds:g}s"
        ),
    ]


def check_database(path: Path) -> Finding:
    """Reads the file without changing it: its schema version against this bot's, and a quick integrity check."""
    latest = bundled_migrations("sqlite")[-1].version
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


async def check_postgres(url: str, now: datetime) -> tuple[Finding, tuple[int, int] | None]:
    """Connects without changing anything: reachable, its schema version against this bot's, and the bot-wide
    use of today and this month (None when it cannot be read)."""
    import asyncpg

    shown = redact_url(url)
    latest = bundled_migrations("postgresql")[-1].version
    try:
        connection = await asyncpg.connect(url, timeout=POSTGRES_CHECK_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as error:
        return Finding(False, f"database {shown} cannot be reached: {type(error).__name__}: {error}"), None
    try:
        server = await connection.fetchval("SHOW server_version")
        if not await connection.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
            return (
                Finding(True, f"database {shown} (PostgreSQL {server}) is empty; the bot creates its schema at start"),
                (0, 0),
            )
        version = int(await connection.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))
        day, month = to_db_time(start_of_utc_day(now))[:10], to_db_time(now)[:7]
        query = "SELECT coalesce(sum(used), 0) FROM global_counters WHERE scope = $1 AND period = $2"
        used = (
            int(await connection.fetchval(query, "day", day)),
            int(await connection.fetchval(query, "month", month)),
        )
    except asyncpg.PostgresError as error:
        return Finding(False, f"database {shown} cannot be read: {error}"), None
    finally:
        await connection.close()
    where = f"database {shown} (PostgreSQL {server})"
    if version > latest:
        return Finding(False, f"{where} is at schema {version}, newer than this bot ({latest}); upgrade the bot"), used
    if version < latest:
        pending = latest - version
        return Finding(
            True, f"{where} is at schema {version}; {pending} migration(s) pending, applied at next start"
        ), used
    return Finding(True, f"{where} is up to date (schema {version})"), used


def check_shards(settings: Settings, recommended: int | None) -> list[Finding]:
    """SHARD_COUNT against what Discord recommends for the bot's number of servers (2,500 per shard at most)."""
    count, ids = settings.shard_count, settings.shard_ids
    if count is None:
        shards = f"{recommended} shard(s), Discord's recommendation" if recommended else "Discord's recommended count"
        return [Finding(True, f"sharding: SHARD_COUNT not set; this process runs all of {shards}")]
    runs = "all of them" if ids is None else f"shards {', '.join(map(str, ids))}"
    findings = [Finding(True, f"sharding: {count} shard(s) in all (SHARD_COUNT); this process runs {runs}")]
    if recommended is not None and count < recommended:
        findings.append(
            Finding(
                False,
                f"SHARD_COUNT {count} is below the {recommended} Discord recommends for this bot's servers; Discord "
                "refuses shards with more than 2,500 servers: raise SHARD_COUNT on every process",
            )
        )
    if ids is not None and 0 not in ids:
        findings.append(Finding(True, "  this process does not run shard 0: another process syncs the commands"))
    return findings


def check_operator_limits(
    settings: Settings, *, now: datetime | None = None, used: tuple[int, int] | Unread | None = UNREAD
) -> list[Finding]:
    """The operator's protection from the servers: the bot-wide budget and what is left, ceilings, allow-list.
    `used` is the bot-wide use today and this month when the caller read it (else read from the SQLite file)."""
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
        if isinstance(used, Unread):
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


async def check_discord(
    session: aiohttp.ClientSession, settings: Settings, *, api_base: str
) -> tuple[Finding, int | None]:
    """The token works; and how many shards Discord recommends for the bot (None when it did not say)."""
    headers = {"Authorization": f"Bot {settings.discord_token.get_secret_value()}"}
    timeout = aiohttp.ClientTimeout(total=settings.http_timeout_seconds)
    try:
        async with session.get(f"{api_base}/users/@me", headers=headers, timeout=timeout) as response:
            status = response.status
            data = await response.json(content_type=None) if status == 200 else None
        recommended = None
        if status == 200:
            async with session.get(f"{api_base}/gateway/bot", headers=headers, timeout=timeout) as response:
                gateway = await response.json(content_type=None) if response.status == 200 else None
            shards = gateway.get("shards") if isinstance(gateway, dict) else None
            recommended = shards if isinstance(shards, int) and shards > 0 else None
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        return Finding(False, f"Discord cannot be reached: {type(error).__name__}"), None
    if status == 401:
        refused = "Discord refused DISCORD_TOKEN (401): copy the bot token again from the developer portal"
        return Finding(False, refused), None
    if status != 200 or not isinstance(data, dict):
        return Finding(False, f"Discord answered HTTP {status} to the token check"), None
    login = Finding(True, f"Discord accepts DISCORD_TOKEN: logged in as {data.get('username')} ({data.get('id')})")
    return login, recommended


async def run_doctor(settings: Settings, *, discord_api_base: str) -> list[Finding]:
    findings = check_settings(settings)
    now = utc_now()
    if settings.uses_postgres:
        database, used = await check_postgres(settings.database_url, now)
        findings.append(database)
        findings.extend(check_operator_limits(settings, now=now, used=used))
    else:
        findings.append(check_database(settings.database_path))
        findings.extend(check_operator_limits(settings, now=now))
    async with aiohttp.ClientSession() as session:
        findings.append(await check_music_api(session, settings))
        login, recommended = await check_discord(session, settings, api_base=discord_api_base)
        findings.append(login)
        findings.extend(check_shards(settings, recommended))
    return findings
