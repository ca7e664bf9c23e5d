"""Domain exceptions: what a member is told (UserFacingError) and what the music API did wrong (MusicApiError)."""

from __future__ import annotations

from bot.models import FailureReason


class UserFacingError(Exception):
    """An error whose message is written for the member who triggered it; shown ephemerally."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestError(UserFacingError):
    """The member's input cannot be sent (empty, too long, an option the backend cannot honour)."""


class QuotaExceededError(UserFacingError):
    """A spending limit refused the generation; the message names the limit and when it frees up."""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


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


class DeliveryError(Exception):
    """Posting to Discord failed. Transient failures (5xx, network) are retried and, failing that, the job
    is kept for redelivery; permanent ones (missing permissions, unknown channel) end the clip's delivery."""

    def __init__(self, detail: str, *, transient: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.transient = transient
