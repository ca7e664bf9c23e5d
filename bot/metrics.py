"""Prometheus metrics: what the bot counts, in a registry of its own, and the text that `GET /metrics` serves.

Every label value comes from a small fixed set (a backend name, a request kind, a limit, a delivery path, a job
state, a shard number); never user text, member, guild or job ids, or URLs. Each series that can be named in
advance exists from the start with the value 0, so alerts can be written before anything happens.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from bot.errors import (
    MusicApiBadResponseError,
    MusicApiError,
    MusicApiRateLimitedError,
    MusicApiTimeoutError,
    MusicApiUnavailableError,
    NotAudioError,
    UnsafeUrlError,
)
from bot.models import LIMIT_NAMES, FailureReason, JobStatus

log = logging.getLogger(__name__)

UpstreamKind = Literal["generate", "poll", "download"]
UPSTREAM_KINDS: tuple[UpstreamKind, ...] = ("generate", "poll", "download")
# What went wrong upstream, in the few words an alert needs; `refused` is every 4xx that is not a rate limit
# (the key, the credits, the body, the content policy, a model gone).
ERROR_KINDS = ("rate_limited", "refused", "server_error", "timeout", "bad_answer")
REFUSAL_LIMITS = ("allowed_guilds", "blocked", *LIMIT_NAMES, "global_daily", "global_monthly")
OTHER_LIMIT = "other"
# The moderators' rules (bot/rules.py): a phrase of the server's list, of BLOCKLIST_FILE, or a channel not listed.
RULES = ("server_phrase", "operator_phrase", "channel")
DeliveryPath = Literal["attachment", "link"]
# interaction: through the /music token; channel: the bot's own post (a resumed job, or several processes
# sharing PostgreSQL); channel_fallback: the token had died or expired, so the channel instead.
DeliveryRoute = Literal["interaction", "channel", "channel_fallback"]
DELIVERY_PATHS: tuple[DeliveryPath, ...] = ("attachment", "link")
DELIVERY_ROUTES: tuple[DeliveryRoute, ...] = ("interaction", "channel", "channel_fallback")
JOB_STATES = ("queued", *(status.value for status in JobStatus if not status.is_finished))
JOB_OUTCOMES = ("delivered", "failed", "cancelled")

# Songs take from half a minute to several; the deadline is 10 minutes by default.
SUBMIT_TO_FIRST_CLIP_BUCKETS = (5, 10, 20, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600, 900)
COMPLETE_TO_POSTED_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
LOOP_STALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
JOBS_READ_SECONDS = 3.0  # a scrape does not wait longer for the database than /healthz does

JobCounts = Callable[[], Awaitable[Mapping[str, int]]]
ShardLatencies = Callable[[], Sequence[tuple[int, float]]]


def error_kind(error: MusicApiError) -> str:
    """The fixed word for what went wrong upstream."""
    if isinstance(error, MusicApiRateLimitedError):
        return "rate_limited"
    if isinstance(error, MusicApiTimeoutError):
        return "timeout"
    if isinstance(error, MusicApiBadResponseError | UnsafeUrlError | NotAudioError):
        return "bad_answer"  # a success status with nonsense, or a file address or file that is not a song
    if isinstance(error, MusicApiUnavailableError) or type(error) is MusicApiError:
        return "server_error"
    return "refused"


def job_outcome(status: JobStatus, reason: FailureReason | None) -> str:
    """How a finished job ended, in JOB_OUTCOMES: a cancelled one is `cancelled` whatever was posted."""
    return "cancelled" if reason is FailureReason.CANCELLED else status.value


class _ScrapeTimeCollector:
    """The values read when Prometheus asks: unfinished jobs by state (read from the database just before) and
    each shard's gateway latency."""

    def __init__(self) -> None:
        self.jobs: Mapping[str, int] | None = dict.fromkeys(JOB_STATES, 0)
        self.latencies: ShardLatencies = list

    def collect(self) -> Iterable[Metric]:
        jobs = GaugeMetricFamily(
            "musicbot_jobs",
            "Unfinished jobs in the database by state (every process sharing it); absent when it could not be read",
            labels=["state"],
        )
        if self.jobs is not None:
            for state in JOB_STATES:
                jobs.add_metric([state], self.jobs.get(state, 0))
        latency = GaugeMetricFamily(
            "musicbot_gateway_latency_seconds",
            "Time between a gateway HEARTBEAT and its ACK, per shard this process runs (+Inf before the first)",
            labels=["shard"],
        )
        for shard, seconds in self.latencies():
            latency.add_metric([str(shard)], seconds if not math.isnan(seconds) else math.inf)
        return [jobs, latency]


class Metrics:
    """The bot's metrics. Built once by the composition root and handed to the parts that count; owns its own
    registry, so several bots (in one test process) never share a counter."""

    content_type = CONTENT_TYPE_PLAIN_0_0_4

    def __init__(self, *, backend: str | None = None) -> None:
        """`backend`: the configured one, whose series exist from the start."""
        self.registry = CollectorRegistry()
        registry = self.registry
        self._upstream_requests = Counter(
            "musicbot_upstream_requests",
            "Requests to the music service (and its file host) by backend and kind, failed ones included",
            ["backend", "kind"],
            registry=registry,
        )
        self._upstream_errors = Counter(
            "musicbot_upstream_errors",
            "Failed requests to the music service by backend, kind and what went wrong",
            ["backend", "kind", "error"],
            registry=registry,
        )
        self._generations = Counter(
            "musicbot_generations", "Paid generations the music service accepted", ["backend"], registry=registry
        )
        self._cost = Counter(
            "musicbot_generation_cost",
            "What the accepted generations cost, in the backend's own unit (COST_PER_GENERATION)",
            ["backend"],
            registry=registry,
        )
        self._refusals = Counter(
            "musicbot_quota_refusals", "Requests a spending limit refused, by limit", ["limit"], registry=registry
        )
        self._rule_refusals = Counter(
            "musicbot_rule_refusals",
            "Requests a moderators' rule refused before anything was reserved, by rule",
            ["rule"],
            registry=registry,
        )
        self._deliveries = Counter(
            "musicbot_deliveries",
            "Songs posted, as an attachment or a link, through the interaction or the channel",
            ["path", "route"],
            registry=registry,
        )
        self._finished = Counter(
            "musicbot_jobs_finished", "Jobs this process finished, by outcome", ["outcome"], registry=registry
        )
        self._first_clip = Histogram(
            "musicbot_submit_to_first_clip_seconds",
            "From the paid call to the job's first song posted",
            ["backend"],
            buckets=SUBMIT_TO_FIRST_CLIP_BUCKETS,
            registry=registry,
        )
        self._complete_to_posted = Histogram(
            "musicbot_clip_complete_to_posted_seconds",
            "From the moment a song was seen complete to its post (download and upload)",
            ["backend"],
            buckets=COMPLETE_TO_POSTED_BUCKETS,
            registry=registry,
        )
        self._loop_stall = Histogram(
            "musicbot_event_loop_stall_seconds",
            "How late the event loop woke up, measured every 50 ms",
            buckets=LOOP_STALL_BUCKETS,
            registry=registry,
        )
        self._scraped = _ScrapeTimeCollector()
        registry.register(self._scraped)
        self._count_jobs: JobCounts | None = None
        self._start_at_zero(backend)

    def _start_at_zero(self, backend: str | None) -> None:
        for limit in (*REFUSAL_LIMITS, OTHER_LIMIT):
            self._refusals.labels(limit)
        for rule in RULES:
            self._rule_refusals.labels(rule)
        for path in DELIVERY_PATHS:
            for route in DELIVERY_ROUTES:
                self._deliveries.labels(path, route)
        for outcome in JOB_OUTCOMES:
            self._finished.labels(outcome)
        if backend is None:
            return
        for kind in UPSTREAM_KINDS:
            self._upstream_requests.labels(backend, kind)
            for error in ERROR_KINDS:
                self._upstream_errors.labels(backend, kind, error)
        self._generations.labels(backend)
        self._cost.labels(backend)
        self._first_clip.labels(backend)
        self._complete_to_posted.labels(backend)

    def watch(self, *, jobs: JobCounts, latencies: ShardLatencies) -> None:
        """Where the scrape-time values come from: unfinished jobs by state, and (shard, seconds) pairs."""
        self._count_jobs = jobs
        self._scraped.latencies = latencies

    @contextmanager
    def upstream_request(self, backend: str, kind: UpstreamKind) -> Iterator[None]:
        """Counts one request of `kind` made inside the block, and its failure when a MusicApiError leaves it."""
        self._upstream_requests.labels(backend, kind).inc()
        try:
            yield
        except MusicApiError as error:
            self._upstream_errors.labels(backend, kind, error_kind(error)).inc()
            raise

    def generation_accepted(self, backend: str, cost: int) -> None:
        self._generations.labels(backend).inc()
        self._cost.labels(backend).inc(cost)

    def quota_refused(self, limit: str) -> None:
        self._refusals.labels(limit if limit in REFUSAL_LIMITS else OTHER_LIMIT).inc()

    def rule_refused(self, rule: str) -> None:
        self._rule_refusals.labels(rule if rule in RULES else OTHER_LIMIT).inc()

    def clip_delivered(self, path: DeliveryPath, route: DeliveryRoute) -> None:
        self._deliveries.labels(path, route).inc()

    def clip_posted(self, backend: str, *, since_complete: float, since_submit: float | None) -> None:
        """A song posted `since_complete` seconds after it was seen complete; `since_submit` when it is the
        job's first."""
        self._complete_to_posted.labels(backend).observe(since_complete)
        if since_submit is not None:
            self._first_clip.labels(backend).observe(since_submit)

    def job_finished(self, status: JobStatus, reason: FailureReason | None) -> None:
        self._finished.labels(job_outcome(status, reason)).inc()

    def loop_stalled(self, seconds: float) -> None:
        self._loop_stall.observe(max(0.0, seconds))

    async def render(self) -> bytes:
        """The text exposition, with the unfinished jobs read from the database now (they are left out when
        it does not answer within JOBS_READ_SECONDS; /healthz then says why)."""
        if self._count_jobs is not None:
            try:
                async with asyncio.timeout(JOBS_READ_SECONDS):
                    self._scraped.jobs = await self._count_jobs()
            except Exception as error:  # the rest of the metrics still answer
                log.warning("metrics: could not count the unfinished jobs (%s)", type(error).__name__)
                self._scraped.jobs = None
        return generate_latest(self.registry)
