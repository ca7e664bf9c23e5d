"""The scale-out rig: real `python -m bot` processes on one PostgreSQL database, one fake Discord with two shards
and one fake music API. Used by tests/test_e2e_scale_out.py."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from bot.storage.postgres import PostgresDatabase
from tests.bot_process import BotProcess
from tests.fakes.discord_models import DEFAULT_MEMBER_PERMISSIONS, MANAGE_GUILD
from tests.fakes.discord_server import FakeDiscord, FakeInteraction, FakeMessage, RecordedRequest
from tests.fakes.music_api import ClipTimings, FakeMusicApi
from tests.harness import FINAL_MARKS, World, buttons

DEFERRED = 5  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE: a /music that was granted
UPDATE_MESSAGE = 7  # a button click answered by editing its message
QUICK = ClipTimings(queued_after=0.02, streaming_after=0.05, complete_after=0.2)
SLOW = ClipTimings(queued_after=0.05, streaming_after=0.1, complete_after=3600.0)  # done when the test says so
# A job's lease: long, so that a process slowed down by a loaded machine keeps its jobs; short (as in the
# single-process restart tests) where a test has a process die or freeze, so the other one takes over quickly.
LEASE = 30.0
SHORT_LEASE = 2.0
ACK_DEADLINE = 15.0  # Discord's is 3 s; these tests are about coordination, not latency, on a loaded machine
STARTED = 60.0  # seconds a process may take to start and be ready on a loaded machine
SETTLED = 60.0  # seconds a job may take to end after a takeover


class Bot(BotProcess):
    """One bot process of the rig, known by its INSTANCE_ID (the `owner` of the jobs it holds)."""

    def __init__(self, name: str, shard_ids: str, *args: Any, **settings: Any) -> None:
        super().__init__(*args, instance_id=name, shard_ids=shard_ids, **settings)
        self.name = name
        self.shard_ids = shard_ids

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def pause(self) -> None:
        """SIGSTOP: the process freezes where it is (a long GC pause, a VM migration, a stuck host)."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def log_lines(self, needle: str) -> list[str]:
        return [line for line in self.logs().splitlines() if needle in line]


class Rig:
    """Two shards, one database; worlds (a guild with a channel and a member) placed on a chosen shard."""

    def __init__(
        self, discord: FakeDiscord, api: FakeMusicApi, database_url: str, tmp_path: Path, **settings: Any
    ) -> None:
        self.discord = discord
        self.api = api
        self.database_url = database_url
        self.tmp_path = tmp_path
        self.settings = settings
        self.bots: list[Bot] = []
        self._connection: asyncpg.Connection | None = None

    # --- the world ----------------------------------------------------------------------------------------

    def world(self, shard: int) -> World:
        guild_id = self.discord.add_guild(shard=shard, name=f"guild on shard {shard}")
        assert self.discord.shard_of(guild_id) == shard
        return World(guild_id, self.discord.add_channel(guild_id), self.discord.add_member(guild_id, name="member"))

    def member(self, world: World, name: str) -> int:
        return self.discord.add_member(world.guild_id, name=name)

    def moderator(self, world: World) -> int:
        return self.discord.add_member(
            world.guild_id, name="mod", permissions=DEFAULT_MEMBER_PERMISSIONS | MANAGE_GUILD
        )

    # --- processes ----------------------------------------------------------------------------------------

    def bot(self, name: str, shard_ids: str, **settings: Any) -> Bot:
        bot = Bot(
            name,
            shard_ids,
            self.discord,
            self.api,
            self.tmp_path / "unused.sqlite3",  # DATABASE_URL below names PostgreSQL
            self.tmp_path / name,
            database_url=self.database_url,
            shard_count=self.discord.shard_count,
            **({"generation_deadline_seconds": SETTLED, "job_lease_seconds": LEASE} | self.settings | settings),
        )
        self.bots.append(bot)
        return bot

    async def start(self, *bots: Bot) -> None:
        """Starts the processes at the same moment and waits until each one's shards have a ready session."""
        wanted = {shard: self._ready(shard) for bot in bots for shard in _shards(bot.shard_ids)}
        for bot in bots:
            for shard in _shards(bot.shard_ids):
                wanted[shard] += 1
        await asyncio.gather(*(bot.start() for bot in bots))
        await self.wait(lambda: all(self._ready(shard) >= n for shard, n in wanted.items()), timeout=STARTED)

    def _ready(self, shard: int) -> int:
        return sum(session.ready.is_set() for session in self.discord.sessions_for_shard(shard))

    async def close(self) -> None:
        for bot in self.bots:
            await bot.stop_if_running()  # SIGKILL ends a stopped (SIGSTOP) process too
        if self._connection is not None:
            await self._connection.close()

    async def start_on_two_shards(self) -> tuple[World, Bot, Bot]:
        """A guild on shard 0 run by process a; process b runs shard 1 and shares only the database with a."""
        world = self.world(0)
        a, b = self.bot("a", "0"), self.bot("b", "1")
        await self.start(a, b)
        return world, a, b

    async def start_both_on_shard_zero(self) -> tuple[World, Bot, Bot]:
        """A guild on shard 0 held by both processes: Discord may send its interactions to either session."""
        world = self.world(0)
        a, b = self.bot("a", "0"), self.bot("b", "0")
        await self.start(a, b)
        assert len(self.discord.sessions_for_shard(0)) == 2
        return world, a, b

    def ready_guilds(self, shard: int) -> list[set[int]]:
        """For each live session of the shard: the guilds its READY listed (each then sent as GUILD_CREATE)."""
        found = []
        for session in self.discord.sessions_for_shard(shard):
            listed = {int(g["id"]) for f in session.history if f["t"] == "READY" for g in f["d"]["guilds"]}
            created = {int(f["d"]["id"]) for f in session.history if f["t"] == "GUILD_CREATE"}
            assert listed == created
            found.append(listed)
        return found

    async def start_with_a_slow_identify_booking(self, first: Bot, seconds: float) -> None:
        """Starts `first` while a transaction of the test holds bucket 0's slot, so that its IDENTIFY booking
        commits `seconds` late (as on a busy database), and waits until it is ready."""
        async with PostgresDatabase.open(self.database_url):  # the schema, so that the slot can be held
            pass
        async with self.holding("INSERT INTO identify_slots (bucket, next_at) VALUES (0, '2000-01-01T00:00:00Z')"):
            await first.start()
            await self.until_a_session("wait_event_type = 'Lock'", "the booking waits on the slot")
            await asyncio.sleep(seconds)
        await self.wait(lambda: any(s.ready.is_set() for s in self.discord.sessions_for_shard(0)), STARTED)

    @asynccontextmanager
    async def holding(self, sql: str) -> AsyncIterator[None]:
        """Runs `sql` in a transaction of the test's own, kept open (with its locks) for the block."""
        holder = await asyncpg.connect(self.database_url)
        try:
            async with holder.transaction():
                await holder.execute(sql)
                yield
        finally:
            await holder.close()

    async def until_a_session(self, condition: str, what: str, timeout: float = STARTED) -> None:
        """Until a bot's database session (not the test's) is in the state `condition` says."""
        sql = (
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
            f" AND pid != pg_backend_pid() AND {condition}"
        )
        await self.until(lambda: _positive(self.query(sql)), timeout, what)

    def first_post(self) -> RecordedRequest | None:
        """The bot's first post (a follow-up through an interaction token, or a channel message); its status is
        0 while delay_next holds it."""
        posts = (r for r in self.discord.requests if r.method == "POST" and re.fullmatch(_POST, r.path))
        return next(posts, None)

    # --- waiting, with the bots' own words when it times out ------------------------------------------------

    def diagnostics(self) -> str:
        tails = [f"-- {bot.name} (shards {bot.shard_ids}) log tail --\n{bot.logs()[-4000:]}" for bot in self.bots]
        return "\n".join(tails)

    async def wait(self, predicate: Callable[[], Any], timeout: float = 30) -> None:
        """The fake's wait_for, with the processes' log tails on a timeout."""
        try:
            await self.discord.wait_for(predicate, timeout=timeout)
        except TimeoutError as error:
            raise TimeoutError(f"{error}\n{self.diagnostics()}") from None

    async def until(self, predicate: Callable[[], Awaitable[Any]], timeout: float = 30, what: str = "") -> None:
        """Polls an async condition (one that reads the database) until it holds."""
        deadline = time.monotonic() + timeout
        while not await predicate():
            if time.monotonic() > deadline:
                sessions = await self.query(
                    "SELECT application_name, state, wait_event_type, left(query, 200) AS query"
                    " FROM pg_stat_activity WHERE datname = current_database() AND pid != pg_backend_pid()"
                )
                activity = "\n".join(f"database session {row}" for row in sessions)
                raise TimeoutError(
                    f"{what or 'condition'} not met within {timeout} s\n{activity}\n{self.diagnostics()}"
                )
            await asyncio.sleep(0.05)

    # --- the database, read as an operator would ------------------------------------------------------------

    async def query(self, sql: str, *parameters: object) -> list[dict[str, Any]]:
        if self._connection is None:
            self._connection = await asyncpg.connect(self.database_url)
        return [dict(row) for row in await self._connection.fetch(sql, *parameters)]

    async def execute(self, sql: str) -> None:
        await self.query("SELECT 1")  # connects
        assert self._connection is not None
        await self._connection.execute(sql)

    async def jobs(self) -> list[dict[str, Any]]:
        return await self.query("SELECT id, status, charged, failure_reason, owner FROM jobs ORDER BY id")

    async def job_status(self, job_id: int = 1) -> str | None:
        rows = await self.query("SELECT status FROM jobs WHERE id = $1", job_id)
        return rows[0]["status"] if rows else None

    async def ledger(self) -> list[str]:
        return [row["change"] for row in await self.query("SELECT change FROM quota_ledger ORDER BY id")]

    async def clip_count(self) -> int:
        return len(await self.query("SELECT id FROM clips"))

    async def until_status(self, status: str, timeout: float = SETTLED) -> None:
        async def reached() -> bool:
            return await self.job_status() == status

        await self.until(reached, timeout, f"job 1 {status}")

    async def owners(self) -> list[str]:
        return [job["owner"] for job in await self.jobs()]

    async def until_owners(self, owners: list[str], timeout: float = SETTLED) -> None:
        async def reached() -> bool:
            return await self.owners() == owners

        await self.until(reached, timeout, f"the jobs held by {owners}")

    async def has_votes(self, clip_id: str) -> bool:
        return bool(await self.query("SELECT 1 FROM votes WHERE clip_id = $1", clip_id))

    async def vote_rows(self, clip_id: str) -> dict[str, int]:
        """The clip's votes as rows, checked against the tally the triggers keep from them."""
        (counted,) = await self.query(
            "SELECT count(*) FILTER (WHERE value = 1) AS up, count(*) FILTER (WHERE value = -1) AS down "
            "FROM votes WHERE clip_id = $1",
            clip_id,
        )
        tallies = await self.query("SELECT up, down FROM vote_tallies WHERE clip_id = $1", clip_id)
        kept = tallies[0] if tallies else {"up": 0, "down": 0}
        assert (kept["up"], kept["down"]) == (counted["up"], counted["down"]), "the tally drifted from the votes"
        return {"up": counted["up"], "down": counted["down"]}

    async def handler_of(self, interaction: FakeInteraction) -> str | None:
        rows = await self.query("SELECT owner FROM handled_interactions WHERE id = $1", interaction.id)
        return rows[0]["owner"] if rows else None

    # --- Discord's users ------------------------------------------------------------------------------------

    async def music(self, world: World, prompt: str, *, user_id: int | None = None, **routing: Any) -> FakeInteraction:
        return await self.discord.invoke_command(
            "music",
            {"prompt": prompt},
            guild_id=world.guild_id,
            channel_id=world.channel_id,
            user_id=user_id or world.member_id,
            **routing,
        )

    async def admin(
        self, world: World, subcommand: str, user_id: int, options: dict[str, Any], **routing: Any
    ) -> FakeInteraction:
        return await self.discord.invoke_command(
            "music-admin",
            options,
            subcommand=subcommand,
            guild_id=world.guild_id,
            channel_id=world.channel_id,
            user_id=user_id,
            **routing,
        )

    async def click(self, message: FakeMessage, button: str, user_id: int, **routing: Any) -> FakeInteraction:
        """Clicks "up", "down", "lyrics" or "again" under a clip message (without waiting for the answer)."""
        custom_id = next(
            custom_id
            for custom_id in buttons(message)
            if custom_id.endswith(f":{button}") or custom_id.startswith(f"{button}:")
        )
        return await self.discord.click_button(message.id, custom_id, user_id=user_id, **routing)

    async def answered(self, interaction: FakeInteraction, timeout: float = 30) -> dict[str, Any]:
        await self.wait(lambda: bool(interaction.callbacks), timeout=timeout)
        data: dict[str, Any] = interaction.callbacks[0].get("data") or {}
        return data

    async def finished(self, interaction: FakeInteraction, timeout: float = SETTLED) -> FakeMessage:
        """Waits until the command's own message shows the job's final word."""

        def done() -> bool:
            original = interaction.original
            return original is not None and original.content.startswith(FINAL_MARKS)

        await self.wait(done, timeout=timeout)
        assert interaction.original is not None
        return interaction.original

    def clip_messages(self, world: World) -> list[FakeMessage]:
        return [
            message
            for message in self.discord.messages(world.channel_id)
            if message.embeds and "job #" in (message.embeds[0].get("footer") or {}).get("text", "")
        ]

    def clip_footers(self, world: World) -> list[str]:
        return [message.embeds[0]["footer"]["text"] for message in self.clip_messages(world)]

    async def assert_each_clip_posted_once(self, world: World, expected: int) -> None:
        footers = self.clip_footers(world)
        assert len(footers) == expected, footers
        assert len(set(footers)) == expected, f"a clip was posted twice: {footers}"
        posted = await self.query("SELECT message_id FROM clips WHERE message_id IS NOT NULL")
        assert sorted(row["message_id"] for row in posted) == sorted(m.id for m in self.clip_messages(world))

    async def assert_books_agree(self, grants: int) -> None:
        """Every grant paid once and delivered; ledger rows = the server's, members' and bot-wide counters."""
        assert self.api.generate_calls() == grants
        assert await self.ledger() == ["reserve"] * grants
        assert [(job["status"], job["charged"]) for job in await self.jobs()] == [("delivered", 1)] * grants
        counters = await self.query("SELECT scope, sum(used) AS used FROM quota_counters GROUP BY scope")
        by_scope = {row["scope"]: row["used"] for row in counters}
        assert (by_scope.pop("day"), by_scope.pop("month"), sum(by_scope.values())) == (grants, grants, grants)
        budget = await self.query("SELECT sum(used) AS used FROM global_counters WHERE scope = 'day'")
        assert budget == [{"used": grants}]

    async def assert_delivered_once_by(self, world: World, interaction: FakeInteraction, taker: Bot) -> None:
        """The job ends delivered by `taker`: each clip posted once with its file, charged once, paid once."""
        await self.until_status("delivered")
        await self.assert_each_clip_posted_once(world, 2)
        assert all(len(message.attachments) == 1 for message in self.clip_messages(world))
        rows = [(job["status"], job["charged"], job["owner"]) for job in await self.jobs()]
        assert rows == [("delivered", 1, taker.name)]
        assert await self.ledger() == ["reserve"]
        assert self.api.generate_calls() == 1
        assert (await self.finished(interaction)).content.startswith("✅")  # the taker edits the command's message


def _shards(spec: str) -> list[int]:
    first, _, last = spec.partition("-")
    return list(range(int(first), int(last or first) + 1))


MakeRig = Callable[..., Awaitable[Rig]]
_POST = r"/webhooks/\d+/[^/]+|/channels/\d+/messages"


@asynccontextmanager
async def rigs(api: FakeMusicApi, database_url: str, tmp_path: Path) -> AsyncIterator[MakeRig]:
    """Makes rigs on one database and fake music API; stops every process and fake Discord at the end."""
    made: list[Rig] = []

    async def make(*, max_concurrency: int = 2, ack_deadline: float = ACK_DEADLINE, **settings: Any) -> Rig:
        discord = FakeDiscord(shard_count=2, max_concurrency=max_concurrency, ack_deadline=ack_deadline)
        await discord.start()
        made.append(Rig(discord, api, database_url, tmp_path, **settings))
        return made[-1]

    try:
        yield make
    finally:
        for rig in made:
            await rig.close()
            await rig.discord.stop()


def vote_labels(message: FakeMessage) -> dict[str, str]:
    """The vote buttons as the message shows them now: {"up": "👍 1", "down": "👎 0"}."""
    return {key.rsplit(":", 1)[-1]: label for key, label in buttons(message).items() if key.startswith("vote:")}


async def _positive(rows: Awaitable[list[dict[str, Any]]]) -> bool:
    return int((await rows)[0]["n"]) > 0


# A trigger in the bot's database records, inside each granting transaction (after the server's lock, so every
# earlier grant has committed), how many of the server's jobs are running with the new one.
OBSERVE_RUNNING_AT_EACH_GRANT = """
CREATE TABLE observed (running INTEGER NOT NULL);
CREATE FUNCTION observe_grant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO observed SELECT count(*) FROM jobs
    WHERE guild_id = NEW.guild_id AND status IN ('reserved', 'submitted', 'polling');
    RETURN NULL;
END $$;
CREATE TRIGGER observe_grant AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION observe_grant();
"""
