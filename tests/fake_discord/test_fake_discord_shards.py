"""Fake Discord with several shards: guilds and events routed by shard, IDENTIFY limits, shard checks,
interactions sent to a chosen session or to every session of a shard, and message nonces."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import discord
import pytest
from discord.ext import commands

from tests.fake_discord.support import World, no_commands, running, text_channel
from tests.fakes.discord_server import FakeDiscord, GatewaySession

INTENT_GUILDS = 1


def sharded_bot(shard_id: int, shard_count: int = 2) -> commands.AutoShardedBot:
    """What one bot process with SHARD_IDS=<shard_id> runs: discord.py's AutoShardedBot on one shard."""
    intents = discord.Intents.none()
    intents.guilds = True
    return commands.AutoShardedBot(
        command_prefix=commands.when_mentioned,
        intents=intents,
        shard_ids=[shard_id],
        shard_count=shard_count,
        guild_ready_timeout=0.05,
    )


def frames(session: GatewaySession, event: str) -> list[dict[str, Any]]:
    return [frame["d"] for frame in session.history if frame["t"] == event]


async def test_each_shard_sees_only_its_guilds_and_their_events() -> None:
    async with FakeDiscord(shard_count=2, max_concurrency=2) as fake:
        on_0 = [fake.add_guild(name=f"zero {n}", shard=0) for n in range(3)]
        on_1 = [fake.add_guild(name=f"one {n}", shard=1) for n in range(2)]
        assert [fake.shard_of(guild_id) for guild_id in on_0 + on_1] == [0, 0, 0, 1, 1]
        assert [(guild_id >> 22) % 2 for guild_id in on_0 + on_1] == [0, 0, 0, 1, 1]
        assert sorted(on_0 + on_1) == on_0 + on_1  # ids stay increasing snowflakes
        assert fake.new_id() > on_1[-1]
        with pytest.raises(ValueError, match="shard 2 does not exist"):
            fake.add_guild(shard=2)
        async with AsyncExitStack() as stack:
            stack.enter_context(fake.patch_discord_py())
            first = await stack.enter_async_context(fake.run_client(sharded_bot(0)))
            second = await stack.enter_async_context(fake.run_client(sharded_bot(1)))
            assert {guild.id for guild in first.guilds} == set(on_0)
            assert {guild.id for guild in second.guilds} == set(on_1)
            assert {guild.shard_id for guild in second.guilds} == {1}
            (session_0,), (session_1,) = fake.sessions_for_shard(0), fake.sessions_for_shard(1)
            assert [ready["shard"] for ready in frames(session_0, "READY") + frames(session_1, "READY")] == [
                [0, 2],
                [1, 2],
            ]
            assert [int(guild["id"]) for guild in frames(session_1, "READY")[0]["guilds"]] == on_1

            late = fake.add_guild(name="late", shard=1)
            channel_id = fake.add_channel(late)
            await fake.wait_for(lambda: second.get_channel(channel_id) is not None)
            assert first.get_guild(late) is None
            assert all(int(g["id"]) != late for g in frames(session_0, "GUILD_CREATE"))
            assert frames(session_0, "CHANNEL_CREATE") == []
            await fake.wait_until_ready(shard=1)
            await fake.wait_until_ready(sessions=2)
        assert [identify["shard"] for identify in fake.identifies] == [[0, 2], [1, 2]]
        assert fake.invalid_sessions == []


class RawGateway:
    """Raw gateway sockets of one test; they stay open (and their sessions live) until the test ends."""

    def __init__(self, fake: FakeDiscord, http: aiohttp.ClientSession) -> None:
        self.fake, self.http = fake, http
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []

    async def identify(self, shard: Any = None) -> aiohttp.WSMessage:
        """Open a socket, IDENTIFY (with `shard` unless None) and return the first answer."""
        ws = await self.http.ws_connect(f"{self.fake.gateway_url}?v=10&encoding=json")
        self.sockets.append(ws)
        assert (await ws.receive_json())["op"] == 10
        payload: dict[str, Any] = {"token": self.fake.bot_token, "intents": INTENT_GUILDS, "properties": {}}
        if shard is not None:
            payload["shard"] = shard
        await ws.send_json({"op": 2, "d": payload})
        return await ws.receive(timeout=5)

    async def session_start_limit(self) -> dict[str, Any]:
        headers = {"Authorization": f"Bot {self.fake.bot_token}"}
        async with self.http.get(f"{self.fake.base_url}/api/v10/gateway/bot", headers=headers) as response:
            body: dict[str, Any] = await response.json()
        assert (body["url"], body["shards"]) == (self.fake.gateway_url, self.fake.shard_count)
        limit: dict[str, Any] = body["session_start_limit"]
        return limit


def opcode(message: aiohttp.WSMessage) -> tuple[int, Any]:
    assert message.type is aiohttp.WSMsgType.TEXT, message
    frame = message.json()
    return frame["op"], frame["t"] if frame["op"] == 0 else frame["d"]


async def test_identify_limits_and_shard_checks() -> None:
    async with FakeDiscord(shard_count=2) as fake, aiohttp.ClientSession() as http:
        raw = RawGateway(fake, http)
        fake.add_guild(shard=0)
        limit = {"total": 1000, "remaining": 1000, "reset_after": 86_400_000, "max_concurrency": 1}
        assert await raw.session_start_limit() == limit

        for bad, code, reason in [
            (None, 4011, "Sharding required"),
            ([2, 2], 4010, "Invalid shard"),
            ([0, 3], 4010, "Invalid shard"),
            ([-1, 2], 4010, "Invalid shard"),
            ("0,2", 4010, "Invalid shard"),
        ]:
            closed = await raw.identify(bad)
            assert (closed.type, closed.data, closed.extra) == (aiohttp.WSMsgType.CLOSE, code, reason)

        assert opcode(await raw.identify([0, 2])) == (0, "READY")
        assert opcode(await raw.identify([1, 2])) == (9, False)  # bucket 1 % 1 == 0, within 5 s
        assert [(i.shard, i.reason) for i in fake.invalid_sessions] == [((1, 2), "identify rate limit")]
        fake.advance(4.9)
        assert opcode(await raw.identify([1, 2])) == (9, False)
        fake.advance(0.2)
        assert opcode(await raw.identify([1, 2])) == (0, "READY")
        assert (await raw.session_start_limit())["remaining"] == 998
        assert [len(fake.sessions_for_shard(shard)) for shard in (0, 1)] == [1, 1]

    async with FakeDiscord(shard_count=4, max_concurrency=2) as fake, aiohttp.ClientSession() as http:
        raw = RawGateway(fake, http)
        assert opcode(await raw.identify([0, 4])) == (0, "READY")
        assert opcode(await raw.identify([1, 4])) == (0, "READY")  # another bucket
        assert opcode(await raw.identify([2, 4])) == (9, False)  # bucket 0 again
        assert [i.shard for i in fake.invalid_sessions] == [(2, 4)]

    async with FakeDiscord() as fake, aiohttp.ClientSession() as http:  # one shard: no limit unless asked
        raw = RawGateway(fake, http)
        assert [opcode(await raw.identify())[1] for _ in range(2)] == ["READY", "READY"]
        assert opcode(await raw.identify([0, 1])) == (0, "READY")


def answering_shard(bot: commands.AutoShardedBot, outcomes: list[tuple[int, str]], name: str) -> None:
    """/where answers with the shard the bot runs; each bot notes whether Discord took its answer."""

    @bot.tree.command(name="where", description="Which shard answers")
    async def where(interaction: discord.Interaction) -> None:
        try:
            await interaction.response.send_message(
                f"{name} on shard {interaction.guild and interaction.guild.shard_id}"
            )
        except discord.HTTPException as error:
            outcomes.append((error.code, name))
        else:
            outcomes.append((0, name))


async def test_interaction_goes_to_its_guilds_shard() -> None:
    async with FakeDiscord(shard_count=2, max_concurrency=2) as fake:
        places: list[dict[str, Any]] = []
        for shard in (0, 1):
            guild_id = fake.add_guild(shard=shard)
            places.append({"guild_id": guild_id, "channel_id": fake.add_channel(guild_id)})
            places[-1]["user_id"] = fake.add_member(guild_id, name=f"user{shard}")
        outcomes: list[tuple[int, str]] = []
        bots = [sharded_bot(0), sharded_bot(1)]
        for bot, name in zip(bots, ("A", "B"), strict=True):
            answering_shard(bot, outcomes, name)
        async with AsyncExitStack() as stack:
            stack.enter_context(fake.patch_discord_py())
            for bot in bots:
                await stack.enter_async_context(fake.run_client(bot))
            on_1 = await fake.invoke_command("where", **places[1])
            await on_1.wait_responded()
            on_0 = await fake.invoke_command("where", **places[0])
            await on_0.wait_responded()
        assert on_1.delivered_to == fake.gateway.sessions[1:2]
        assert on_0.delivered_to == fake.gateway.sessions[0:1]
        assert [i.original.content if i.original else None for i in (on_1, on_0)] == ["B on shard 1", "A on shard 0"]
        assert outcomes == [(0, "B"), (0, "A")]


async def test_one_interaction_to_every_session_of_a_shard_is_answered_once() -> None:
    async with FakeDiscord(shard_count=2) as fake:
        guild_id = fake.add_guild(shard=0)
        place: dict[str, Any] = {"guild_id": guild_id, "channel_id": fake.add_channel(guild_id)}
        place["user_id"] = fake.add_member(guild_id, name="alice")
        outcomes: list[tuple[int, str]] = []
        bots = [sharded_bot(0), sharded_bot(0)]
        for bot, name in zip(bots, ("A", "B"), strict=True):
            answering_shard(bot, outcomes, name)
        async with AsyncExitStack() as stack:
            stack.enter_context(fake.patch_discord_py())
            await stack.enter_async_context(fake.run_client(bots[0]))
            fake.advance(5)  # the second process IDENTIFYs on the same bucket 5 s later (its lock would see to it)
            await stack.enter_async_context(fake.run_client(bots[1]))
            older, newer = fake.sessions_for_shard(0)
            assert fake.sessions_for_shard(1) == []

            both = await fake.invoke_command("where", **place, to_all_sessions=True)
            await fake.wait_for(lambda: len(outcomes) == 2)
            assert both.delivered_to == [older, newer]
            assert [frames(s, "INTERACTION_CREATE")[-1]["token"] for s in (older, newer)] == [both.token] * 2
            assert sorted(code for code, _ in outcomes) == [0, 40060]
            assert (len(both.callbacks), both.errors) == (1, [(400, 40060)])
            winner = next(name for code, name in outcomes if code == 0)
            assert [m.content for m in fake.messages(place["channel_id"])] == [f"{winner} on shard 0"]

            outcomes.clear()
            for choice, expected in [(None, "B"), (0, "A"), (-1, "B"), (older, "A")]:
                chosen = await fake.invoke_command("where", **place, session=choice)
                await chosen.wait_responded()
                assert chosen.original is not None
                assert chosen.original.content == f"{expected} on shard 0"
            assert outcomes == [(0, "B"), (0, "A"), (0, "B"), (0, "A")]
            with pytest.raises(IndexError):
                await fake.invoke_command("where", **place, session=2)
            with pytest.raises(ValueError, match="either"):
                await fake.invoke_command("where", **place, session=0, to_all_sessions=True)
        assert fake.invalid_sessions == []


async def test_nonce_repeat_returns_the_same_message(world: World) -> None:
    fake = world.fake
    async with running(world, no_commands) as bot:
        channel = text_channel(bot, world.channel_id)
        first = await channel.send("clip 1", nonce="j12c0")
        again = await channel.send("clip 1 (retry)", nonce="j12c0")
        assert (again.id, again.content, again.nonce) == (first.id, "clip 1", "j12c0")
        other = await channel.send("clip 2", nonce="j12c1")
        assert other.id != first.id
        assert fake.requests[-3].json["enforce_nonce"] is True
        assert [m.nonce for m in fake.messages(world.channel_id)] == ["j12c0", "j12c1"]
        assert (await channel.fetch_message(first.id)).nonce is None  # Discord echoes it only on create

        with pytest.raises(discord.HTTPException) as refused:
            await channel.send("x", nonce="n" * 26)
        assert (refused.value.status, refused.value.code) == (400, 50035)
        assert fake.requests[-1].response["errors"]["nonce"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"

        fake.advance(301)  # nonces are kept for 5 minutes
        later = await channel.send("clip 1", nonce="j12c0")
        assert later.id != first.id
        assert await channel.send("clip 1", nonce="j12c0") == later
        await later.delete()
        assert (await channel.send("clip 1", nonce="j12c0")).id != later.id

        api = f"{fake.base_url}/api/v10/channels/{world.channel_id}/messages"
        headers = {"Authorization": f"Bot {fake.bot_token}"}
        async with aiohttp.ClientSession(headers=headers) as http:  # without enforce_nonce: always a new message
            ids = []
            for _ in range(2):
                async with http.post(api, json={"content": "plain", "nonce": 7}) as response:
                    body = await response.json()
                    ids.append(body["id"])
                    assert body["nonce"] == 7
            assert ids[0] != ids[1]
