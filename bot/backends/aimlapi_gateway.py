"""The AI/ML API gateway's error answers (`{message, path, requestId, statusCode, timestamp}`), typed."""

from __future__ import annotations

import re

from bot.backends.base import error_detail
from bot.errors import (
    MusicApiAuthError,
    MusicApiCreditsError,
    MusicApiError,
    MusicApiInvalidRequestError,
    MusicApiModelGoneError,
    MusicApiRateLimitedError,
    MusicApiUnavailableError,
)

_MODEL_GONE = re.compile(r"deprecat|no longer (available|supported)|model.*(not found|not available|unknown)", re.I)


def gateway_error(status: int, body: str) -> MusicApiError:
    detail = f"HTTP {status}: {error_detail(body)}"
    if status == 401:
        return MusicApiAuthError(detail, status=status)
    if status in (402, 403):
        return MusicApiCreditsError(detail, status=status)
    if status == 429:
        return MusicApiRateLimitedError(detail, status=status)
    if status in (400, 404, 410) and (_MODEL_GONE.search(detail) or status == 410):
        return MusicApiModelGoneError(detail, status=status)
    if status in (400, 404, 413, 422):
        return MusicApiInvalidRequestError(detail, status=status)
    return MusicApiUnavailableError(detail, status=status)
