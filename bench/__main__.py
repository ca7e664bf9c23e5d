"""`uv run python -m bench`: drives the real bot process against the fake Discord and the fake music API on
127.0.0.1 and prints each figure next to its target (and writes them as JSON). `--smoke` runs it small."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.instruments import VOTED_SERVER_GUILD, VOTED_SERVER_NOW, TimedDiscord, TimedMusicApi, build_voted_server
from bot.models import GenerationMode, GenerationRequest, QuotaLimits, Requester
from bot.quota import QuotaService
from bot.storage import QuotaStore, SqliteDatabase, VoteStore
from bot.storage.coordination import IDENTIFY_SPACING
from bot.storage.database import bundled_migrations
from bot.storage.sqlite import Synchronous
from bot.voting import LeaderboardPeriod, VotingService
from tests.bot_process import BotProcess
from tests.fakes.music_api import ClipTimings
from tests.harness import World

MIB = 1024 * 1024


@dataclass
class Figure:
    name: str
    measured: str
    target: str
    met: bool | None  # None: informational


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": statistics.median(values) * 1000,
        "p95_ms": percentile(values, 0.95) * 1000,
        "max_ms": max(values) * 1000,
    }


class Bench:
    def __init__(
        self,
        *,
        jobs: int,
        clip_bytes: int,
        batch: int,
        workdir: Path,
        voted_clips: int,
        postgres_attempts: int,
        time_scale: float = 1.0,
        sandbox_takes: int = 12,
    ) -> None:
        self.jobs = jobs
        self.sandbox_takes = sandbox_takes
        self.voted_clips = voted_clips
        self.postgres_attempts = postgres_attempts
        self.time_scale = time_scale
        self.clip_bytes = clip_bytes
        self.batch = batch
        self.workdir = workdir
        self.database = workdir / "bench.sqlite3"
        self.figures: list[Figure] = []
        self.raw: dict[str, Any] = {}

    def add(self, name: str, measured: str, target: str, met: bool | None) -> None:
        self.figures.append(Figure(name, measured, target, met))

    async def run(self) -> None:
        async with (
            TimedDiscord(token_lifetime=3600) as discord,
            TimedMusicApi(audio_size=self.clip_bytes, wait_audio_timeout=0.5) as api,
        ):
            world = World.create(discord)
            members = [discord.add_member(world.guild_id, name=f"m{index}") for index in range(self.jobs)]
            settings = {
                "poll_interval_seconds": 0.5,
                "poll_batch_size": self.batch,
                "default_daily_limit": -1,
                "default_monthly_limit": -1,
                "default_per_member_daily": -1,
                "default_max_concurrent": -1,
                "generation_deadline_seconds": 300,
                "progress_edit_interval_seconds": 5,
                "log_level": "INFO",
                "http_timeout_seconds": 60,
            }
            bot = await self.measure_startup(discord, api, settings)
            try:
                await self.measure_delivery(discord, api, world, members, concurrency=1)
                await self.measure_delivery(discord, api, world, members, concurrency=self.jobs)
                self.measure_memory(bot)
            finally:
                assert bot.process is not None
                bot.process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(bot.process.wait(), 60)
            self.measure_loop_stall(bot)
            await self.measure_raw_transfer(discord, api, world)
        modes: tuple[Synchronous, ...] = ("FULL", "NORMAL")
        for synchronous in modes:
            await self.measure_reservations(synchronous)
        await self.measure_postgres_reservations()
        await self.measure_leaderboard(self.voted_clips)
        self.measure_sandbox()
        for jobs in (1, self.jobs):
            await self.measure_time_to_song(jobs)

    async def measure_time_to_song(self, jobs: int) -> None:
        """Complete at the API -> posted, with the default poll settings, clips done 20-60 s after submit."""
        from bench.time_to_song import measure

        measured = await measure(self.workdir, jobs=jobs, scale=self.time_scale)
        figures = summary(measured.delays)
        self.raw[f"time_to_song_{jobs}_jobs"] = {
            **figures,
            **{k: v for k, v in asdict(measured).items() if k != "delays"},
        }
        p50, p95 = figures["p50_ms"] / 1000, figures["p95_ms"] / 1000
        scaled = "" if self.time_scale == 1 else f" (times x{self.time_scale:g})"
        name = f"complete -> posted, {jobs} job{'s' if jobs > 1 else ''}, default polling{scaled} (p50 / p95 / max)"
        target_p50, target_p95 = 1.0 * self.time_scale, 2.0 * self.time_scale
        self.add(
            name,
            f"{p50:.2f} / {p95:.2f} / {figures['max_ms'] / 1000:.2f} s",
            f"p50 <= {target_p50:g} s, p95 <= {target_p95:g} s",
            p50 <= target_p50 and p95 <= target_p95,
        )
        self.add(
            f"fetch requests/min for them (fixed {10 * self.time_scale:g}-s ticks would make; the bound)",
            f"{measured.requests_per_minute:.0f}",
            f"({measured.fixed_ticks_per_minute:.0f}; <= {measured.bound_per_minute:.0f})",
            measured.requests_per_minute <= measured.bound_per_minute,
        )

    async def measure_postgres_reservations(self) -> None:
        """The same reservations on PostgreSQL from two processes: one server (all wait for its lock), and 50."""
        admin_url = os.environ.get("MUSICBOT_TEST_POSTGRES_URL")
        if not admin_url:
            self.add("PostgreSQL reservations/s, 2 processes", "skipped", "(no MUSICBOT_TEST_POSTGRES_URL)", None)
            return
        from bench.postgres import PROCESSES, measure
        from tests.postgres import create_database, drop_database

        for guilds in (1, 50):
            url = await create_database(admin_url)
            try:
                measured = await measure(url, attempts=self.postgres_attempts, guilds=guilds)
            finally:
                await drop_database(admin_url, url)
            where = "one server" if guilds == 1 else f"{guilds} servers"
            self.raw[f"postgres_reservations_{guilds}"] = asdict(measured)
            self.add(
                f"PostgreSQL reservations/s, {PROCESSES} processes, {where}",
                f"{measured.per_second:,.0f}/s",
                ">= 1,000/s",
                measured.per_second >= 1000,
            )
            self.add(f"PostgreSQL over-grants, {where}", str(measured.over), "0", measured.over == 0)

    def measure_sandbox(self) -> None:
        """CPU per sandbox take (synthesis and mp3 encoding) and per cover: a few hundred milliseconds at most."""
        from bench.sandbox import cover_cost, take_costs

        for cost in take_costs(takes=self.sandbox_takes):
            self.raw[f"sandbox_take_{cost.seconds}s"] = asdict(cost)
            self.add(
                f"sandbox: CPU per {cost.seconds}-s take (median, worst)",
                f"{cost.median * 1000:.0f} ms, {cost.worst * 1000:.0f} ms",
                "<= 300 ms",
                cost.worst <= 0.3,
            )
        cover = cover_cost(covers=self.sandbox_takes)
        self.add("sandbox: CPU per cover (median)", f"{cover * 1000:.0f} ms", "<= 100 ms", cover <= 0.1)

    async def measure_startup(self, discord: TimedDiscord, api: TimedMusicApi, settings: dict[str, Any]) -> BotProcess:
        """Process start to READY, on a new database (migrations, command sync) and again on the same one."""
        timings = []
        for run in ("cold", "warm"):
            identified = len(discord.identifies)
            bot = BotProcess(discord, api, self.database, self.workdir / run, **settings)
            started = time.perf_counter()
            await bot.start()
            await discord.wait_for(lambda: len(discord.identifies) > identified, timeout=60)  # noqa: B023
            await discord.wait_until_ready(timeout=60)
            timings.append(time.perf_counter() - started)
            if run == "cold":
                assert bot.process is not None
                bot.process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(bot.process.wait(), 60)
                # Discord allows one IDENTIFY per 5 s: a start sooner after the last one waits for its slot
                # (booked in the database), which is not start-up work.
                await asyncio.sleep(IDENTIFY_SPACING.total_seconds())
        cold, warm = timings
        self.raw["startup_seconds"] = {"cold": cold, "warm": warm}
        self.add("start-up to READY (warm / cold)", f"{warm:.2f} s / {cold:.2f} s", "< 1.5 s", warm < 1.5)
        return bot

    async def measure_delivery(
        self, discord: TimedDiscord, api: TimedMusicApi, world: World, members: list[int], *, concurrency: int
    ) -> None:
        """From the API first reporting a clip complete to Discord holding its upload in full."""
        api.timings = ClipTimings(queued_after=0.05, streaming_after=0.2, complete_after=2.5)
        first_fetch = len(api.fetches)
        first_upload = len(discord.uploads)
        first_clip = len(api.clips)
        interactions = await asyncio.gather(
            *(
                discord.invoke_command(
                    "music",
                    {"prompt": f"benchmark song {index}"},
                    guild_id=world.guild_id,
                    channel_id=world.channel_id,
                    user_id=members[index],
                )
                for index in range(concurrency)
            )
        )
        expected = 2 * concurrency
        await discord.wait_for(lambda: len(discord.uploads) - first_upload >= expected, timeout=600)
        assert all(not interaction.errors for interaction in interactions)
        clip_ids = list(api.clips)[first_clip:]
        footers = self.footers(clip_ids)
        arrived = {footer: at for at, footer, _ in discord.uploads[first_upload:]}
        delays = [arrived[footers[clip_id]] - api.reported_complete[clip_id] for clip_id in clip_ids]
        figures = summary(delays)
        self.raw[f"delivery_{concurrency}_jobs"] = figures
        self.raw[f"generate_calls_{concurrency}_jobs"] = api.generate_calls()
        self.add(
            f"delivery overhead, {concurrency} job{'s' if concurrency > 1 else ''} (p50 / p95 / max)",
            f"{figures['p50_ms']:.0f} / {figures['p95_ms']:.0f} / {figures['max_ms']:.0f} ms",
            "p50 <= 1.2x raw (at the most jobs)",
            None,
        )
        if concurrency > 1:
            self.measure_poll_requests(api.fetches[first_fetch:])

    def footers(self, clip_ids: list[str]) -> dict[str, str]:
        """clip id -> the footer the bot writes on its message ("Song N · job #M"), from its own database."""
        import sqlite3

        connection = sqlite3.connect(self.database)
        try:
            rows = connection.execute("SELECT id, job_id, position FROM clips").fetchall()
        finally:
            connection.close()
        by_clip = {clip_id: f"Song {position + 1} · job #{job_id}" for clip_id, job_id, position in rows}
        return {clip_id: by_clip[clip_id] for clip_id in clip_ids}

    def measure_poll_requests(self, fetches: list[tuple[float, list[str]]]) -> None:
        """Fetches come in bursts, one per poll tick; each burst should be ceil(pending ids / batch) requests."""
        ticks: list[list[list[str]]] = []
        last = -1.0
        for at, ids in fetches:
            if at - last > 0.2:
                ticks.append([])
            ticks[-1].append(ids)
            last = at
        per_tick = [len(tick) for tick in ticks]
        ideal = [math.ceil(len({i for batch in tick for i in batch}) / self.batch) for tick in ticks]
        busiest = max(range(len(ticks)), key=lambda index: per_tick[index]) if ticks else 0
        exact = per_tick == ideal
        generate_calls = self.raw[f"generate_calls_{self.jobs}_jobs"] - self.raw["generate_calls_1_jobs"]
        self.raw["poll_requests_per_tick"] = {"measured": per_tick, "ideal": ideal, "generate_calls": generate_calls}
        self.add(
            f"fetch-by-ids requests per tick, {self.jobs} jobs (busiest tick)",
            f"{per_tick[busiest] if ticks else 0} for {sum(len(b) for b in ticks[busiest]) if ticks else 0} ids",
            f"ceil(ids / {self.batch}) = {ideal[busiest] if ticks else 0} every tick",
            exact,
        )
        self.add(
            "generate calls for that many jobs",
            str(generate_calls),
            f"{self.jobs} (never repeated)",
            generate_calls == self.jobs,
        )

    def measure_memory(self, bot: BotProcess) -> None:
        assert bot.process is not None
        status = Path(f"/proc/{bot.process.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        peak = int(match.group(1)) / 1024 if match else float("nan")
        self.raw["peak_rss_mb"] = peak
        mb = self.clip_bytes / 1e6
        self.add(f"peak RSS of the bot, {self.jobs} jobs x 2 x {mb:g} MB", f"{peak:.0f} MB", "< 150 MB", peak < 150)

    def measure_loop_stall(self, bot: BotProcess) -> None:
        match = re.findall(r"longest event-loop stall: ([\d.]+) ms", bot.logs())
        stall = float(match[-1]) if match else float("nan")
        self.raw["longest_loop_stall_ms"] = stall
        self.add("longest event-loop stall in the bot", f"{stall:.0f} ms", "< 100 ms", stall < 100)

    async def measure_raw_transfer(self, discord: TimedDiscord, api: TimedMusicApi, world: World) -> None:
        """The same bytes downloaded from the fake API and uploaded to the fake Discord, nothing else."""
        clip_ids = list(api.clips)
        headers = {"Authorization": f"Bot {discord.bot_token}"}
        url = f"{discord.base_url}/api/v10/channels/{world.channel_id}/messages"

        async def transfer(session: aiohttp.ClientSession, clip_id: str) -> float:
            started = time.perf_counter()
            async with session.get(f"{api.base_url}/audio/{clip_id}.mp3") as response:
                data = await response.read()
            form = aiohttp.FormData()
            form.add_field("payload_json", json.dumps({"content": "raw"}), content_type="application/json")
            form.add_field("files[0]", data, filename="raw.mp3", content_type="audio/mpeg")
            async with session.post(url, data=form, headers=headers) as response:
                await response.read()
                assert response.status == 200, response.status
            return time.perf_counter() - started

        async with aiohttp.ClientSession() as session:
            single = [await transfer(session, clip_ids[index % len(clip_ids)]) for index in range(5)]
            many = await asyncio.gather(*(transfer(session, clip_ids[index]) for index in range(2 * self.jobs)))
        self.raw["raw_transfer_1"] = summary(single)
        self.raw[f"raw_transfer_{2 * self.jobs}"] = summary(list(many))
        raw_p50 = statistics.median(many)
        bot_p50 = self.raw[f"delivery_{self.jobs}_jobs"]["p50_ms"] / 1000
        ratio = bot_p50 / raw_p50
        self.raw["overhead_ratio"] = ratio
        self.add(
            f"raw download+upload, 1 / {2 * self.jobs} at once (p50)",
            f"{statistics.median(single) * 1000:.0f} / {raw_p50 * 1000:.0f} ms",
            "(reference)",
            None,
        )
        self.add(f"delivery p50 / raw p50 at {self.jobs} jobs", f"{ratio:.2f}x", "<= 1.2x", ratio <= 1.2)

    async def measure_reservations(
        self, synchronous: Synchronous, concurrency: int = 200, attempts: int = 4000
    ) -> None:
        """Quota reservations per second on a real SQLite file, 200 at a time, and grants past the limit; with
        synchronous FULL (the bot's: durable on power loss) or NORMAL (one fsync less per group commit)."""
        limit = attempts * 3 // 4
        limits = QuotaLimits(daily=limit, monthly=-1, per_member_daily=-1, cooldown_seconds=0, max_concurrent=-1)
        request = GenerationRequest(GenerationMode.DESCRIPTION, "bench")
        path = self.workdir / f"quota-{synchronous.lower()}.sqlite3"
        async with SqliteDatabase.open(path, synchronous=synchronous) as database:
            from bot.clock import utc_now

            quota = QuotaService(QuotaStore(database, defaults=limits), clock=utc_now)
            queue = list(range(attempts))
            granted = 0

            async def worker() -> None:
                nonlocal granted
                while queue:
                    user = queue.pop()
                    try:
                        await quota.reserve_generation(Requester(1, 1, user), request, backend="bench")
                        granted += 1
                    except Exception:  # refusals past the limit are expected
                        pass

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        rate = attempts / elapsed
        over = granted - limit
        figures = {"per_second": rate, "attempts": attempts, "granted": granted, "limit": limit}
        self.raw[f"reservations_{synchronous.lower()}"] = figures
        name = f"quota reservations/s, {concurrency} concurrent, synchronous={synchronous}"
        self.add(name, f"{rate:,.0f}/s", ">= 2,000/s", rate >= 2000)
        self.add(f"over-grants, synchronous={synchronous}", str(over), "0", over == 0)

    async def measure_leaderboard(self, clips: int, votes_per_clip: int = 30, queries: int = 5) -> None:
        """/music-top's query in one big server, every period, on a file built straight in SQLite before the
        kept tallies existed (so their migration backfills them, as on an upgrade)."""
        path = self.workdir / "leaderboard.sqlite3"
        before_tallies = [migration for migration in bundled_migrations() if migration.version < 8]
        async with SqliteDatabase.open(path, migrations=before_tallies):
            pass
        started = time.perf_counter()
        await asyncio.to_thread(build_voted_server, path, clips, votes_per_clip)
        built = time.perf_counter() - started
        started = time.perf_counter()
        async with SqliteDatabase.open(path) as database:
            migrated = time.perf_counter() - started
            voting = VotingService(VoteStore(database), clock=lambda: VOTED_SERVER_NOW)
            size = f"{clips:,} clips / {clips * votes_per_clip:,} votes"
            self.add(
                f"build, then migrate to kept tallies ({size})", f"{built:.1f} s, {migrated:.1f} s", "(reference)", None
            )
            self.raw["leaderboard"] = {"clips": clips, "votes": clips * votes_per_clip, "migration_s": migrated}
            for period in LeaderboardPeriod:
                timings = []
                for _ in range(queries):
                    started = time.perf_counter()
                    ranked = await voting.leaderboard(VOTED_SERVER_GUILD, period)
                    timings.append(time.perf_counter() - started)
                assert len(ranked) == 10
                self.raw["leaderboard"][period.value] = summary(timings)
                p50, worst = statistics.median(timings) * 1000, max(timings) * 1000
                name = f"/music-top query, {period.value}, {size} (p50 / max)"
                self.add(name, f"{p50:.0f} / {worst:.0f} ms", "< 100 ms", worst < 100)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        found = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = found.group(1).strip() if found else cpu
    except OSError:
        pass
    import os

    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--clip-mb", type=float, default=8.0)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--voted-clips", type=int, default=100_000, help="songs in the /music-top server (x30 votes)")
    parser.add_argument(
        "--smoke", action="store_true", help="a small, quick run (CI): 3 jobs of 0.25 MB clips, 2,000 voted songs"
    )
    parser.add_argument("--postgres-attempts", type=int, default=4000, help="reservations in the PostgreSQL run")
    parser.add_argument("--json", type=Path, default=Path("bench/results/latest.json"))
    args = parser.parse_args()
    if args.smoke:
        args.jobs, args.clip_mb, args.voted_clips, args.postgres_attempts = 3, 0.25, 2_000, 1_000
    with tempfile.TemporaryDirectory(prefix="musicbot-bench-") as folder:
        bench = Bench(
            jobs=args.jobs,
            clip_bytes=int(args.clip_mb * 1e6),
            batch=args.batch,
            workdir=Path(folder),
            voted_clips=args.voted_clips,
            postgres_attempts=args.postgres_attempts,
            time_scale=0.1 if args.smoke else 1.0,
            sandbox_takes=3 if args.smoke else 12,
        )
        asyncio.run(bench.run())
    print(f"machine: {machine()}")
    width = max(len(figure.name) for figure in bench.figures)
    for figure in bench.figures:
        verdict = {True: "met", False: "NOT MET", None: ""}[figure.met]
        print(f"{figure.name:<{width}}  {figure.measured:>22}  target {figure.target:<36} {verdict}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"machine": machine(), "figures": [asdict(f) for f in bench.figures], "raw": bench.raw}, indent=2)
    )
    print(f"written to {args.json}")
    sys.exit(0)


if __name__ == "__main__":
    main()
