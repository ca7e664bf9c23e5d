"""`GET /metrics` (HTTP_PORT) through the real bot: a delivered job, jobs by state, a quota refusal, upstream
errors and the delivery paths are counted, every series exists from the start, and no label carries user text
or ids."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.errors import (
    DownloadTooSlowError,
    MusicApiCreditsError,
    MusicApiError,
    MusicApiRateLimitedError,
    MusicApiUnavailableError,
    NotAudioError,
)
from bot.metrics import (
    DELIVERY_PATHS,
    DELIVERY_ROUTES,
    ERROR_KINDS,
    JOB_OUTCOMES,
    JOB_STATES,
    OTHER_LIMIT,
    REFUSAL_LIMITS,
    RULES,
    UPSTREAM_KINDS,
    Metrics,
    error_kind,
)
from tests.fakes.discord_models import DEFAULT_MEMBER_PERMISSIONS, MANAGE_GUILD
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import ClipTimings, FakeMusicApi
from tests.harness import RunningBot, running_bot
from tests.test_health import free_port

BACKEND = "aimlapi-suno"
UNFINISHED = ("submitted", "polling")

Labels = frozenset[tuple[str, str]]


class Scrape:
    """One answer of /metrics, parsed: every sample's value by its name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = list(text_string_to_metric_families(text))
        self.samples: dict[tuple[str, Labels], float] = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in self.families
            for sample in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        return self.samples[(name, frozenset(labels.items()))]

    def has(self, name: str, **labels: str) -> bool:
        return (name, frozenset(labels.items())) in self.samples

    def total(self, name: str, **labels: str) -> float:
        """The sum over every series of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(value for (sample, have), value in self.samples.items() if sample == name and wanted <= have)


async def scrape(port: int) -> Scrape:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return Scrape(await response.text())


async def scrape_until(port: int, condition: Callable[[Scrape], bool], timeout: float = 15) -> Scrape:
    deadline = time.monotonic() + timeout
    while True:
        scraped = await scrape(port)
        if condition(scraped):
            return scraped
        assert time.monotonic() < deadline, f"the metrics never showed it:\n{scraped.text}"
        await asyncio.sleep(0.05)


@asynccontextmanager
async def metered_bot(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path, **overrides: Any
) -> AsyncIterator[tuple[RunningBot, int]]:
    port = free_port()
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3", http_port=port, **overrides) as harness:
        await harness.bot.wait_until_ready()
        yield harness, port


async def set_quota(harness: RunningBot, **limits: int) -> None:
    moderator = harness.discord.add_member(
        harness.guild_id, name="mod", permissions=DEFAULT_MEMBER_PERMISSIONS | MANAGE_GUILD
    )
    interaction = await harness.discord.invoke_command(
        "music-admin",
        limits,
        subcommand="quota",
        guild_id=harness.guild_id,
        channel_id=harness.channel_id,
        user_id=moderator,
    )
    await harness.discord.wait_for(lambda: bool(interaction.callbacks))


async def test_every_series_exists_at_zero_from_the_start(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with metered_bot(discord_fake, api, tmp_path) as (_, port):
        scraped = await scrape(port)
    for state in JOB_STATES:
        assert scraped.value("musicbot_jobs", state=state) == 0
    for outcome in JOB_OUTCOMES:
        assert scraped.value("musicbot_jobs_finished_total", outcome=outcome) == 0
    for limit in (*REFUSAL_LIMITS, OTHER_LIMIT):
        assert scraped.value("musicbot_quota_refusals_total", limit=limit) == 0
    for path in DELIVERY_PATHS:
        for route in DELIVERY_ROUTES:
            assert scraped.value("musicbot_deliveries_total", path=path, route=route) == 0
    for kind in UPSTREAM_KINDS:
        assert scraped.value("musicbot_upstream_requests_total", backend=BACKEND, kind=kind) == 0
        for error in ERROR_KINDS:
            assert scraped.value("musicbot_upstream_errors_total", backend=BACKEND, kind=kind, error=error) == 0
    assert scraped.value("musicbot_generations_total", backend=BACKEND) == 0
    assert scraped.value("musicbot_generation_cost_total", backend=BACKEND) == 0
    assert scraped.value("musicbot_submit_to_first_clip_seconds_count", backend=BACKEND) == 0
    assert scraped.value("musicbot_clip_complete_to_posted_seconds_count", backend=BACKEND) == 0
    assert scraped.has("musicbot_gateway_latency_seconds", shard="0")
    assert scraped.value("musicbot_event_loop_stall_seconds_count") > 0  # the monitor wakes every 50 ms


async def test_a_delivered_job_is_counted_from_submit_to_its_two_songs(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with metered_bot(discord_fake, api, tmp_path) as (harness, port):
        final = await harness.finished(await harness.music("a delivered song"))
        assert final.content.startswith("✅")
        scraped = await scrape(port)
    assert scraped.value("musicbot_generations_total", backend=BACKEND) == 1
    assert scraped.value("musicbot_generation_cost_total", backend=BACKEND) == harness.settings.cost_of(BACKEND)
    assert scraped.value("musicbot_deliveries_total", path="attachment", route="interaction") == 2
    assert scraped.total("musicbot_deliveries_total") == 2
    assert scraped.value("musicbot_jobs_finished_total", outcome="delivered") == 1
    assert scraped.total("musicbot_jobs_finished_total") == 1
    assert scraped.value("musicbot_submit_to_first_clip_seconds_count", backend=BACKEND) == 1
    assert scraped.value("musicbot_clip_complete_to_posted_seconds_count", backend=BACKEND) == 2
    assert scraped.value("musicbot_upstream_requests_total", backend=BACKEND, kind="generate") == 1
    assert scraped.value("musicbot_upstream_requests_total", backend=BACKEND, kind="download") == 2
    assert scraped.total("musicbot_upstream_errors_total") == 0
    assert scraped.total("musicbot_quota_refusals_total") == 0
    assert scraped.total("musicbot_jobs") == 0  # finished: none left unfinished


async def test_jobs_by_state_show_the_running_one_and_the_one_waiting_in_line(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=2.0)
    limits = {"default_max_concurrent": 1, "default_max_queued": 5}
    async with metered_bot(discord_fake, api, tmp_path, **limits) as (harness, port):
        first = await harness.music("the first in line")
        second = await harness.music("the second in line")
        scraped = await scrape_until(
            port,
            lambda s: (
                s.value("musicbot_jobs", state="queued") == 1
                and sum(s.value("musicbot_jobs", state=state) for state in UNFINISHED) == 1
            ),
        )
        assert scraped.value("musicbot_jobs", state="reserved") == 0
        for interaction in (first, second):
            await harness.finished(interaction, timeout=30)
        scraped = await scrape(port)
    assert scraped.total("musicbot_jobs") == 0
    assert scraped.value("musicbot_jobs_finished_total", outcome="delivered") == 2


async def test_a_quota_refusal_is_counted_by_its_limit(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with metered_bot(discord_fake, api, tmp_path) as (harness, port):
        await set_quota(harness, daily=0)
        refused = await harness.music("a song the server switched off")
        await harness.discord.wait_for(lambda: bool(refused.callbacks))
        assert refused.ephemeral
        scraped = await scrape(port)
    assert scraped.value("musicbot_quota_refusals_total", limit="daily") == 1
    assert scraped.total("musicbot_quota_refusals_total") == 1
    assert scraped.value("musicbot_upstream_requests_total", backend=BACKEND, kind="generate") == 0
    assert scraped.value("musicbot_generations_total", backend=BACKEND) == 0


async def test_upstream_errors_are_counted_by_kind_and_failed_downloads_post_links(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with metered_bot(discord_fake, api, tmp_path) as (harness, port):
        api.fail_with_gateway_error("generate", 429)  # nothing created: sent again
        api.fail_next("audio", status=500, body="Internal", content_type="text/plain", times=50)
        final = await harness.finished(await harness.music("a song from a broken file host"), timeout=30)
        assert final.content.startswith("✅")
        scraped = await scrape(port)
    assert scraped.value("musicbot_upstream_requests_total", backend=BACKEND, kind="generate") == 2
    assert scraped.value("musicbot_upstream_errors_total", backend=BACKEND, kind="generate", error="rate_limited") == 1
    assert scraped.total("musicbot_upstream_errors_total", kind="generate") == 1
    assert scraped.value("musicbot_generations_total", backend=BACKEND) == 1  # the accepted one only
    downloads = scraped.value("musicbot_upstream_requests_total", backend=BACKEND, kind="download")
    assert downloads >= 2  # each clip, retried
    assert scraped.value("musicbot_upstream_errors_total", backend=BACKEND, kind="download", error="server_error") == (
        downloads
    )
    assert scraped.value("musicbot_deliveries_total", path="link", route="interaction") == 2
    assert scraped.value("musicbot_deliveries_total", path="attachment", route="interaction") == 0


async def test_a_dead_interaction_token_is_counted_as_the_channel_fallback(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with metered_bot(discord_fake, api, tmp_path) as (harness, port):
        discord_fake.fail_next("followup", status=404, code=10015)  # Unknown Webhook: the token is gone
        await harness.finished(await harness.music("a song for the channel"))
        await harness.discord.wait_for(
            lambda: len([message for message in discord_fake.messages(harness.channel_id) if message.embeds]) == 2
        )
        scraped = await scrape(port)
    assert scraped.value("musicbot_deliveries_total", path="attachment", route="channel_fallback") == 2
    assert scraped.total("musicbot_deliveries_total") == 2


async def test_no_label_carries_user_text_or_ids(discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path) -> None:
    prompt = "zebra-lullaby-7781 under a violet moon"
    allowed = {
        "backend": {BACKEND},
        "kind": set(UPSTREAM_KINDS),
        "error": set(ERROR_KINDS),
        "limit": {*REFUSAL_LIMITS, OTHER_LIMIT},
        "rule": {*RULES, OTHER_LIMIT},
        "path": set(DELIVERY_PATHS),
        "route": set(DELIVERY_ROUTES),
        "outcome": set(JOB_OUTCOMES),
        "state": set(JOB_STATES),
    }
    async with metered_bot(discord_fake, api, tmp_path) as (harness, port):
        await harness.finished(await harness.music(prompt))
        await set_quota(harness, per_member_daily=1)
        refused = await harness.music(prompt)
        await harness.discord.wait_for(lambda: bool(refused.callbacks))
        scraped = await scrape(port)
        jobs = await harness.query("SELECT id FROM jobs")
        clips = await harness.query("SELECT id, message_id FROM clips")
        shards = {str(shard) for shard, _ in harness.bot.latencies}
    assert scraped.value("musicbot_quota_refusals_total", limit="per_member_daily") == 1
    ids = {harness.guild_id, harness.channel_id, harness.member_id, *(row["id"] for row in jobs)}
    ids |= {row["message_id"] for row in clips}
    for word in ("zebra", "lullaby", "violet", *(str(row["id"]) for row in clips), "http"):
        assert word not in scraped.text.lower()
    for family in scraped.families:
        for sample in family.samples:
            for name, value in sample.labels.items():
                if name == "le":  # a histogram's bucket bound
                    float(value)
                elif name == "shard":
                    assert value in shards
                else:
                    assert value in allowed[name], (sample.name, name, value)
                assert value not in {str(each) for each in ids}


def every_subclass(cls: type[MusicApiError]) -> set[type[MusicApiError]]:
    return {cls}.union(*(every_subclass(sub) for sub in cls.__subclasses__()))


def test_every_upstream_error_is_named_by_one_of_the_fixed_kinds() -> None:
    kinds = {error: error_kind(error("detail")) for error in every_subclass(MusicApiError)}
    assert set(kinds.values()) <= set(ERROR_KINDS)
    assert kinds[MusicApiRateLimitedError] == "rate_limited"
    assert kinds[DownloadTooSlowError] == "timeout"
    assert kinds[MusicApiUnavailableError] == "server_error"
    assert kinds[NotAudioError] == "bad_answer"
    assert kinds[MusicApiCreditsError] == "refused"


async def test_a_database_that_does_not_answer_leaves_only_the_jobs_out() -> None:
    async def locked() -> dict[str, int]:
        raise TimeoutError

    metrics = Metrics(backend=BACKEND)
    metrics.watch(jobs=locked, latencies=lambda: [(0, 0.04), (1, float("inf"))])
    scraped = Scrape((await metrics.render()).decode())
    assert not scraped.has("musicbot_jobs", state="polling")
    assert scraped.value("musicbot_gateway_latency_seconds", shard="1") == float("inf")
    assert scraped.value("musicbot_generations_total", backend=BACKEND) == 0
    assert Metrics().registry is not metrics.registry  # several bots in one process count apart
