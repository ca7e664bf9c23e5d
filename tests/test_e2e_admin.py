"""End to end: moderators' `/music-admin`, members' `/music-quota`, and limits enforced under concurrency."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cogs.quota_render import NOT_ALLOWED_MESSAGE
from tests.clock import FakeClock
from tests.fakes.discord_interactions import FakeInteraction
from tests.fakes.discord_models import DEFAULT_MEMBER_PERMISSIONS, MANAGE_GUILD
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import ClipTimings, FakeMusicApi
from tests.harness import RunningBot, World, running_bot

DEFERRED = 5


async def answered(harness: RunningBot, interaction: FakeInteraction) -> dict[str, Any]:
    await harness.discord.wait_for(lambda: bool(interaction.callbacks))
    data: dict[str, Any] = interaction.callbacks[0].get("data", {})
    return data


async def admin(harness: RunningBot, subcommand: str, user_id: int, **options: Any) -> FakeInteraction:
    return await harness.discord.invoke_command(
        "music-admin",
        options,
        subcommand=subcommand,
        guild_id=harness.guild_id,
        channel_id=harness.channel_id,
        user_id=user_id,
    )


async def admin_answer(harness: RunningBot, subcommand: str, user_id: int, **options: Any) -> dict[str, Any]:
    """A moderator's command and its answer, which is always private."""
    interaction = await admin(harness, subcommand, user_id, **options)
    data = await answered(harness, interaction)
    assert interaction.ephemeral
    return data


def moderator_of(harness: RunningBot) -> int:
    return harness.discord.add_member(
        harness.guild_id, name="mod", permissions=DEFAULT_MEMBER_PERMISSIONS | MANAGE_GUILD
    )


def observe_running_jobs_at_each_grant(database: Path) -> None:
    """A trigger in the bot's own database records, inside each granting transaction, how many of the server's
    jobs are running with the new one: exact, where timestamps taken before a write would not be."""
    connection = sqlite3.connect(database)
    try:
        connection.executescript(
            """CREATE TABLE observed (running INTEGER NOT NULL);
               CREATE TRIGGER observe_grant AFTER INSERT ON jobs BEGIN
                   INSERT INTO observed SELECT count(*) FROM jobs
                   WHERE guild_id = NEW.guild_id AND status IN ('reserved', 'submitted', 'polling');
               END;"""
        )
    finally:
        connection.close()


def fields(data: dict[str, Any]) -> dict[str, str]:
    return {field["name"]: field["value"] for field in data["embeds"][0]["fields"]}


async def test_member_without_manage_server_is_refused_and_nothing_changes(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3") as harness:
        assert "default_member_permissions" in str(discord_fake.find_command("music-admin", None))
        sneaky = discord_fake.add_member(harness.guild_id, name="sneaky")  # no Manage Server, as an override allows
        for subcommand, options in [
            ("quota", {"daily": 1000}),
            ("block", {"member": {"user": harness.member_id}}),
            ("usage", {}),
        ]:
            interaction = await admin(harness, subcommand, sneaky, **options)
            data = await answered(harness, interaction)
            assert interaction.ephemeral
            assert "You need the Manage Server permission" in data["content"]
        assert await harness.query("SELECT * FROM moderation_log") == []
        assert await harness.query("SELECT * FROM guild_limits") == []
        assert await harness.query("SELECT * FROM blocked_members") == []


async def test_moderator_sets_shows_and_audits_limits(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3") as harness:
        moderator = discord_fake.add_member(
            harness.guild_id, name="mod", permissions=DEFAULT_MEMBER_PERMISSIONS | MANAGE_GUILD
        )
        shown = await answered(harness, await admin(harness, "quota", moderator))
        assert "bot's defaults" in shown["embeds"][0]["description"]
        assert fields(shown)["Server per UTC day"] == "20 · default"

        changed = await answered(harness, await admin(harness, "quota", moderator, daily=1, max_concurrent=-1))
        assert fields(changed)["Server per UTC day"] == "20 → **1** · set here"
        assert fields(changed)["Running at once"] == "4 → **unlimited** · set here"
        assert f"<@{moderator}>" in changed["embeds"][0]["description"]

        first = await harness.music("the one song today")
        await harness.finished(first)
        second = await harness.music("one too many")
        refusal = await answered(harness, second)
        assert second.ephemeral
        assert "used all 1 of today's generations" in refusal["content"]

        log = await harness.query("SELECT actor_id, action, subject, old_value, new_value FROM moderation_log")
        assert log == [
            {"actor_id": moderator, "action": "set_limit", "subject": "daily", "old_value": "20", "new_value": "1"},
            {
                "actor_id": moderator,
                "action": "set_limit",
                "subject": "max_concurrent",
                "old_value": "4",
                "new_value": "-1",
            },
        ]
        usage = await answered(harness, await admin(harness, "usage", moderator, period="day"))
        figures = fields(usage)
        assert (figures["Requested"], figures["Delivered"], figures["Refunded"]) == ("1", "1", "0")
        assert figures["Spent"] == "aimlapi-suno: 1 x 157,500 = **157,500** AI/ML API tokens"
        assert f"<@{harness.member_id}>: 1 generation" in figures["Top members"]


async def test_block_and_unblock(discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path) -> None:
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3") as harness:
        moderator = discord_fake.add_member(
            harness.guild_id, name="mod", permissions=DEFAULT_MEMBER_PERMISSIONS | MANAGE_GUILD
        )
        member = {"user": harness.member_id}
        await answered(harness, await admin(harness, "block", moderator, member=member, reason="spamming"))
        refused = await harness.music("let me in")
        assert "blocked you" in (await answered(harness, refused))["content"]
        assert "spamming" in refused.callbacks[0]["data"]["content"]
        await answered(harness, await admin(harness, "unblock", moderator, member=member))
        accepted = await harness.music("thank you")
        await harness.finished(accepted)
        again = await answered(harness, await admin(harness, "unblock", moderator, member=member))
        assert "not blocked" in again["content"]
        log = await harness.query("SELECT action, subject, new_value FROM moderation_log ORDER BY id")
        assert log == [
            {"action": "block", "subject": str(harness.member_id), "new_value": "spamming"},
            {"action": "unblock", "subject": str(harness.member_id), "new_value": None},
        ]


async def test_music_quota_shows_what_is_left(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path, clock: FakeClock
) -> None:
    async with running_bot(
        discord_fake, api, tmp_path / "db.sqlite3", clock=clock, default_per_member_daily=3, default_cooldown_seconds=90
    ) as harness:
        await harness.finished(await harness.music("one"))
        interaction = await harness.command("music-quota")
        data = await answered(harness, interaction)
        assert interaction.ephemeral
        figures = fields(data)
        assert figures["This server today"].startswith("**19** of 20 left")
        assert figures["This server this month"].startswith("**299** of 300 left")
        assert figures["You today"].startswith("**2** of 3 left")
        midnight = int(datetime(2026, 11, 28, tzinfo=clock.now.tzinfo).timestamp())
        assert f"<t:{midnight}:R>" in figures["This server today"]
        assert figures["Your cooldown"].startswith("ready <t:")


async def test_fifty_concurrent_requests_respect_max_concurrent_and_daily(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    api.timings = ClipTimings(queued_after=0.02, streaming_after=0.05, complete_after=0.3)
    async with running_bot(
        discord_fake,
        api,
        tmp_path / "db.sqlite3",
        default_daily_limit=10,
        default_max_concurrent=3,
        default_max_queued=0,  # no line: beyond 3 running, refused
        default_per_member_daily=-1,
    ) as harness:
        members = [discord_fake.add_member(harness.guild_id, name=f"m{i}") for i in range(50)]
        observe_running_jobs_at_each_grant(harness.settings.database_path)
        outcomes: list[str] = []

        async def keep_asking(member: int) -> None:
            """Like an impatient member: retries while the server is busy, stops when the day is used up."""
            while True:
                interaction = await harness.music("a busy day", user_id=member)
                data = await answered(harness, interaction)
                if interaction.callbacks[0]["type"] == DEFERRED:
                    await harness.finished(interaction, timeout=60)
                    outcomes.append("granted")
                    return
                if "running, the most allowed at once" in data["content"]:
                    await asyncio.sleep(0.05)
                    continue
                assert "used all 10 of today's generations" in data["content"]
                outcomes.append("daily")
                return

        await asyncio.wait_for(asyncio.gather(*(keep_asking(member) for member in members)), timeout=90)
        assert outcomes.count("granted") == 10
        assert outcomes.count("daily") == 40
        assert api.generate_calls() == 10
        running_at_each_grant = [row["running"] for row in await harness.query("SELECT running FROM observed")]
        assert len(running_at_each_grant) == 10
        assert max(running_at_each_grant) <= 3


async def test_usage_shows_the_bot_wide_budget_as_numbers_only(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with running_bot(
        discord_fake, api, tmp_path / "db.sqlite3", global_daily_limit=10, global_monthly_limit=100
    ) as harness:
        other_guild = discord_fake.add_guild(name="Secret Other Server")
        other_channel = discord_fake.add_channel(other_guild)
        other_member = discord_fake.add_member(other_guild, name="stranger")
        elsewhere = await discord_fake.invoke_command(
            "music", {"prompt": "far away"}, guild_id=other_guild, channel_id=other_channel, user_id=other_member
        )
        await harness.finished(elsewhere)
        await harness.finished(await harness.music("right here"))
        moderator = discord_fake.add_member(
            harness.guild_id, name="mod", permissions=DEFAULT_MEMBER_PERMISSIONS | MANAGE_GUILD
        )
        usage = await answered(harness, await admin(harness, "usage", moderator, period="all"))
        figures = fields(usage)
        assert figures["Requested"] == "1"  # this server's own figures
        assert figures["Bot-wide budget (all servers together)"] == (
            "Today (UTC): **8** of 10 left (2 used)\nThis month (UTC): **98** of 100 left (2 used)"
        )
        shown = str(usage)
        assert str(other_guild) not in shown
        assert str(other_member) not in shown
        assert "Secret Other Server" not in shown


async def test_usage_says_when_no_bot_wide_budget_is_set(harness: RunningBot) -> None:
    moderator = harness.discord.add_member(
        harness.guild_id, name="mod", permissions=DEFAULT_MEMBER_PERMISSIONS | MANAGE_GUILD
    )
    figures = fields(await answered(harness, await admin(harness, "usage", moderator)))
    assert figures["Bot-wide budget (all servers together)"] == "none: the bot's operator has set no bot-wide budget"


async def test_forty_at_once_with_every_server_limit_off_get_the_budget_and_no_more(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    api.timings = ClipTimings(queued_after=0.02, streaming_after=0.05, complete_after=0.2)
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3", global_daily_limit=5) as harness:
        moderator = moderator_of(harness)
        await admin_answer(harness, "quota", moderator, daily=-1, monthly=-1, per_member_daily=-1, max_concurrent=-1)
        interactions = await asyncio.gather(*(harness.music(f"song {index}") for index in range(40)))
        answers = [await answered(harness, interaction) for interaction in interactions]
        granted = [i for i in interactions if i.callbacks[0]["type"] == DEFERRED]
        refusals = [data["content"] for i, data in zip(interactions, answers, strict=True) if i not in granted]
        assert len(granted) == 5
        assert len(refusals) == 35
        assert all(i.ephemeral for i in interactions if i not in granted)
        assert all(text.startswith("The bot's daily budget is used up; it resets <t:") for text in refusals)
        for interaction in granted:
            await harness.finished(interaction, timeout=30)
        assert api.generate_calls() == 5
        ledger = await harness.query("SELECT change, count(*) AS n FROM quota_ledger GROUP BY change")
        assert ledger == [{"change": "reserve", "n": 5}]
        jobs = await harness.query("SELECT count(*) AS n, sum(charged) AS charged FROM jobs")
        assert jobs == [{"n": 5, "charged": 5}]
        counters = await harness.query("SELECT scope, used FROM global_counters ORDER BY scope")
        assert counters == [{"scope": "day", "used": 5}, {"scope": "month", "used": 5}]

        usage = fields(await admin_answer(harness, "usage", moderator, period="day"))
        assert usage["Bot-wide budget (all servers together)"].startswith("Today (UTC): **0** of 5 left (5 used)")
        status = fields(await answered(harness, await harness.command("music-quota")))
        assert status["The bot today, all servers"].startswith("**0** of 5 left")


async def test_moderator_cannot_pass_the_ceiling_and_sees_what_minus_one_means(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with running_bot(
        discord_fake, api, tmp_path / "db.sqlite3", max_daily_limit=50, max_monthly_limit=200
    ) as harness:
        moderator = moderator_of(harness)
        shown = fields(await admin_answer(harness, "quota", moderator))
        assert shown["Server per UTC month"] == "300 → 200 (the bot's ceiling) · default"
        assert (
            "Server per UTC day: at most 50"
            in shown["The bot's ceilings (set by its operator; no server can go above them)"]
        )

        refusal = await admin_answer(harness, "quota", moderator, daily=51)
        assert refusal["content"].startswith("`daily` cannot be 51: this bot's operator allows at most 50")
        assert await harness.query("SELECT * FROM guild_limits") == []

        changed = fields(await admin_answer(harness, "quota", moderator, daily=-1))
        assert changed["Server per UTC day"] == "20 → **unlimited → up to 50 (the bot's ceiling)** · set here"
        status = fields(await answered(harness, await harness.command("music-quota")))
        assert status["This server today"].startswith("**50** of 50 left")
        assert status["This server this month"].startswith("**200** of 200 left")


async def test_outside_the_allow_list_music_and_again_are_refused_privately(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "db.sqlite3"
    world = World.create(discord_fake)
    async with running_bot(discord_fake, api, database, world=world) as harness:
        first = await harness.music("made before the operator listed servers")
        await harness.finished(first)
        song = first.followups[0]
    caplog.set_level(logging.INFO, logger="bot.quota")
    elsewhere = discord_fake.add_guild(name="The only allowed one")
    async with running_bot(discord_fake, api, database, world=world, allowed_guild_ids=str(elsewhere)) as harness:
        for _ in range(2):
            refused = await harness.music("let me in")
            assert (await answered(harness, refused))["content"] == NOT_ALLOWED_MESSAGE
            assert refused.ephemeral
        again = await harness.click(song, "again", harness.member_id)
        assert again.ephemeral
        assert again.callbacks[0]["data"]["content"] == NOT_ALLOWED_MESSAGE
        status = await answered(harness, await harness.command("music-quota"))
        assert NOT_ALLOWED_MESSAGE in status["embeds"][0]["description"]
        assert len(await harness.query("SELECT * FROM jobs")) == 1
        assert api.generate_calls() == 1
    logged = [record.getMessage() for record in caplog.records if "ALLOWED_GUILD_IDS" in record.getMessage()]
    assert logged == [
        f"guild={world.guild_id} is not in ALLOWED_GUILD_IDS: generation refused there (logged once per server)"
    ]
