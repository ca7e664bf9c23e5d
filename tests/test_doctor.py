"""`musicbot doctor` as an operator runs it: plain words about settings, database and both APIs, no spending."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

from bot.clock import utc_now
from bot.models import GenerationMode, GenerationRequest, QuotaLimits, Requester
from bot.quota import QuotaService
from bot.storage import QuotaStore, SqliteDatabase
from bot.storage.database import bundled_migrations
from bot.storage.postgres import PostgresDatabase
from tests.bot_process import BotProcess
from tests.fakes.acestep import FakeAceStepApi
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import FakeMusicApi


async def run_doctor(discord: FakeDiscord, api: FakeMusicApi, tmp_path: Path, **settings: object) -> tuple[int, str]:
    process = BotProcess(discord, api, tmp_path / "musicbot.sqlite3", tmp_path / "doctor", **settings)
    await process.start("doctor")
    assert process.process is not None
    code = await process.process.wait()
    return code, process.logs()


async def test_doctor_reports_a_healthy_setup_without_spending(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    code, output = await run_doctor(discord_fake, api, tmp_path)
    assert code == 0, output
    assert "music API (aimlapi-suno) at http://127.0.0.1" in output
    assert "answers and accepts the key" in output
    assert "Discord accepts DISCORD_TOKEN" in output
    assert "does not exist yet; it is created at the first start" in output
    assert "WARN  no bot-wide budget is set (GLOBAL_DAILY_LIMIT and GLOBAL_MONTHLY_LIMIT are -1)" in output
    assert "no ceilings (MAX_*_LIMIT are -1)" in output
    assert "allow-list: not set; every server the bot is invited to may generate" in output
    assert output.strip().endswith("all good")
    assert api.generate_calls() == 0
    assert api.api_key not in output
    assert discord_fake.bot_token not in output


async def test_doctor_names_a_wrong_key_and_an_old_database(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with SqliteDatabase.open(tmp_path / "musicbot.sqlite3", migrations=bundled_migrations()[:1]):
        pass
    code, output = await run_doctor(discord_fake, api, tmp_path, aiml_api_key="wrong-key-123")
    assert code == 1
    assert "refused AIML_API_KEY (401)" in output
    assert "upgrade(s) apply at next start" in output
    assert "wrong-key-123" not in output
    assert "1 problem(s) found" in output


async def test_doctor_checks_an_acestep_server_its_models_queue_and_key(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with FakeAceStepApi(api_key="ace-key-42") as ace:
        ace.paused = True
        ace.submit_directly()
        settings = {"music_backend": "acestep", "acestep_base_url": ace.base_url}
        code, output = await run_doctor(discord_fake, api, tmp_path, acestep_api_key="ace-key-42", **settings)
        assert code == 0, output
        assert f"music backend: acestep at {ace.base_url} (ACESTEP_API_KEY set)" in output
        assert f"music API (acestep) at {ace.base_url} answers and accepts the key" in output
        assert "models: acestep-v15-turbo (default), acestep-v15-turbo-shift3; queue 1 of 200 waiting" in output
        assert "ace-key-42" not in output
        code, output = await run_doctor(discord_fake, api, tmp_path / "keyless", **settings)
        assert code == 1
        assert "(ACESTEP_API_KEY not set)" in output  # optional for the bot, but this server wants one
        assert "refused ACESTEP_API_KEY (401)" in output
        assert len(ace.tasks) == 1  # the doctor made nothing


async def test_doctor_names_a_bad_discord_token(discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path) -> None:
    code, output = await run_doctor(discord_fake, api, tmp_path, discord_token="not-the-token")
    assert code == 1
    assert "Discord refused DISCORD_TOKEN" in output
    assert "not-the-token" not in output


async def test_doctor_shows_the_budget_used_and_left_without_changing_the_database(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    database = tmp_path / "musicbot.sqlite3"
    async with SqliteDatabase.open(database) as db:
        quota = QuotaService(QuotaStore(db, defaults=QuotaLimits(-1, -1, -1, 0, -1)), clock=utc_now)
        for guild_id in (1, 2):
            request = GenerationRequest(GenerationMode.DESCRIPTION, "spent today")
            await quota.reserve_generation(Requester(guild_id, 1, 1), request, backend="aimlapi-suno")
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    code, output = await run_doctor(
        discord_fake,
        api,
        tmp_path,
        global_daily_limit=5,
        global_monthly_limit=100,
        max_daily_limit=10,
        max_concurrent_limit=2,
        allowed_guild_ids="1, 2, 3",
    )
    assert code == 0, output
    assert "OK   bot-wide budget: today (UTC): 2 used of 5, 3 left; this month (UTC): 2 used of 100, 98 left" in output
    assert "ceilings no server can go above: daily 10, max_concurrent 2" in output
    assert "the default daily (20) is above its ceiling: servers get 10" in output
    assert "the default max_concurrent (4) is above its ceiling: servers get 2" in output
    assert "allow-list: 3 server(s) may generate (ALLOWED_GUILD_IDS)" in output
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before


async def test_doctor_checks_a_postgresql_database_without_logging_its_password(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path, postgres_url: str
) -> None:
    with_password = postgres_url.replace("postgres@", "postgres:hunter2-secret@", 1)  # trust auth ignores it
    code, output = await run_doctor(discord_fake, api, tmp_path, database_url=with_password)
    assert code == 0, output
    assert "is empty; the bot creates its schema at start" in output
    assert "hunter2-secret" not in output
    async with PostgresDatabase.open(postgres_url, migrations=bundled_migrations("postgresql")[:1]):
        pass
    code, output = await run_doctor(discord_fake, api, tmp_path, database_url=postgres_url)
    assert code == 0, output
    baseline, *later = bundled_migrations("postgresql")
    assert f"is at schema {baseline.version}; {len(later)} migration(s) pending, applied at next start" in output
    async with PostgresDatabase.open(postgres_url):
        pass
    code, output = await run_doctor(discord_fake, api, tmp_path, database_url=postgres_url, global_daily_limit=10)
    assert f"is up to date (schema {bundled_migrations('postgresql')[-1].version})" in output
    assert "today (UTC): 0 used of 10, 10 left" in output


async def test_doctor_names_an_unreachable_postgresql(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://bot:s3cret-pw@127.0.0.1:{port}/musicbot"
    code, output = await run_doctor(discord_fake, api, tmp_path, database_url=url)
    assert code == 1
    assert f"database postgresql://bot:***@127.0.0.1:{port}/musicbot cannot be reached" in output
    assert "s3cret-pw" not in output


async def test_doctor_checks_the_shard_settings_against_discords_recommendation(
    api: FakeMusicApi, tmp_path: Path
) -> None:
    async with FakeDiscord(shard_count=4) as discord:
        code, output = await run_doctor(discord, api, tmp_path, shard_count=2, shard_ids="1")
        assert code == 1
        assert "SHARD_COUNT 2 is below the 4 Discord recommends" in output
        assert "does not run shard 0: another process syncs the commands" in output
        code, output = await run_doctor(discord, api, tmp_path, shard_count=4, shard_ids="0-1")
        assert code == 0, output
        assert "sharding: 4 shard(s) in all (SHARD_COUNT); this process runs shards 0, 1" in output
