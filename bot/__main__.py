"""Composition root: settings -> logging -> one aiohttp session + storage -> services -> MusicBot -> run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import discord
from pydantic import ValidationError
from pydantic_settings import SettingsError

from bot.app import MusicBot, Services
from bot.backends import Capabilities, create_backend, create_downloader, serve_backend
from bot.backends.fetch_policy import make_connector
from bot.backends.metered import MeteredBackend, metered_download
from bot.callbacks import CallbackAddresses, shared_secret
from bot.clock import Clock, utc_now
from bot.contests import CommunityLoop, ContestService
from bot.doctor import run_doctor
from bot.hall_of_fame import HallOfFameService
from bot.health import CallbackReceiver, HealthChecks, serving
from bot.log_format import formatter
from bot.loop_monitor import LoopStallMonitor
from bot.metrics import Metrics
from bot.privacy import PrivacyService
from bot.quota import QuotaService
from bot.retry import Backoff
from bot.rules import BlocklistFileError, ModerationRules, OperatorBlocklist
from bot.runtime import JobRuntime
from bot.runtime.retention import DataRetention
from bot.settings import Settings
from bot.storage import BotStateStore, JobStore, QuotaStore, VoteStore, open_database
from bot.storage.contests import ContestStore
from bot.storage.coordination import CoordinationStore
from bot.storage.database import DatabaseOpenError, MigrationError, is_postgres_url
from bot.storage.erasure import ErasureStore
from bot.storage.hall_of_fame import HallOfFameStore
from bot.storage.privacy import PrivacyStore
from bot.storage.rules import RuleStore
from bot.voting import VotingService

log = logging.getLogger("bot")


def describe_settings_error(error: ValidationError) -> str:
    """One line naming each bad variable, never echoing its value."""
    problems = []
    for item in error.errors():
        variable = str(item["loc"][0]).upper() if item["loc"] else ""  # not "_1": the position in a list
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            problems.append(f"{variable} is not set (put it in the environment or in .env)")
        elif item["type"] == "extra_forbidden":
            problems.append(f"{variable} is not a setting this bot knows (check the spelling in .env)")
        elif variable:
            problems.append(f"{variable} is invalid: {message}")
        else:
            problems.append(message)
    return "configuration error: " + "; ".join(problems)


def configure_logging(level: str, kind: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(kind))
    logging.basicConfig(level=level, handlers=[handler])
    logging.getLogger("discord").setLevel(max(logging.getLevelName(level), logging.INFO))


class WorkFolderError(RuntimeError):
    """The downloads folder cannot be created or emptied."""


def prepare_temp_dir(folder: Path) -> Path:
    """Creates the downloads folder and empties it: files left there belong to a process that was killed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        left = [entry for entry in folder.iterdir() if entry.is_file() or entry.is_symlink()]
        for entry in left:
            entry.unlink(missing_ok=True)
    except OSError as error:
        raise WorkFolderError(f"cannot use the downloads folder {folder}: {error.strerror or error}") from error
    if left:
        log.info("removed %d leftover download(s) from %s", len(left), folder)
    return folder


@asynccontextmanager
async def build_bot(settings: Settings, *, clock: Clock = utc_now) -> AsyncIterator[MusicBot]:
    """Builds every part in order and closes them in reverse; the one place that knows how they fit."""
    async with (
        open_database(
            settings.database_url,
            pool_size=settings.database_pool_size,
            # A transaction left idle by a stopped process ends well before its jobs' leases do.
            idle_transaction_timeout=settings.job_lease_seconds / 2,
        ) as database,
        # What the backend runs itself (the sandbox's file server): its base URL is then where that listens.
        serve_backend(settings.backend_config()) as backend_config,
        # Hostnames that resolve to private addresses are refused at connect time (DNS rebinding), except the
        # backend's own host: a self-hosted backend legitimately lives on localhost.
        aiohttp.ClientSession(raise_for_status=False, connector=make_connector([backend_config.base_url])) as http,
    ):
        audio_dir = await asyncio.to_thread(prepare_temp_dir, settings.temp_audio_dir)
        metrics = Metrics(backend=settings.music_backend)
        backend = MeteredBackend(
            create_backend(http, backend_config), metrics, cost_per_generation=settings.cost_of(settings.music_backend)
        )
        rules = ModerationRules(
            RuleStore(database),
            await asyncio.to_thread(OperatorBlocklist, settings.blocklist_file),
            clock=clock,
            metrics=metrics,
        )
        quota = QuotaService(
            QuotaStore(database, defaults=settings.default_limits, operator=settings.operator_limits),
            clock=clock,
            metrics=metrics,
        )
        callbacks = await callback_addresses(settings, BotStateStore(database), backend.capabilities)
        runtime = JobRuntime(
            backend=backend,
            jobs=JobStore(database),
            quota=quota,
            download=metered_download(create_downloader(http, backend_config).download, metrics, backend.name),
            clock=clock,
            owner=settings.instance_id,
            audio_dir=audio_dir,
            wait_audio=settings.wait_audio,
            deadline_seconds=settings.generation_deadline_seconds,
            progress_interval=settings.progress_edit_interval_seconds,
            backoff=Backoff(attempts=settings.retry_attempts, base_delay=settings.retry_base_delay_seconds),
            poll_interval=settings.poll_interval_seconds,
            fast_poll_interval=settings.fast_poll_interval_seconds,
            poll_batch_size=settings.poll_batch_size,
            lease_seconds=settings.job_lease_seconds,
            redelivery_interval=settings.redelivery_interval_seconds,
            download_timeout=settings.download_timeout_seconds,
            own_origin=backend_config.base_url,
            check_request=rules.check_request,
            metrics=metrics,
            callback_url=callbacks.url_for if callbacks is not None else None,
            retention=DataRetention(
                ErasureStore(database),
                clock=clock,
                days=settings.data_retention_days,
                cooldown_horizon=settings.cooldown_horizon,
                interval=settings.retention_interval_seconds,
            ),
        )
        contests = ContestService(ContestStore(database), clock=clock, owner=settings.instance_id)
        hall_of_fame = HallOfFameService(HallOfFameStore(database), clock=clock, owner=settings.instance_id)
        community = CommunityLoop(contests, hall_of_fame, interval=settings.community_interval_seconds)
        services = Services(
            runtime=runtime,
            quota=quota,
            voting=VotingService(VoteStore(database), clock=clock),
            privacy=PrivacyService(PrivacyStore(database), clock=clock, cooldown_horizon=settings.cooldown_horizon),
            state=BotStateStore(database),
            coordination=CoordinationStore(database, owner=settings.instance_id),
            rules=rules,
            contests=contests,
            hall_of_fame=hall_of_fame,
            clock=clock,
            metrics=metrics,
        )
        bot = MusicBot(settings=settings, services=services)
        metrics.watch(jobs=runtime.jobs.unfinished_by_state, latencies=lambda: bot.latencies)
        monitor = LoopStallMonitor(observe=metrics.loop_stalled)
        watching = asyncio.create_task(monitor.run(), name="loop-monitor")
        settling = asyncio.create_task(
            community.run(lambda: bot.community_target, bot.wait_until_ready), name="community-loop"
        )
        try:
            async with bot, runtime.running(bot.resume_target, bot.wait_until_ready), health(settings, bot, callbacks):
                yield bot
        finally:
            settling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await settling
            watching.cancel()
            monitor.report()


async def callback_addresses(
    settings: Settings, state: BotStateStore, capabilities: Capabilities
) -> CallbackAddresses | None:
    """Per-job callback addresses, for a backend whose provider pushes progress, when the bot has a public one."""
    if settings.public_base_url is None or not capabilities.pushes_progress:
        return None
    secret = await shared_secret(state)
    return CallbackAddresses(secret, base_url=settings.public_base_url, backend=settings.music_backend)


def health(
    settings: Settings, bot: MusicBot, callbacks: CallbackAddresses | None
) -> contextlib.AbstractAsyncContextManager[None]:
    """The /healthz, /metrics and callbacks server when HTTP_PORT is set (else nothing)."""
    if settings.http_port is None:
        return contextlib.nullcontext()
    checks = HealthChecks(
        gateway=bot.gateway_problem,
        database=lambda: bot.services.state.set("healthz", utc_now().isoformat()),
        heartbeat=bot.services.runtime.heartbeat_problem,
    )
    receiver = CallbackReceiver(callbacks, bot.services.runtime.wake) if callbacks is not None else None
    return serving(
        checks, host=settings.http_host, port=settings.http_port, metrics=bot.services.metrics, callbacks=receiver
    )


async def run(settings: Settings) -> None:
    """Runs until Discord refuses us or SIGTERM/SIGINT arrives; then stops taking commands, gives running jobs
    the grace period, leaves the rest resumable in the database, and closes everything cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with build_bot(settings) as bot:
        session = asyncio.create_task(bot.start(settings.discord_token.get_secret_value()), name="discord")
        stopping = asyncio.create_task(stop.wait(), name="signals")
        await asyncio.wait({session, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if session.done():
            stopping.cancel()
            session.result()  # Discord ended the session: raise what it said (a bad token, say)
            return
        log.info("shutdown requested; no new commands, %ss grace for running jobs", settings.shutdown_grace_seconds)
        runtime = bot.services.runtime
        runtime.stop_accepting()
        await runtime.drain(settings.shutdown_grace_seconds)
        await bot.close()
        await session
    log.info("stopped cleanly")


def doctor(settings: Settings) -> None:
    """`musicbot doctor`: prints what is right and wrong in plain words; exit status 1 if anything is wrong."""
    findings = asyncio.run(run_doctor(settings, discord_api_base=discord.http.Route.BASE))
    for finding in findings:
        print(finding)
    bad = [finding for finding in findings if not finding.ok]
    print("all good" if not bad else f"{len(bad)} problem(s) found")
    raise SystemExit(1 if bad else 0)


def migrate_db(settings: Settings, target: str) -> None:
    """`musicbot migrate-db --to postgresql://…`: copies the SQLite database DATABASE_URL names into an empty
    PostgreSQL database (with the bot stopped); exit status 1 with the reason if it cannot."""
    from bot.transfer import TransferError, copy_sqlite_to_postgres

    if settings.uses_postgres:
        print("musicbot: DATABASE_URL names PostgreSQL already; migrate-db copies from SQLite", file=sys.stderr)
        raise SystemExit(2)
    if not is_postgres_url(target):
        print("musicbot: --to must be a postgresql://user:password@host:5432/database URL", file=sys.stderr)
        raise SystemExit(2)
    try:
        report = asyncio.run(copy_sqlite_to_postgres(settings.database_path, target, now=utc_now()))
    except (TransferError, DatabaseOpenError, MigrationError) as error:
        print(f"musicbot: migrate-db: {error}; nothing was copied", file=sys.stderr)
        raise SystemExit(1) from None
    print(report.describe(target))
    raise SystemExit(0)


USAGE = "usage: musicbot [doctor | migrate-db --to postgresql://user:password@host:5432/database]"


def main() -> None:
    """The `musicbot` console script: `musicbot` runs the bot, `musicbot doctor` checks the set-up, `musicbot
    migrate-db --to URL` copies the SQLite database into PostgreSQL."""
    arguments = sys.argv[1:]
    migrating = len(arguments) == 3 and arguments[:2] == ["migrate-db", "--to"]
    if arguments not in ([], ["doctor"]) and not migrating:
        print(USAGE, file=sys.stderr)
        raise SystemExit(2)
    try:
        settings = Settings()  # type: ignore[call-arg]  # read from the environment and .env
    except ValidationError as error:
        print(f"musicbot: {describe_settings_error(error)}", file=sys.stderr)
        raise SystemExit(2) from None
    except SettingsError as error:  # a value that had to be JSON (COST_PER_GENERATION) was not
        found = re.search(r'field "(\w+)"', str(error))
        variable = found.group(1).upper() if found else "a setting"
        print(f"musicbot: configuration error: {variable} is invalid: it must be JSON", file=sys.stderr)
        raise SystemExit(2) from None
    if arguments == ["doctor"]:
        doctor(settings)
    configure_logging(settings.log_level, settings.log_format)
    if migrating:
        migrate_db(settings, arguments[2])
    try:
        asyncio.run(run(settings))
    except KeyboardInterrupt:
        pass
    except discord.LoginFailure:
        print(
            "musicbot: Discord refused DISCORD_TOKEN; copy the bot token again from the developer portal.",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    except discord.PrivilegedIntentsRequired:
        print("musicbot: Discord refused the requested gateway intents.", file=sys.stderr)
        raise SystemExit(1) from None
    except MigrationError as error:
        print(f"musicbot: database upgrade failed: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except DatabaseOpenError as error:
        print(f"musicbot: {error} (check DATABASE_URL and the folder's permissions)", file=sys.stderr)
        raise SystemExit(1) from None
    except WorkFolderError as error:
        print(f"musicbot: {error} (check DATA_DIR and the folder's permissions)", file=sys.stderr)
        raise SystemExit(1) from None
    except BlocklistFileError as error:
        print(f"musicbot: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
