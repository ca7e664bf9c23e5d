"""Domain types shared by the core and the Discord layer: clips, generation requests, jobs and their states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.clock import start_of_utc_day


class ClipStatus(StrEnum):
    """Where a clip is in the API's lifecycle: submitted -> queued -> streaming -> complete, or error."""

    SUBMITTED = "submitted"
    QUEUED = "queued"
    STREAMING = "streaming"
    COMPLETE = "complete"
    ERROR = "error"

    @property
    def is_terminal(self) -> bool:
        return self in (ClipStatus.COMPLETE, ClipStatus.ERROR)

    @classmethod
    def parse(cls, raw: object) -> ClipStatus:
        """Reads the API's spelling case-insensitively; anything unknown counts as still running."""
        text = str(raw or "").strip().lower()
        return _STATUS_ALIASES.get(text, ClipStatus.QUEUED)


_STATUS_ALIASES: dict[str, ClipStatus] = {
    "submitted": ClipStatus.SUBMITTED,
    "queued": ClipStatus.QUEUED,
    "queue": ClipStatus.QUEUED,
    "streaming": ClipStatus.STREAMING,
    "complete": ClipStatus.COMPLETE,
    "completed": ClipStatus.COMPLETE,
    "error": ClipStatus.ERROR,
}


@dataclass(frozen=True, slots=True)
class Clip:
    """One generated song as the API reports it; every field but id and status may be unknown yet."""

    id: str
    status: ClipStatus
    title: str = ""
    audio_url: str = ""
    image_url: str = ""
    lyrics: str = ""
    tags: str = ""
    duration: float | None = None
    model_name: str = ""
    error_message: str = ""

    @property
    def has_audio(self) -> bool:
        """True when the final mp3 is there: complete, with a real URL (`None.mp3` is the API's failure marker)."""
        url = self.audio_url.strip()
        return self.status is ClipStatus.COMPLETE and bool(url) and not url.endswith("/None.mp3")


class GenerationMode(StrEnum):
    DESCRIPTION = "description"
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What a member asked for. In description mode `prompt` is the description; in custom mode, the lyrics."""

    mode: GenerationMode
    prompt: str
    instrumental: bool = False
    model: str | None = None
    title: str | None = None
    tags: str | None = None
    duration_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asked, and where the result goes."""

    guild_id: int
    channel_id: int
    user_id: int


class JobStatus(StrEnum):
    """A job's life: reserved (quota held) -> submitted (API called) -> polling -> delivered or failed."""

    RESERVED = "reserved"
    SUBMITTED = "submitted"
    POLLING = "polling"
    DELIVERED = "delivered"
    FAILED = "failed"

    @property
    def is_finished(self) -> bool:
        return self in (JobStatus.DELIVERED, JobStatus.FAILED)


class FailureReason(StrEnum):
    """Why a job ended without delivering everything; stored on the job row."""

    API_AUTH = "api_auth"
    API_CREDITS = "api_credits"
    API_RATE_LIMITED = "api_rate_limited"
    API_INVALID_REQUEST = "api_invalid_request"
    API_UNAVAILABLE = "api_unavailable"
    API_BAD_RESPONSE = "api_bad_response"
    API_TIMEOUT = "api_timeout"
    API_CONTENT_POLICY = "api_content_policy"
    API_MODEL_GONE = "api_model_gone"
    CLIPS_FAILED = "clips_failed"
    DEADLINE = "deadline"
    NOT_ACKNOWLEDGED = "not_acknowledged"
    DELIVERY_FAILED = "delivery_failed"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class Job:
    """One paid generation request and everything needed to finish it after a restart."""

    id: int
    requester: Requester
    request: GenerationRequest
    status: JobStatus
    created_at: datetime
    backend: str
    charged: bool = True
    response_message_id: int | None = None
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    failure_reason: FailureReason | None = None
    failure_detail: str | None = None
    provider_task_id: str | None = None
    owner: str | None = None  # the process (INSTANCE_ID) holding the job's lease, or the last one that did
    cancel_requested_by: int | None = None  # the member who asked to cancel it
    queued: bool = False  # waiting in its server's line for a slot (max_concurrent running)
    erased: bool = False  # its words are gone (forget-me, DATA_RETENTION_DAYS): it cannot be made again


class VoteChoice(StrEnum):
    UP = "up"
    DOWN = "down"

    @property
    def value_in_db(self) -> int:
        return 1 if self is VoteChoice.UP else -1


class VoteAction(StrEnum):
    """What a click did: a new vote, the same vote clicked again (removed), or the other one (switched)."""

    ADDED = "added"
    REMOVED = "removed"
    SWITCHED = "switched"


@dataclass(frozen=True, slots=True)
class VoteTally:
    up: int = 0
    down: int = 0

    @property
    def score(self) -> int:
        return self.up - self.down


@dataclass(frozen=True, slots=True)
class PostedClip:
    """A delivered clip with what the voting screens show: where it is, who asked, and its votes."""

    job_id: int
    position: int
    clip_id: str
    title: str
    lyrics: str
    guild_id: int
    channel_id: int
    message_id: int
    requester_id: int
    delivered_at: datetime
    tally: VoteTally


UNLIMITED = -1
"""The sentinel for "no limit" in every count limit; 0 switches generation off."""

MAX_COOLDOWN_SECONDS = 604_800
"""The longest cooldown a moderator can set (7 days)."""

FORGOTTEN_MEMBER = 0
"""Who a request, its ledger rows and a cancel name once their member asked to be forgotten; no Discord id is 0."""


@dataclass(frozen=True, slots=True)
class Windows:
    """The UTC day and calendar month a moment falls in, and when each ends (when their limits reset)."""

    day_start: datetime
    month_start: datetime

    @classmethod
    def at(cls, moment: datetime) -> Windows:
        day_start = start_of_utc_day(moment)
        return cls(day_start, day_start.replace(day=1))

    @property
    def next_day(self) -> datetime:
        return self.day_start + timedelta(days=1)

    @property
    def next_month(self) -> datetime:
        return (self.month_start + timedelta(days=32)).replace(day=1)


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    """A server's spending limits. Counts use -1 for unlimited and 0 for off; cooldown is in seconds."""

    daily: int
    monthly: int
    per_member_daily: int
    cooldown_seconds: int
    max_concurrent: int
    max_queued: int = 0  # requests waiting for a slot when max_concurrent are running (0: refused instead)


LIMIT_NAMES: tuple[str, ...] = (
    "daily",
    "monthly",
    "per_member_daily",
    "cooldown_seconds",
    "max_concurrent",
    "max_queued",
)


NO_CEILINGS = QuotaLimits(
    daily=UNLIMITED,
    monthly=UNLIMITED,
    per_member_daily=UNLIMITED,
    cooldown_seconds=0,
    max_concurrent=UNLIMITED,
    max_queued=UNLIMITED,
)
"""Ceilings that let a server be given anything; cooldowns never have a ceiling."""

CEILING_NAMES: tuple[str, ...] = ("daily", "monthly", "per_member_daily", "max_concurrent", "max_queued")


@dataclass(frozen=True, slots=True)
class OperatorLimits:
    """What the operator allows all servers together: a bot-wide budget per UTC day and month, ceilings no
    moderator can pass (-1 = none), and the only servers allowed to generate (empty = every server)."""

    global_daily: int = UNLIMITED
    global_monthly: int = UNLIMITED
    ceilings: QuotaLimits = NO_CEILINGS
    allowed_guilds: frozenset[int] = frozenset()

    def allows(self, guild_id: int) -> bool:
        return not self.allowed_guilds or guild_id in self.allowed_guilds

    @property
    def has_budget(self) -> bool:
        """A bot-wide daily or monthly budget is set (every reservation then checks the whole bot's use)."""
        return self.global_daily != UNLIMITED or self.global_monthly != UNLIMITED

    def ceiling(self, name: str) -> int:
        """The most `name` may be in any server; -1 when there is no ceiling (always for cooldowns)."""
        return getattr(self.ceilings, name) if name in CEILING_NAMES else UNLIMITED


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """The bot-wide budget (-1 = none), what all servers together used of it today and this month, and what is
    left (None = no budget), as the reserving statement's SQL computes it."""

    daily: int = UNLIMITED
    monthly: int = UNLIMITED
    used_today: int = 0
    used_month: int = 0
    left_today: int | None = None
    left_month: int | None = None

    @property
    def is_set(self) -> bool:
        return self.daily != UNLIMITED or self.monthly != UNLIMITED


@dataclass(frozen=True, slots=True)
class GuildLimits:
    """The limits in force for a server (ceilings applied), which of them a moderator set, and who changed
    them last. `chosen` holds the values before the ceilings: what moderators set, or the defaults."""

    limits: QuotaLimits
    overridden: frozenset[str]
    updated_by: int | None = None
    updated_at: datetime | None = None
    chosen: QuotaLimits | None = None
    ceilings: QuotaLimits = NO_CEILINGS

    @property
    def configured(self) -> QuotaLimits:
        return self.chosen or self.limits


@dataclass(frozen=True, slots=True)
class QuotaSnapshot:
    """A member's standing against every limit, read by the same SQL expressions that decide a reservation: the
    limits in force, the counts, what is left under each count limit (None = unlimited) and when their cooldown
    ends (None = ready now)."""

    limits: QuotaLimits
    blocked: bool
    block_reason: str | None
    member_today: int
    server_today: int
    server_month: int
    running: int
    member_today_left: int | None
    server_today_left: int | None
    server_month_left: int | None
    cooldown_ends: datetime | None
    budget: BudgetStatus = BudgetStatus()
    queued: int = 0  # requests waiting in the server's line


@dataclass(frozen=True, slots=True)
class LimitChange:
    name: str
    old: int
    new: int


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Generations in a period, counted from the job rows; tokens are for the charged ones."""

    requested: int
    delivered: int
    failed: int
    refunded: int
    running: int
    charged: int
    charged_by_backend: tuple[tuple[str, int], ...]
    top_members: tuple[tuple[int, int], ...]
    budget: BudgetStatus = BudgetStatus()
    """The bot-wide budget today and this month (all servers together, numbers only)."""
    queued: int = 0  # of `running`, how many wait in the server's line


@dataclass(frozen=True, slots=True)
class BlockedPhrase:
    phrase: str  # as the moderator wrote it
    words: str  # normalised (bot/rules.py normalise_phrase): what is matched and what makes it unique
    added_by: int
    added_at: datetime
