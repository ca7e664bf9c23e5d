"""A line instead of a refusal: with max_concurrent 1, five requests are all reserved at once and run one after
the other, first come first served, each exactly once, also across a restart; the progress says the place."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.fakes.discord_constants import DEFAULT_MEMBER_PERMISSIONS, MANAGE_GUILD
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import ClipTimings, FakeMusicApi
from tests.harness import World, running_bot

MODERATOR = DEFAULT_MEMBER_PERMISSIONS | MANAGE_GUILD
LIMITS = {"default_max_concurrent": 1, "default_max_queued": 10, "default_per_member_daily": -1}


async def test_a_line_of_five_runs_in_order_once_each_across_a_restart(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    api.timings = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=0.6)
    database = tmp_path / "musicbot.sqlite3"
    world = World.create(discord_fake)
    members = [discord_fake.add_member(world.guild_id, name=f"m{n}") for n in range(5)]
    async with running_bot(discord_fake, api, database, world=world, **LIMITS) as first_run:
        interactions = []
        for n, member in enumerate(members):  # one after the other: the line's order is the order of asking
            interaction = await first_run.music(f"song in line {n}", user_id=member)
            # Reserved (and so placed in line) once acknowledged: the next asks after it, not alongside it.
            await discord_fake.wait_for(lambda asked=interaction: bool(asked.callbacks))
            interactions.append(interaction)
        await discord_fake.wait_for(
            lambda: any("2nd in line" in (i.original.content if i.original else "") for i in interactions), 10
        )
        jobs = await first_run.query("SELECT id, queued FROM jobs ORDER BY id")
        assert [row["queued"] for row in jobs] == [0, 1, 1, 1, 1]  # all five reserved at once
        quota = await first_run.command("music-quota")
        await discord_fake.wait_for(lambda: bool(quota.callbacks))
        shown = {field["name"]: field["value"] for field in quota.callbacks[0]["data"]["embeds"][0]["fields"]}
        assert shown["Waiting in line"].startswith(("4 ", "3 "))  # the first of them may have started meanwhile
        assert shown["Waiting in line"].endswith("(at most 10)")
        moderator = discord_fake.add_member(world.guild_id, name="mod", permissions=MODERATOR)
        usage = await discord_fake.invoke_command(
            "music-admin",
            {},
            subcommand="usage",
            guild_id=world.guild_id,
            channel_id=world.channel_id,
            user_id=moderator,
        )
        await discord_fake.wait_for(lambda: bool(usage.callbacks))
        report = {field["name"]: field["value"] for field in usage.callbacks[0]["data"]["embeds"][0]["fields"]}
        assert report["Running now"].endswith("in line)")
        await discord_fake.wait_for(lambda: len(interactions[0].followups) == 2, timeout=15)
    async with running_bot(discord_fake, api, database, world=world, **LIMITS) as second_run:
        for _ in range(600):
            rows = await second_run.query("SELECT status FROM jobs")
            if all(row["status"] == "delivered" for row in rows):
                break
            await asyncio.sleep(0.05)
        started = await second_run.query("SELECT id FROM jobs ORDER BY submitted_at")
        ledger = await second_run.query("SELECT change FROM quota_ledger")
    assert [row["id"] for row in started] == [row["id"] for row in jobs]  # first come, first served
    assert api.generate_calls() == 5  # each exactly once
    assert [row["change"] for row in ledger] == ["reserve"] * 5
    prompts = [request.json["prompt"] for request in api.requests if request.route == "generate"]
    assert prompts == [f"song in line {n}" for n in range(5)]
