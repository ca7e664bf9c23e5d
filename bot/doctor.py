"""`musicbot doctor`: checks the settings, the database and that both APIs accept their keys, spending nothing."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bot.music_api import parse_clips
from bot.settings import Settings
from bot.storage.database import bundled_migrations

PROBE_CLIP_ID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True, slots=True)
class Finding:
    ok: bool
    text: str

    def __str__(self) -> str:
        return f"{'OK ' if self.ok else 'BAD'}  {self.text}"


def check_settings(settings: Settings) -> list[Finding]:
    key = "set" if settings.aiml_api_key else "not set"
    return [
        Finding(True, "settings load without errors"),
        Finding(True, f"music backend: {settings.music_backend} at {settings.aiml_api_base_url} (API key {key})"),
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


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK)


async def check_music_api(session: aiohttp.ClientSession, settings: Settings) -> Finding:
    """Fetches a clip id that cannot exist: free, and it proves the URL and the key."""
    key = settings.aiml_api_key.get_secret_value() if settings.aiml_api_key else ""
    url = f"{settings.aiml_api_base_url}/"
    try:
        async with session.get(
            url,
            params=[("ids[0]", PROBE_CLIP_ID)],
            headers={"Authorization": f"Bearer {key}"},
            timeout=aiohttp.ClientTimeout(total=settings.http_timeout_seconds),
        ) as response:
            body = await response.text(errors="replace")
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as error:
        return Finding(False, f"music API at {settings.aiml_api_base_url} cannot be reached: {type(error).__name__}")
    explain: dict[int, Callable[[], str]] = {
        401: lambda: "music API refused AIML_API_KEY (401): check the key",
        402: lambda: "music API accepted the key but the account is out of credits (402)",
        403: lambda: "music API accepted the key but the account is out of credits or not allowed (403)",
        404: lambda: (
            f"music API has no clip route at {url} (404): check AIML_API_BASE_URL; "
            "aimlapi lists Suno as no longer available"
        ),
    }
    if status in explain:
        return Finding(False, explain[status]())
    if status not in (200, 201):
        return Finding(False, f"music API answered HTTP {status}: it may be down")
    try:
        parse_clips(json.loads(body))
    except Exception:
        return Finding(False, "music API answered, but not with the list of clips this bot expects")
    return Finding(True, f"music API at {settings.aiml_api_base_url} answers and accepts the key")


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
    async with aiohttp.ClientSession() as session:
        findings.append(await check_music_api(session, settings))
        findings.append(await check_discord(session, settings, api_base=discord_api_base))
    return findings
