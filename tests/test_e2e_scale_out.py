"""Scale-out, end to end: two real `python -m bot` processes, one fake Discord with two shards, one fake music
API and one PostgreSQL database per test (the scale-out design's "Tests that prove it"; rig: scale_out_rig.py).
Processes on shards 0 and 1 identify at once; two on one shard identify 5 s apart, as Discord requires."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from bot.storage.database import bundled_migrations
from tests.fakes.discord_server import FakeInteraction
from tests.fakes.music_api import FakeMusicApi
from tests.scale_out_rig import (
    DEFERRED,
    OBSERVE_RUNNING_AT_EACH_GRANT,
    QUICK,
    SHORT_LEASE,
    SLOW,
    UPDATE_MESSAGE,
    Bot,
    MakeRig,
    rigs,
    vote_labels,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def make_rig(api: FakeMusicApi, postgres_url: str, tmp_path: Path) -> AsyncIterator[MakeRig]:
    """`await make_rig(max_concurrency=2, ack_deadline=15.0, **bot settings)`: a fake Discord with two shards."""
    async with rigs(api, postgres_url, tmp_path) as make:
        yield make


# --- 1 and 7. two processes start together on an empty database -----------------------------------------------


async def test_two_processes_start_together_each_on_its_own_shard_and_migrate_once(make_rig: MakeRig) -> None:
    """Two IDENTIFY buckets: no opcode 9 and no waiting; each process gets (and serves) its own shard's guilds
    only; only the shard-0 process syncs the commands; the empty database is migrated once, by one of them."""
    rig = await make_rig(max_concurrency=2)
    rig.api.timings = QUICK
    zero, one = rig.world(0), rig.world(1)
    assert await rig.query("SELECT to_regclass('schema_migrations') AS t") == [{"t": None}]
    a, b = rig.bot("a", "0"), rig.bot("b", "1")
    await rig.start(a, b)

    assert rig.discord.invalid_sessions == []
    assert sorted(identify["shard"] for identify in rig.discord.identifies) == [[0, 2], [1, 2]]
    assert rig.ready_guilds(0) == [{zero.guild_id}]
    assert rig.ready_guilds(1) == [{one.guild_id}]
    assert [bot.log_lines("for its IDENTIFY slot") for bot in (a, b)] == [[], []]

    syncs = [r for r in rig.discord.requests if r.method == "PUT" and r.path.endswith("/commands")]
    assert len(syncs) == 1
    assert a.log_lines("synced"), rig.diagnostics()
    assert b.log_lines("not syncing application commands"), rig.diagnostics()
    assert rig.discord.find_command("music", None) is not None

    applied = await rig.query("SELECT version, count(*) AS times FROM schema_migrations GROUP BY version")
    shipped = [migration.version for migration in bundled_migrations("postgresql")]
    assert sorted((row["version"], row["times"]) for row in applied) == [(version, 1) for version in shipped]
    # One process applied every file; the other waited on the migration lock and found nothing left to do.
    migrated = {bot.name: len(bot.log_lines("database migrated to version")) for bot in (a, b)}
    assert sorted(migrated.values()) == [0, len(shipped)], rig.diagnostics()

    asked = [await rig.music(zero, "on shard zero"), await rig.music(one, "on shard one")]
    assert [i.delivered_to for i in asked] == [[rig.discord.sessions_for_shard(k)[0]] for k in (0, 1)]
    for interaction in asked:
        assert (await rig.finished(interaction)).content.startswith("✅")
    assert [await rig.handler_of(interaction) for interaction in asked] == ["a", "b"]
    owners = await rig.query("SELECT guild_id, owner FROM jobs")
    assert {row["guild_id"]: row["owner"] for row in owners} == {zero.guild_id: "a", one.guild_id: "b"}
    assert [len(rig.clip_messages(world)) for world in (zero, one)] == [2, 2]


async def test_one_bucket_the_second_process_waits_its_turn_even_after_a_slow_booking(make_rig: MakeRig) -> None:
    """max_concurrency=1: both shards share bucket 0. The first process's booking commits 1.5 s late, as on a busy
    database; the second must still IDENTIFY 5 s after the first one did, and never be refused."""
    rig = await make_rig(max_concurrency=1)
    rig.world(0)
    rig.world(1)
    a, b = rig.bot("a", "0"), rig.bot("b", "1")
    await rig.start_with_a_slow_identify_booking(a, 1.5)
    await rig.start(b)
    # It was told to wait, unless its process (slow to start on a loaded machine) asked a full slot later anyway.
    waited = bool(b.log_lines("for its IDENTIFY slot"))
    asked_after = logged_at(b, "logging in using static token") - logged_at(a, "has connected to Gateway")
    assert waited or asked_after.total_seconds() >= 6, rig.diagnostics()
    assert rig.discord.invalid_sessions == []  # ... long enough: never refused


def logged_at(bot: Bot, needle: str) -> datetime:
    """When the process logged a line (its logs start with `YYYY-MM-DD HH:MM:SS,mmm`, the host's clock)."""
    (line, *_) = bot.log_lines(needle)
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")


# --- 2. quota, exact over two processes -----------------------------------------------------------------------


async def test_two_hundred_requests_over_two_processes_get_exactly_the_limits(make_rig: MakeRig) -> None:
    """Both processes hold shard 0; each wave's 200 requests alternate between their sessions. Wave 1, with songs
    that do not finish: exactly max_concurrent (10) are granted, the rest told the server is busy. Wave 2, once
    those are done: exactly what is left of the day (5) is granted, the rest told the day is used up."""
    rig = await make_rig(
        ack_deadline=60.0,  # 200 interactions at once on two cores: this test is about quota, not latency
        default_daily_limit=15,
        default_max_concurrent=10,
        default_max_queued=0,  # no line: beyond 10 running, refused
        default_per_member_daily=-1,
    )
    world, _, _ = await rig.start_both_on_shard_zero()
    members = [rig.member(world, f"m{i}") for i in range(200)]
    await rig.execute(OBSERVE_RUNNING_AT_EACH_GRANT)

    async def wave(prompt: str, refused_with: str) -> list[FakeInteraction]:
        asked = [await rig.music(world, prompt, user_id=m, session=i % 2) for i, m in enumerate(members)]
        await rig.wait(lambda: all(interaction.callbacks for interaction in asked), timeout=90)
        handlers = [await rig.handler_of(interaction) for interaction in asked]
        assert handlers.count("a") == handlers.count("b") == 100
        refusals = [i.callbacks[0]["data"]["content"] for i in asked if i.callbacks[0]["type"] != DEFERRED]
        assert all(refused_with in text for text in refusals), set(refusals)
        return [i for i in asked if i.callbacks[0]["type"] == DEFERRED]

    async def all_delivered(granted: list[FakeInteraction]) -> None:
        for interaction in granted:
            assert (await rig.finished(interaction)).content.startswith("✅")

    rig.api.timings = SLOW
    granted = await wave("rush hour", "running, the most allowed at once")
    assert len(granted) == 10
    rig.api.timings = QUICK
    await all_delivered(granted)
    granted = await wave("last call", "used all 15 of today's generations")
    assert len(granted) == 5
    await all_delivered(granted)

    await rig.assert_books_agree(15)
    running = [row["running"] for row in await rig.query("SELECT running FROM observed")]
    assert len(running) == 15
    assert max(running) <= 10
    assert len(rig.clip_messages(world)) == 30


# --- 3. kill -9 of the process owning a job -------------------------------------------------------------------


async def test_killed_while_the_clips_generate_the_other_process_delivers_them(make_rig: MakeRig) -> None:
    rig = await make_rig(job_lease_seconds=SHORT_LEASE)
    rig.api.timings = SLOW
    world, a, b = await rig.start_on_two_shards()
    interaction = await rig.music(world, "two bots, one job")
    await rig.until_status("polling")
    assert await rig.clip_count() == 2
    assert await rig.owners() == ["a"]
    await a.kill()
    assert rig.clip_messages(world) == []
    rig.api.timings = QUICK  # the songs finish while their process is dead
    await rig.assert_delivered_once_by(world, interaction, b)
    for message in rig.clip_messages(world):  # posted in the channel by the taker, telling the requester
        assert message.pinged() == {f"user:{world.member_id}"}


@pytest.mark.parametrize("upload", ["arrived", "cut_off"])
async def test_killed_while_a_clip_uploads_the_other_process_posts_each_clip_once(
    make_rig: MakeRig, upload: str
) -> None:
    """The first clip's post is under way when its process dies: Discord made the message but its answer never
    came back ("arrived": the taker finds the message), or the upload never completed ("cut_off")."""
    rig = await make_rig(job_lease_seconds=SHORT_LEASE)
    rig.api.timings = QUICK
    world, a, b = await rig.start_on_two_shards()
    # With PostgreSQL every clip is a channel post with a nonce (follow-ups carry none).
    rig.discord.delay_next("create_message", seconds=120, response_only=upload == "arrived")
    interaction = await rig.music(world, "mid-upload")
    await rig.wait(lambda: rig.first_post() is not None)
    if upload == "arrived":  # made as soon as its request is read; only the answer is held
        await rig.wait(lambda: len(rig.clip_messages(world)) == 1)
    else:
        assert rig.clip_messages(world) == []
    unrecorded = "SELECT position FROM clips WHERE posting_started_at IS NOT NULL AND message_id IS NULL"
    assert await rig.query(unrecorded) == [{"position": 0}]
    await a.kill()
    await rig.assert_delivered_once_by(world, interaction, b)


async def test_killed_during_a_hung_generate_the_other_process_reports_it_and_refunds(make_rig: MakeRig) -> None:
    """As after a restart (test_e2e_restart.py): a paid call whose answer never came is never sent again; the
    job ends as interrupted and refunded, and the requester is told."""
    rig = await make_rig(job_lease_seconds=SHORT_LEASE)
    world, a, _ = await rig.start_on_two_shards()
    rig.api.hang_next("generate", seconds=120)
    interaction = await rig.music(world, "lost in flight")
    await rig.until_status("submitted")
    await rig.wait(lambda: rig.api.generate_calls() == 1)
    await a.kill()

    await rig.until_status("failed")
    assert [(job["failure_reason"], job["charged"], job["owner"]) for job in await rig.jobs()] == [
        ("interrupted", 0, "b")
    ]
    assert await rig.ledger() == ["reserve", "refund"]
    # The command's own message shows the outcome, and one new message tells the requester (who may be away).
    original = await rig.finished(interaction)
    assert original.content.startswith("❌")
    assert "the music service's answer was lost" in original.content
    assert "It was not counted against the server's quota." in original.content

    await rig.wait(lambda: len([m for m in rig.discord.messages(world.channel_id) if "was lost" in m.content]) == 2)
    told = [m for m in rig.discord.messages(world.channel_id) if "was lost" in m.content and m is not original]
    assert [m.pinged() for m in told] == [{f"user:{world.member_id}"}]
    assert rig.clip_messages(world) == []
    assert rig.api.generate_calls() == 1


# --- 4. SIGSTOP past the lease --------------------------------------------------------------------------------


async def test_a_process_stopped_past_its_lease_changes_nothing_when_it_wakes(make_rig: MakeRig) -> None:
    """Frozen between two writes (frozen inside one: see the xfail test below)."""
    rig = await make_rig(job_lease_seconds=SHORT_LEASE)
    rig.api.timings = SLOW
    world, a, b = await rig.start_on_two_shards()
    interaction = await rig.music(world, "frozen in time")
    await rig.until_status("polling")
    polled = len(rig.api.fetch_batches())
    await rig.wait(lambda: len(rig.api.fetch_batches()) >= polled + 3)  # the clips' states stored: no writes now
    a.pause()
    await rig.until_owners(["b"])
    rig.api.timings = QUICK
    await rig.assert_delivered_once_by(world, interaction, b)
    a.resume()
    await rig.wait(lambda: bool(a.log_lines("phase=taken_over")), timeout=60)  # its run saw it, and stopped
    await rig.assert_each_clip_posted_once(world, 2)
    assert await rig.ledger() == ["reserve"]
    assert rig.api.generate_calls() == 1
    assert [(job["status"], job["owner"]) for job in await rig.jobs()] == [("delivered", "b")]
    assert a.process is not None
    assert a.process.returncode is None


async def test_a_process_frozen_inside_a_transaction_still_loses_its_job(make_rig: MakeRig) -> None:
    rig = await make_rig(job_lease_seconds=SHORT_LEASE)
    rig.api.timings = SLOW
    world, a, b = await rig.start_on_two_shards()
    interaction = await rig.music(world, "frozen mid-write")
    await rig.until_status("polling")
    async with rig.holding("SELECT id FROM clips FOR UPDATE"):  # a's next write of the clips waits on the test
        rig.api.timings = QUICK  # the songs complete: a stores their new state, in a transaction
        await rig.until_a_session("wait_event_type = 'Lock'", "a's write waits")
        a.pause()
    await rig.until_a_session("state = 'idle in transaction'", "a frozen before its commit")
    await rig.until_owners(["b"], timeout=12)  # the lease is 2 s, and b looks for orphans every 2 s
    await rig.assert_delivered_once_by(world, interaction, b)
    a.resume()  # its run then fails to commit; it must stop quietly, not undo what b told the requester
    ended = ("phase=taken_over", "phase=crashed", "phase=paused", "phase=delivered", "phase=failed")
    await rig.wait(lambda: any(word in line for line in a.log_lines("job=1 ") for word in ended), timeout=60)
    await rig.assert_each_clip_posted_once(world, 2)
    assert interaction.original is not None
    assert interaction.original.content.startswith("✅")


async def test_a_process_stopped_before_the_paid_call_never_makes_it(make_rig: MakeRig) -> None:
    """Stopped while its acknowledgement's answer is on the way (the job reserved, nothing paid): the other
    process ends and refunds the job; when the first wakes, its fenced writes fail, so it pays nothing and
    refunds nothing more."""
    rig = await make_rig(job_lease_seconds=SHORT_LEASE)
    rig.api.timings = QUICK
    world, a, _ = await rig.start_on_two_shards()
    rig.discord.delay_next("callback", seconds=6, response_only=True)  # acknowledged; the answer is slow
    interaction = await rig.music(world, "frozen before paying")
    await rig.wait(lambda: bool(interaction.callbacks))
    await rig.until_status("reserved")
    a.pause()
    await rig.until_status("failed")
    assert [(job["failure_reason"], job["charged"], job["owner"]) for job in await rig.jobs()] == [
        ("interrupted", 0, "b")
    ]
    await rig.wait(lambda: any("nothing was spent" in m.content for m in rig.discord.messages(world.channel_id)))
    a.resume()
    gave_up = ("phase=abandoned", "phase=taken_over")  # the two ways a run reports a job it no longer holds
    await rig.wait(lambda: any(word in line for line in a.log_lines("job=1 ") for word in gave_up), timeout=60)
    assert await rig.ledger() == ["reserve", "refund"]
    assert rig.api.generate_calls() == 0
    assert rig.clip_messages(world) == []


async def test_a_process_stopped_mid_upload_never_posts_the_clip_a_second_time(make_rig: MakeRig) -> None:
    rig = await make_rig(job_lease_seconds=SHORT_LEASE)
    rig.api.timings = QUICK
    world, a, b = await rig.start_on_two_shards()
    rig.discord.delay_next("create_message", seconds=8)  # a's first clip post (a channel post, with a nonce)
    interaction = await rig.music(world, "frozen mid-upload")
    await rig.wait(lambda: rig.first_post() is not None)
    a.pause()  # its upload is on its way; a freezes before it hears back
    await rig.assert_delivered_once_by(world, interaction, b)
    upload = rig.first_post()
    assert upload is not None
    assert upload.status == 0, "precondition: a's upload still on its way"
    a.resume()
    await rig.wait(lambda: upload.status != 0 and bool(a.log_lines("phase=taken_over")), timeout=60)
    await rig.assert_each_clip_posted_once(world, 2)


# --- 5. buttons on the other process --------------------------------------------------------------------------


async def test_buttons_work_on_the_process_that_did_not_post_the_clip(make_rig: MakeRig) -> None:
    rig = await make_rig()
    rig.api.timings = QUICK
    world, _, _ = await rig.start_both_on_shard_zero()
    asked = await rig.music(world, "click me elsewhere", session=0)
    await rig.finished(asked)
    poster = await rig.handler_of(asked)
    first, second = rig.clip_messages(world)
    clips = await rig.query("SELECT id, lyrics FROM clips ORDER BY position")
    voter, clicker, twice = rig.member(world, "voter"), rig.member(world, "clicker"), rig.member(world, "twice")

    vote = await rig.click(first, "up", voter, session=1)
    await rig.answered(vote)
    assert await rig.handler_of(vote) not in (None, poster)
    assert vote.callbacks[0]["type"] == UPDATE_MESSAGE
    assert vote_labels(first) == {"up": "👍 1", "down": "👎 0"}
    assert await rig.vote_rows(clips[0]["id"]) == {"up": 1, "down": 0}

    lyrics = await rig.click(first, "lyrics", voter, session=1)
    data = await rig.answered(lyrics)
    assert await rig.handler_of(lyrics) not in (None, poster)
    assert lyrics.ephemeral
    assert data["embeds"][0]["description"] == clips[0]["lyrics"].strip()

    again = await rig.click(second, "again", clicker, session=1)
    await rig.answered(again)
    assert again.callbacks[0]["type"] == DEFERRED
    assert (await rig.finished(again)).content.startswith("✅")
    jobs = await rig.query("SELECT requester_id, owner, prompt FROM jobs ORDER BY id")
    assert [job["prompt"] for job in jobs] == ["click me elsewhere"] * 2
    assert jobs[1]["requester_id"] == clicker  # charged to whoever clicked
    assert jobs[1]["owner"] == await rig.handler_of(again) != poster
    assert len(rig.clip_messages(world)) == 4

    # One click sent to both sessions: answered once, counted once.
    both = await rig.click(second, "down", voter, to_all_sessions=True)
    assert len(both.delivered_to) == 2
    await rig.answered(both)
    await rig.wait(lambda: any(bot.log_lines(f"interaction {both.id} is handled by another") for bot in rig.bots))
    assert (len(both.callbacks), both.errors) == (1, [])
    assert await rig.vote_rows(clips[1]["id"]) == {"up": 0, "down": 1}

    # Two clicks of one member at the same moment, one on each process: decided one after the other (added, then
    # taken back), so the vote never counts twice and the tally stays equal to the votes.
    clicks = [await rig.click(second, "up", twice, session=k) for k in (0, 1)]
    await rig.wait(lambda: all(click.callbacks for click in clicks))
    assert sorted([await rig.handler_of(click) or "" for click in clicks]) == ["a", "b"]
    assert await rig.query("SELECT 1 FROM votes WHERE clip_id = $1 AND user_id = $2", clips[1]["id"], twice) == []
    assert await rig.vote_rows(clips[1]["id"]) == {"up": 0, "down": 1}


async def test_the_counts_a_clip_shows_last_are_its_tally_after_clicks_on_both_processes(make_rig: MakeRig) -> None:
    rig = await make_rig(ack_deadline=30.0)
    rig.api.timings = QUICK
    world, _, _ = await rig.start_both_on_shard_zero()
    await rig.finished(await rig.music(world, "count me right", session=0))
    first, _ = rig.clip_messages(world)
    (clip,) = await rig.query("SELECT id FROM clips WHERE position = 0")
    voter = rig.member(world, "voter")
    rig.discord.delay_next("callback", seconds=5)  # the first click's answer (👍 1) is slow to reach Discord
    slow = await rig.click(first, "up", voter, session=0)
    await rig.until(lambda: rig.has_votes(clip["id"]), what="the first click counted")
    fast = await rig.click(first, "up", voter, session=1)  # taken back on the other process, answered at once
    await rig.wait(lambda: bool(fast.callbacks))
    assert slow.callbacks == [], "precondition: the first answer still on its way"
    await rig.wait(lambda: bool(slow.callbacks), timeout=30)
    assert await rig.vote_rows(clip["id"]) == {"up": 0, "down": 0}
    await rig.wait(lambda: vote_labels(first) == {"up": "👍 0", "down": "👎 0"}, timeout=5)  # a correction may follow


# --- 6. one interaction, two sessions -------------------------------------------------------------------------


async def test_one_interaction_sent_to_both_sessions_is_handled_once(make_rig: MakeRig) -> None:
    rig = await make_rig()
    rig.api.timings = QUICK
    world, a, b = await rig.start_both_on_shard_zero()
    interaction = await rig.music(world, "heard twice", to_all_sessions=True)
    assert len(interaction.delivered_to) == 2
    assert (await rig.finished(interaction)).content.startswith("✅")
    handler = await rig.handler_of(interaction)
    other = b if handler == "a" else a
    await rig.wait(lambda: bool(other.log_lines(f"interaction {interaction.id} is handled by another session")))
    assert len(interaction.callbacks) == 1
    assert interaction.callbacks[0]["type"] == DEFERRED
    assert interaction.errors == []  # the other session never tried to acknowledge it (no 40060)
    assert [(job["status"], job["owner"]) for job in await rig.jobs()] == [("delivered", handler)]
    assert await rig.ledger() == ["reserve"]
    assert rig.api.generate_calls() == 1
    await rig.assert_each_clip_posted_once(world, 2)
    assert await rig.query("SELECT owner FROM handled_interactions") == [{"owner": handler}]


# --- 8. limits, changed through one process -------------------------------------------------------------------


async def test_a_limit_changed_through_one_process_holds_at_once_in_the_other(make_rig: MakeRig) -> None:
    rig = await make_rig()
    rig.api.timings = QUICK
    world, _, _ = await rig.start_both_on_shard_zero()
    moderator = rig.moderator(world)
    first = await rig.music(world, "before the change", session=1)  # this process has read the limits
    assert (await rig.finished(first)).content.startswith("✅")
    reader = await rig.handler_of(first)

    changed = await rig.admin(world, "quota", moderator, {"daily": 1}, session=0)
    shown = await rig.answered(changed)
    assert await rig.handler_of(changed) not in (None, reader)
    fields = {field["name"]: field["value"] for field in shown["embeds"][0]["fields"]}
    assert fields["Server per UTC day"] == "20 → **1** · set here"

    refused = await rig.music(world, "after the change", session=1)
    data = await rig.answered(refused)
    assert await rig.handler_of(refused) == reader
    assert refused.ephemeral
    assert "This server has used all 1 of today's generations." in data["content"]

    # And the other way round: switched off through the second process, refused at once by the first.
    await rig.answered(await rig.admin(world, "quota", moderator, {"daily": -1, "max_concurrent": 0}, session=1))
    off = await rig.music(world, "switched off", session=0)
    data = await rig.answered(off)
    assert await rig.handler_of(off) not in (None, reader)
    assert "switched off on this server (a moderator set the max_concurrent limit to 0)" in data["content"]
    assert await rig.ledger() == ["reserve"]
    assert rig.api.generate_calls() == 1
