"""Domain exceptions: what a member is told (UserFacingError) and what the music API did wrong (MusicApiError)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.models import FailureReason


class UserFacingError(Exception):
    """An error whose message is written for the member who triggered it; shown ephemerally. With `key`, the
    command tree words it from that catalogue entry in the member's language (`values` fill its placeholders);
    `message` is its English text."""

    def __init__(self, message: str, *, key: str | None = None, values: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.values: Mapping[str, object] = values or {}


class InvalidRequestError(UserFacingError):
    """The member's input cannot be sent (empty, too long, an option the backend cannot honour)."""


class QuotaExceededError(UserFacingError):
    """A spending limit refused the generation, with the figures of the evaluation that refused it. It carries
    no words: the Discord layer (`cogs/quota_render.py`) tells the member; `message` is for logs.

    `limit`: "allowed_guilds", "blocked", one of LIMIT_NAMES, "global_daily" or "global_monthly". `value`: that
    limit as it stood (0 = switched off). `used`: what counted against it (the running generations for
    max_concurrent). `frees_at`: when it frees up by itself (the next UTC day or month, the cooldown's end);
    None when it does not (blocked, switched off, or until a running generation ends).
    """

    def __init__(
        self,
        limit: str,
        *,
        value: int | None = None,
        used: int | None = None,
        frees_at: datetime | None = None,
        block_reason: str | None = None,
    ) -> None:
        figures = ", ".join(
            f"{name}={figure}"
            for name, figure in (("value", value), ("used", used), ("frees_at", frees_at and frees_at.isoformat()))
            if figure is not None
        )
        super().__init__(f"refused by the {limit} limit" + (f" ({figures})" if figures else ""))
        self.limit = limit
        self.value = value
        self.used = used
        self.frees_at = frees_at
        self.block_reason = block_reason


class MusicApiError(Exception):
    """The music API failed. `reason` is stored on the job; `detail` is for the operator's log only.

    `retryable`: worth asking again later. `nothing_created`: the API refused before creating anything, so
    even the paid generate call may be sent again.
    """

    reason: FailureReason = FailureReason.API_UNAVAILABLE
    retryable: bool = False
    nothing_created: bool = False

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class MusicApiAuthError(MusicApiError):
    """401: the key is missing, expired or wrong (an operator's problem, never the member's)."""

    reason = FailureReason.API_AUTH


class MusicApiCreditsError(MusicApiError):
    """402/403: the account is out of credits."""

    reason = FailureReason.API_CREDITS


class MusicApiRateLimitedError(MusicApiError):
    """429: too many requests; nothing was created."""

    reason = FailureReason.API_RATE_LIMITED
    retryable = True
    nothing_created = True


class MusicApiInvalidRequestError(MusicApiError):
    """400: the API refused the body (validation); nothing was created."""

    reason = FailureReason.API_INVALID_REQUEST


class MusicApiUnavailableError(MusicApiError):
    """5xx or an unexpected status: the provider is down or failing."""

    reason = FailureReason.API_UNAVAILABLE
    retryable = True


class MusicApiContentPolicyError(MusicApiError):
    """The provider refused the content (sensitive words, an artist's name, copyrighted lyrics)."""

    reason = FailureReason.API_CONTENT_POLICY


class MusicApiModelGoneError(MusicApiError):
    """The model or route no longer exists upstream."""

    reason = FailureReason.API_MODEL_GONE


class MusicApiGenerationFailedError(MusicApiError):
    """The provider accepted the request, then failed to make the songs (a task-level failure)."""

    reason = FailureReason.CLIPS_FAILED


class MusicApiBadResponseError(MusicApiError):
    """A success status with a body that is not the JSON we expect."""

    reason = FailureReason.API_BAD_RESPONSE


class MusicApiTimeoutError(MusicApiError):
    """No answer within the client's time-out."""

    reason = FailureReason.API_TIMEOUT
    retryable = True


class AudioTooLargeError(Exception):
    """The clip's mp3 is bigger than what may be uploaded; it is posted as a link instead."""

    def __init__(self, size: int | None, limit: int) -> None:
        super().__init__(f"audio of {size if size is not None else 'unknown'} bytes exceeds {limit}")
        self.size = size
        self.limit = limit


class ForeignClipError(Exception):
    """The music API reported, for one job, clip ids the bot already stored for another job."""

    def __init__(self, job_id: int, clip_ids: list[str]) -> None:
        super().__init__(f"job {job_id} was answered with clips of another job: {', '.join(clip_ids)}")
        self.job_id = job_id
        self.clip_ids = clip_ids


class JobTakenOverError(Exception):
    """This process no longer owns the job (its lease ran out and another process took it): stop quietly."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} is no longer this process's")
        self.job_id = job_id


class DeliveryError(Exception):
    """Posting to Discord failed. Transient failures (5xx, network) are retried and, failing that, the job
    is kept for redelivery; permanent ones (missing permissions, unknown channel) end the clip's delivery."""

    def __init__(self, detail: str, *, transient: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.transient = transient


class UnsafeUrlError(MusicApiError):
    """The music service gave a file address the bot will not fetch: not http(s), or a loopback, private,
    link-local, metadata or otherwise non-public address, at the first hop or after a redirect (the backend's
    own origin excepted). `detail` is a sentence a member may read. The clip fails (CLIPS_FAILED, as when the
    service fails to make it) and is not posted, not even as a link: the address may reach the bot's network."""

    reason = FailureReason.CLIPS_FAILED


class NotAudioError(MusicApiError):
    """The file at the audio address is not audio (its content type, or its first bytes are no MP3, WAV, FLAC,
    Ogg or MP4). `detail` is a sentence a member may read. The clip fails (CLIPS_FAILED) and is not posted,
    not even as a link: what the link shows is not the song."""

    reason = FailureReason.CLIPS_FAILED


class DownloadTooSlowError(MusicApiTimeoutError):
    """The download passed its whole time limit or fell below the minimum pace. Not retried: the limit is the
    time left to the job; the clip may still be posted as the service's link."""

    retryable = False


class AudioStoreError(Exception):
    """The downloaded file could not be written (disk full, file too large for the system, permissions). The
    partial file is gone; the clip is posted as a link."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PromptRefusedError(UserFacingError):
    """A blocked phrase is in what the member wrote. It carries no words: `cogs/rules_render.py` tells the
    member. `field`: "description", "lyrics", "title" or "style"; `by_operator`: the bot-wide file's rule (else
    the server's)."""

    def __init__(self, phrase: str, field: str, *, by_operator: bool) -> None:
        super().__init__(f"refused by a blocked phrase in the {field} ({'operator' if by_operator else 'server'})")
        self.phrase = phrase
        self.field = field
        self.by_operator = by_operator


class ChannelNotAllowedError(UserFacingError):
    """The server lists the channels where music may be made, and this is not one of them."""

    def __init__(self, allowed: tuple[int, ...]) -> None:
        super().__init__(f"not an allowed channel ({len(allowed)} allowed)")
        self.allowed = allowed


class RuleLimitError(Exception):
    """A server already holds as many rules of a kind as it may."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} rules of this kind")
        self.limit = limit
