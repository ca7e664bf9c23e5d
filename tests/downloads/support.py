"""Shared sizes, texts and helpers for the download tests."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from bot.backends.aimlapi_gateway import gateway_error
from bot.backends.base import DownloadedAudio
from bot.backends.downloads import download_audio
from bot.backends.fetch_policy import UrlPolicy

MiB = 1024 * 1024


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    destination: Path,
    *,
    trusted: list[str],
    max_bytes: int = 10 * MiB,
    time_limit: float = 10.0,
    min_bytes_per_second: int = 0,
    pace_window: float = 10.0,
) -> DownloadedAudio:
    return await download_audio(
        session,
        url,
        destination,
        max_bytes=max_bytes,
        time_limit=time_limit,
        min_bytes_per_second=min_bytes_per_second,
        policy=UrlPolicy(trusted),
        read_timeout=5.0,
        error_for_status=gateway_error,
        pace_window=pace_window,
    )


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def nothing_left(folder: Path) -> bool:
    return names(folder) == []
