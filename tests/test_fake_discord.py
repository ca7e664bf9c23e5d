"""Tests of the fake Discord itself, driven by a real discord.py commands.Bot."""

from __future__ import annotations

import asyncio
import io
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import discord
import pytest
from discord.ext import commands

from tests.fakes.discord_models import READ_MESSAGE_HISTORY, USE_APPLICATION_COMMANDS, VIEW_CHANNEL, UserOption
from tests.fakes.discord_redirect import install_from_env
from tests.fakes.discord_server import FAULT_ROUTES, FakeDiscord, FakeInteraction


@dataclass
class World:
    """A fake Discord with one guild, one text channel and one member, and discord.py pointed at it."""

    fake: FakeDiscord
    guild_id: int
    channel_id: int
    user_id: int

    async def invoke(self, name: str, options: dict[str, Any] | None = None, **kwargs: Any) -> FakeInteraction:
        place = {"guild_id": self.guild_id, "channel_id": self.channel_id, "user_id": self.user_id}
        return await self.fake.invoke_command(name, options, **(place | kwargs))


def make_bot() -> commands.Bot:
    intents = discord.Intents.none()
    intents.guilds = True
    return commands.Bot(command_prefix=commands.when_mentioned, intents=intents, guild_ready_timeout=0.05)


@asynccontextmanager
async def running(world: World, setup: Callable[[commands.Bot], None]) -> AsyncIterator[commands.Bot]:
    """Start a bot with the commands `setup` adds, sync them, and stop it afterwards."""
    bot = make_bot()
    setup(bot)
    async with world.fake.run_client(bot):
        await bot.tree.sync()
        yield bot


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with FakeDiscord() as fake:
        guild_id = fake.add_guild()
        channel_id = fake.add_channel(guild_id)
        user_id = fake.add_member(guild_id, name="alice")
        with fake.patch_discord_py():
            yield World(fake, guild_id, channel_id, user_id)
        assert fake.internal_errors == []
        assert fake.unhandled_routes == []


async def test_bot_connects_syncs_and_reconnects(world: World) -> None:
    fake = world.fake

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="ping", description="Answer pong")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong")

    async with running(world, setup) as bot:
        await asyncio.wait_for(bot.wait_until_ready(), 5)
        channel = bot.get_channel(world.channel_id)
        assert isinstance(channel, discord.TextChannel)
        assert channel.guild.me.guild_permissions.send_messages
        assert fake.identifies[-1]["intents"] == bot.intents.value
        fetched = await bot.tree.fetch_commands()
        assert [(c.name, c.id) for c in fetched] == [("ping", int(fake.synced_commands[None][0]["id"]))]

    async with running(world, setup) as bot:  # a restarted bot gets a fresh session; command ids are kept
        await fake.disconnect_bot()  # a dropped connection: discord.py RESUMEs the session
        await fake.wait_until_ready()
        interaction = await world.invoke("ping")
        await fake.wait_for(lambda: interaction.original is not None)
        assert bot.get_channel(world.channel_id) is not None
    assert len(fake.identifies) == 2
    dropped, resumed = fake.gateway.sessions[1:3]
    assert (dropped.close_code, resumed.session_id, resumed.identified) == (4000, dropped.session_id, True)
    assert interaction.original is not None
    assert interaction.original.content == "pong"
    assert interaction.data["id"] == str(fetched[0].id)


async def test_command_options_reach_the_handler(world: World) -> None:
    received: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="generate", description="Make a song")
        async def generate(
            interaction: discord.Interaction,
            prompt: str,
            count: int = 1,
            instrumental: bool = False,
            listener: discord.Member | None = None,
        ) -> None:
            received.set_result((prompt, count, instrumental, listener, interaction.filesize_limit))
            await interaction.response.send_message("queued", ephemeral=True)

    async with running(world, setup):
        options = {"prompt": "sea shanty", "count": 2, "instrumental": True, "listener": UserOption(world.user_id)}
        interaction = await world.invoke("generate", options)
        prompt, count, instrumental, listener, limit = await asyncio.wait_for(received, 5)
        await interaction.wait_responded()
    assert (prompt, count, instrumental, limit) == ("sea shanty", 2, True, 10 * 1024 * 1024)
    assert isinstance(listener, discord.Member)
    assert listener.id == world.user_id
    assert interaction.ephemeral
    assert interaction.original is not None
    assert interaction.original.ephemeral
    with pytest.raises(ValueError, match="required"):
        await world.invoke("generate", {"count": 1})


async def test_defer_edit_and_followup_with_file(world: World) -> None:
    results: dict[str, Any] = {}
    song = bytes(range(256)) * 40

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="song", description="Send a song")
        async def send_song(interaction: discord.Interaction) -> None:
            deferred = await interaction.response.defer(thinking=True)
            results["deferred_id"] = deferred.message_id if deferred else None
            await interaction.edit_original_response(content="Rendering…")
            song_file = discord.File(io.BytesIO(song), "song.mp3")
            sent = await interaction.followup.send("Here it is", file=song_file, wait=True)
            results["downloaded"] = await sent.attachments[0].read()
            # Discord's edit rule: listed attachments are kept, new files appended, unlisted ones dropped.
            cover = discord.File(io.BytesIO(b"png"), "cover.png")
            kept = await sent.edit(attachments=[sent.attachments[0], cover])
            results["after_append"] = [a.filename for a in kept.attachments]
            replaced = await kept.edit(attachments=[kept.attachments[1]])
            results["after_drop"] = [a.filename for a in replaced.attachments]

    async with running(world, setup):
        interaction = await world.invoke("song")
        await world.fake.wait_for(lambda: "after_drop" in results)
    original, followup = interaction.original, interaction.followups[0]
    assert original is not None
    assert results["deferred_id"] == original.id
    assert (original.content, original.edits, original.loading) == ("Rendering…", 1, False)
    assert results["downloaded"] == song
    assert results["after_append"] == ["song.mp3", "cover.png"]
    assert results["after_drop"] == ["cover.png"]
    followup_post = next(r for r in world.fake.requests if r.method == "POST" and r.path.startswith("/webhooks/"))
    song_upload = followup_post.files[0]  # the multipart part as the fake received it
    assert (song_upload.filename, song_upload.data) == ("song.mp3", song)
    assert followup.attachments[0].content_type == "image/png"
    assert world.fake.messages(world.channel_id) == [original, followup]


async def test_late_first_response_is_unknown_interaction(world: World) -> None:
    world.fake.ack_deadline = 0.2
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="slow", description="Too slow")
        async def slow(interaction: discord.Interaction) -> None:
            await asyncio.sleep(0.3)
            try:
                await interaction.response.defer()
            except discord.HTTPException as error:
                outcome.set_result(error)
            else:
                outcome.set_result(None)

    async with running(world, setup):
        interaction = await world.invoke("slow")
        error = await asyncio.wait_for(outcome, 5)
    assert isinstance(error, discord.NotFound)
    assert error.code == 10062
    assert interaction.errors == [(404, 10062)]
    assert not interaction.callbacks


async def test_expired_token_is_rejected_with_50027(world: World) -> None:
    deferred: asyncio.Future[discord.Interaction] = asyncio.get_running_loop().create_future()

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="long", description="Long job")
        async def long_job(interaction: discord.Interaction) -> None:
            await interaction.response.defer()
            deferred.set_result(interaction)

    async with running(world, setup):
        fake_interaction = await world.invoke("long")
        interaction = await asyncio.wait_for(deferred, 5)
        world.fake.advance(901)
        with pytest.raises(discord.HTTPException) as caught:
            await interaction.edit_original_response(content="finally")
        with pytest.raises(discord.HTTPException) as caught_followup:
            await interaction.followup.send("late")
    assert (caught.value.status, caught.value.code) == (401, 50027)
    assert (caught_followup.value.status, caught_followup.value.code) == (401, 50027)
    assert fake_interaction.errors == [(401, 50027), (401, 50027)]


async def test_upload_and_embed_limits(world: World) -> None:
    errors: dict[str, discord.HTTPException] = {}

    async def capture(name: str, attempt: Any) -> None:
        try:
            await attempt
        except discord.HTTPException as error:
            errors[name] = error

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="limits", description="Break limits")
        async def limits(interaction: discord.Interaction) -> None:
            await interaction.response.defer()
            big = discord.File(io.BytesIO(b"x" * 2048), "big.mp3")
            await capture("file", interaction.followup.send(file=big))
            await capture("title", interaction.followup.send(embed=discord.Embed(title="t" * 257)))
            embeds = [discord.Embed(description="d" * 4000), discord.Embed(description="d" * 2001)]
            await capture("total", interaction.followup.send(embeds=embeds))
            await capture("content", interaction.edit_original_response(content="c" * 2001))
            channel = bot.get_channel(world.channel_id)
            assert isinstance(channel, discord.TextChannel)
            over_guild_limit = discord.File(io.BytesIO(b"x" * (10 * 1024 * 1024 + 1)), "huge.mp3")
            await capture("channel file", channel.send(file=over_guild_limit))
            await interaction.edit_original_response(content="done")

    async with running(world, setup):
        interaction = await world.invoke("limits", attachment_size_limit=1024)
        await world.fake.wait_for(lambda: interaction.original is not None and interaction.original.edits == 1)
    assert {name: (e.status, e.code) for name, e in errors.items()} == {
        "file": (413, 40005),
        "title": (400, 50035),
        "total": (400, 50035),
        "content": (400, 50035),
        "channel file": (413, 40005),
    }
    assert "embeds.0.title" in str(errors["title"])
    assert world.fake.messages(world.channel_id) == [interaction.original]


async def test_pinged_follows_allowed_mentions(world: World) -> None:
    def setup(bot: commands.Bot) -> None:
        pass

    async with running(world, setup) as bot:
        channel = bot.get_channel(world.channel_id)
        assert isinstance(channel, discord.TextChannel)
        silenced = await channel.send("@everyone new song", allowed_mentions=discord.AllowedMentions.none())
        loud = await channel.send(f"@here <@{world.user_id}> new song")
        only_user = await channel.send(
            f"@everyone <@{world.user_id}>", allowed_mentions=discord.AllowedMentions(everyone=False, users=True)
        )
        embed_only = await channel.send(embed=discord.Embed(description=f"@everyone <@{world.user_id}>"))
    fake = world.fake
    assert fake.message(silenced.id).pinged() == set()
    assert fake.message(loud.id).pinged() == {"everyone", f"user:{world.user_id}"}
    assert loud.mention_everyone
    assert fake.message(only_user.id).pinged() == {f"user:{world.user_id}"}
    assert fake.message(embed_only.id).pinged() == set()


async def test_channel_routes_check_the_bots_permissions(world: World) -> None:
    def setup(bot: commands.Bot) -> None:
        pass

    fake = world.fake
    async with running(world, setup) as bot:
        channel = bot.get_channel(world.channel_id)
        assert isinstance(channel, discord.TextChannel)
        status = await channel.send("Rendering your song…")
        fake.set_bot_permissions(world.guild_id, VIEW_CHANNEL | READ_MESSAGE_HISTORY | USE_APPLICATION_COMMANDS)
        with pytest.raises(discord.Forbidden) as refused:
            await channel.send("again")
        edited = await channel.get_partial_message(status.id).edit(content="Done")  # own messages stay editable
        with pytest.raises(discord.NotFound) as unknown:
            await bot.http.send_message(12345, params=discord.http.handle_message_parameters(content="x"))
    assert refused.value.code == 50013
    assert unknown.value.code == 10003
    assert edited.content == fake.message(status.id).content == "Done"


class SongModal(discord.ui.Modal, title="Describe your song"):
    prompt: discord.ui.TextInput[SongModal] = discord.ui.TextInput(label="Prompt", custom_id="prompt")

    def __init__(self, submitted: asyncio.Future[str]) -> None:
        super().__init__(custom_id="song-modal")
        self.submitted = submitted

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"Got {self.prompt.value}", ephemeral=True)
        self.submitted.set_result(self.prompt.value)


class VoteButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=r"vote:(?P<job>\d+):(?P<side>[ab])"
):
    def __init__(self, job: int, side: str) -> None:
        self.job, self.side = job, side
        super().__init__(discord.ui.Button(label=f"Vote {side}", custom_id=f"vote:{job}:{side}"))

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> VoteButton:
        return cls(int(match["job"]), match["side"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.edit_message(content=f"Voted {self.side} on job {self.job}", view=None)


async def test_modal_submit_and_dynamic_button_reach_handlers(world: World) -> None:
    submitted: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def setup(bot: commands.Bot) -> None:
        bot.add_dynamic_items(VoteButton)

        @bot.tree.command(name="describe", description="Open the song form")
        async def describe(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(SongModal(submitted))

        @bot.tree.command(name="vote", description="Post vote buttons")
        async def vote(interaction: discord.Interaction) -> None:
            view = discord.ui.View(timeout=None)
            view.add_item(VoteButton(7, "a")).add_item(VoteButton(7, "b"))
            await interaction.response.send_message("Which one?", view=view)

    fake = world.fake
    async with running(world, setup):
        opened = await world.invoke("describe")
        await opened.wait_responded()
        assert opened.modal is not None
        assert opened.modal["custom_id"] == "song-modal"
        place = {"guild_id": world.guild_id, "channel_id": world.channel_id, "user_id": world.user_id}
        submit = await fake.submit_modal("song-modal", {"prompt": "lofi beats"}, **place)
        assert await asyncio.wait_for(submitted, 5) == "lofi beats"

        posted = await world.invoke("vote")
        await posted.wait_responded()
        assert posted.original is not None
        click = await fake.click_button(posted.original.id, "vote:7:b", user_id=world.user_id)
        await click.wait_responded()
    await submit.wait_responded()
    assert submit.original is not None
    assert submit.original.content == "Got lofi beats"
    assert click.response_type == 7
    assert click.original is posted.original
    assert posted.original is not None
    assert (posted.original.content, posted.original.components) == ("Voted b on job 7", [])


class GenreModal(discord.ui.Modal, title="Pick a genre"):
    """A modal in discord.py 2.6+ style: inputs wrapped in Label components rather than action rows."""

    def __init__(self, submitted: asyncio.Future[tuple[str, list[str]]]) -> None:
        super().__init__(custom_id="genre-modal")
        self.submitted = submitted
        self.mood = discord.ui.TextInput[GenreModal](custom_id="mood", max_length=20)
        genres = [discord.SelectOption(label=name, value=name.lower()) for name in ("Jazz", "Rock")]
        self.genre = discord.ui.Select[GenreModal](custom_id="genre", options=genres)
        self.add_item(discord.ui.Label(text="Mood", component=self.mood))
        self.add_item(discord.ui.Label(text="Genre", component=self.genre))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        self.submitted.set_result((self.mood.value, self.genre.values))
        await interaction.response.defer()


class LengthPicker(discord.ui.View):
    @discord.ui.select(
        custom_id="length", options=[discord.SelectOption(label=f"{n} min", value=str(n)) for n in (1, 3)]
    )
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select[LengthPicker]) -> None:
        await interaction.response.defer()  # type 6: nothing visible yet
        await interaction.edit_original_response(content=f"Length: {select.values[0]} min", view=None)


async def test_label_modal_select_menu_and_deferred_update(world: World) -> None:
    submitted: asyncio.Future[tuple[str, list[str]]] = asyncio.get_running_loop().create_future()

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="genre", description="Open the genre form")
        async def genre(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(GenreModal(submitted))

        @bot.tree.command(name="length", description="Pick a length")
        async def length(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("How long?", view=LengthPicker())

    fake = world.fake
    place = {"guild_id": world.guild_id, "channel_id": world.channel_id, "user_id": world.user_id}
    async with running(world, setup):
        await (await world.invoke("genre")).wait_responded()
        with pytest.raises(ValueError, match="max_length"):
            await fake.submit_modal("genre-modal", {"mood": "m" * 21, "genre": ["rock"]}, **place)
        await fake.submit_modal("genre-modal", {"mood": "calm", "genre": ["rock"]}, **place)
        assert await asyncio.wait_for(submitted, 5) == ("calm", ["rock"])

        asked = await world.invoke("length")
        await asked.wait_responded()
        assert asked.original is not None
        picked = await fake.choose_options(asked.original.id, "length", ["3"], user_id=world.user_id)
        await fake.wait_for(lambda: asked.original is not None and asked.original.edits == 1)
    assert picked.callbacks == [{"type": 6}]
    assert asked.original is not None
    assert (asked.original.content, asked.original.components) == ("Length: 3 min", [])


async def test_protocol_errors_for_raw_requests(world: World) -> None:
    """What discord.py guards against client-side: double acks, early follow-ups, bad bodies."""

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="quiet", description="Never answers")
        async def quiet(interaction: discord.Interaction) -> None:
            return None

    fake = world.fake
    async with running(world, setup), aiohttp.ClientSession() as http:
        interaction = await world.invoke("quiet")
        api = f"{fake.base_url}/api/v10"
        callback = f"{api}/interactions/{interaction.id}/{interaction.token}/callback"
        followup = f"{api}/webhooks/{fake.application_id}/{interaction.token}"

        async def post(url: str, body: Any) -> tuple[int, Any]:
            async with http.post(url, json=body) as response:
                return response.status, await response.json() if response.status != 204 else None

        assert (await post(followup, {"content": "too early"}))[1]["code"] == 10015
        bad_button = {"type": 2, "style": 1, "label": "x", "custom_id": "c" * 101}
        status, body = await post(
            callback, {"type": 4, "data": {"components": [{"type": 1, "components": [bad_button]}]}}
        )
        assert (status, body["code"]) == (400, 50035)
        assert (await post(callback, {"type": 4, "data": {"content": 42}}))[0] == 400
        assert (await post(callback, {"type": 4, "data": {}}))[1]["code"] == 50006
        assert (await post(callback, {"type": 4, "data": {"content": "hi"}}))[0] == 204
        assert (await post(callback, {"type": 5}))[1] == {
            "message": "Interaction has already been acknowledged.",
            "code": 40060,
        }
        async with http.post(f"{api}/channels/1/messages", json={"content": "x"}) as response:
            assert response.status == 401
    assert interaction.errors[0] == (404, 10015)
    assert interaction.errors[-1] == (400, 40060)


async def test_redirect_from_env(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in world.fake.env().items():
        monkeypatch.setenv(name, value)
    discord.http.Route.BASE = "https://discord.com/api/v10"
    assert install_from_env()
    patched = (discord.http.Route.BASE, str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY))
    assert patched == (f"{world.fake.base_url}/api/v10", world.fake.gateway_url)


@dataclass
class RetrySleeps:
    """Stands in for the asyncio module in discord.py's HTTP clients: records their non-zero sleeps, skips them."""

    slept: list[float] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float, result: Any = None) -> Any:
        if delay:
            self.slept.append(delay)
        await asyncio.sleep(0)
        return result


@pytest.fixture
def retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> RetrySleeps:
    """discord.py sleeps 1 + 2 * attempt seconds between 5xx retries (25 s for a final failure); skip that."""
    sleeps = RetrySleeps()
    monkeypatch.setattr(discord.http, "asyncio", sleeps)
    monkeypatch.setattr(discord.webhook.async_, "asyncio", sleeps)
    return sleeps


def text_channel(bot: commands.Bot, channel_id: int) -> discord.TextChannel:
    channel = bot.get_channel(channel_id)
    assert isinstance(channel, discord.TextChannel)
    return channel


def no_commands(bot: commands.Bot) -> None:
    pass


async def test_injected_server_errors_and_discord_py_retries(world: World, retry_sleeps: RetrySleeps) -> None:
    fake = world.fake

    def posts() -> list[Any]:
        return [r for r in fake.requests if r.method == "POST" and r.path == f"/channels/{world.channel_id}/messages"]

    async with running(world, no_commands) as bot:
        channel = text_channel(bot, world.channel_id)
        fake.fail_next("create_message", status=500, times=6)
        with pytest.raises(discord.DiscordServerError) as failed:
            await channel.send("lost")
        assert retry_sleeps.slept == [1, 3, 5, 7, 9]  # five attempts, a sleep after each
        assert [(r.status, r.injected, r.json["content"]) for r in posts()] == [(500, True, "lost")] * 5
        assert (failed.value.status, failed.value.code, failed.value.text) == (500, 0, "500: Internal Server Error")
        assert fake.messages(world.channel_id) == []

        retry_sleeps.slept.clear()
        fake.fail_next("create_message", status=502)  # queued behind the sixth 500, which is still armed
        sent = await channel.send("made it")
        assert retry_sleeps.slept == [1, 3]
        assert [r.status for r in posts()[5:]] == [500, 502, 200]
        assert [m.content for m in fake.messages(world.channel_id)] == ["made it"] == [sent.content]

        retry_sleeps.slept.clear()
        fake.fail_next("create_message", status=503)  # not in discord.py's retry set {500, 502, 504, 524}
        with pytest.raises(discord.DiscordServerError) as unavailable:
            await channel.send("not retried")
        assert (unavailable.value.status, unavailable.value.text) == (503, "503: Service Unavailable")
        assert retry_sleeps.slept == []
        assert len(posts()) == 9
        assert fake.describe().count("armed fault") == 0


async def test_interaction_routes_retry_every_5xx(world: World, retry_sleeps: RetrySleeps) -> None:
    done: asyncio.Future[discord.WebhookMessage] = asyncio.get_running_loop().create_future()

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="slowdown", description="Defer, then follow up")
        async def slowdown(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            done.set_result(await interaction.followup.send("finally", wait=True))

    fake = world.fake
    async with running(world, setup):
        fake.fail_next("callback", status=503)
        fake.fail_next("followup", status=500, times=2)
        interaction = await world.invoke("slowdown")
        followup = await asyncio.wait_for(done, 5)
    assert retry_sleeps.slept == [1, 1, 3]  # the webhook adapter retries 503 too
    assert interaction.errors == [(503, 0), (500, 0), (500, 0)]
    assert interaction.callbacks == [{"type": 5}]
    assert interaction.original is not None
    assert interaction.original.content == followup.content == "finally"


async def test_injected_client_errors_change_nothing(world: World) -> None:
    results: dict[str, Any] = {}

    def setup(bot: commands.Bot) -> None:
        @bot.tree.command(name="post", description="Post and edit")
        async def post(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("first")
            try:
                await interaction.edit_original_response(content="second")
            except discord.HTTPException as error:
                results["edit_original"] = error
            try:
                await interaction.followup.send(file=discord.File(io.BytesIO(b"song"), "song.mp3"))
            except discord.HTTPException as error:
                results["followup"] = error
            results["done"] = True

    fake = world.fake
    async with running(world, setup) as bot:
        channel = text_channel(bot, world.channel_id)
        status = await channel.send("Rendering…")
        fake.fail_next("create_message", status=403, code=50013)
        fake.fail_next("edit_message", status=403, code=50001)
        with pytest.raises(discord.Forbidden) as refused:
            await channel.send("again")
        with pytest.raises(discord.Forbidden) as no_access:
            await status.edit(content="Done")
        fake.fail_next("edit_original", status=404, code=10015)
        fake.fail_next("followup", status=413, code=40005)
        interaction = await world.invoke("post")
        await fake.wait_for(lambda: "done" in results)
    assert (refused.value.status, refused.value.code, refused.value.text) == (403, 50013, "Missing Permissions")
    assert (no_access.value.code, no_access.value.text) == (50001, "Missing Access")
    assert isinstance(results["edit_original"], discord.NotFound)
    assert (results["followup"].status, results["followup"].code) == (413, 40005)
    assert str(results["followup"]) == "413 Request Entity Too Large (error code: 40005): Request entity too large"
    assert interaction.errors == [(404, 10015), (413, 40005)]
    assert [(m.content, m.edits) for m in fake.messages(world.channel_id)] == [("Rendering…", 0), ("first", 0)]
    assert fake.requests[-1].files[0].filename == "song.mp3"  # what the bot tried to send is recorded
    with pytest.raises(ValueError, match="unknown route 'delete_message'"):
        fake.fail_next("delete_message", status=500)
    with pytest.raises(ValueError, match="unknown route"):
        fake.delay_next("edit", seconds=1)
    assert set(FAULT_ROUTES) == {
        "callback",
        "followup",
        "edit_original",
        "edit_webhook_message",
        "create_message",
        "edit_message",
        "list_messages",
    }


async def test_injected_rate_limit_is_retried_after_retry_after(world: World) -> None:
    async with running(world, no_commands) as bot:
        world.fake.fail_next("create_message", status=429, retry_after=0.05)
        started = time.monotonic()
        sent = await text_channel(bot, world.channel_id).send("eventually")
        elapsed = time.monotonic() - started
    limited = next(r for r in world.fake.requests if r.status == 429)
    assert limited.response == {
        "message": "You are being rate limited.",
        "code": 0,
        "retry_after": 0.05,
        "global": False,
    }
    assert 0.05 <= elapsed < 1
    assert world.fake.message(sent.id).content == "eventually"


async def test_delay_next_holds_a_request(world: World) -> None:
    fake = world.fake
    async with running(world, no_commands) as bot:
        channel = text_channel(bot, world.channel_id)
        status = await channel.send("Rendering…")
        fake.delay_next("edit_message", seconds=0.3)
        started = time.monotonic()
        editing = asyncio.create_task(status.edit(content="Done"))
        await fake.wait_for(lambda: fake.requests[-1].method == "PATCH")
        held = fake.requests[-1]
        await asyncio.sleep(0.1)
        assert (held.status, fake.message(status.id).content) == (0, "Rendering…")  # still in flight
        await editing
        assert time.monotonic() - started >= 0.3
        assert (held.status, fake.message(status.id).content) == (200, "Done")
        started = time.monotonic()
        await status.edit(content="Done again")  # only the next request was held
        assert time.monotonic() - started < 0.3


async def test_stop_ends_every_held_request_at_once() -> None:
    """A hold armed with delay_next never keeps stop() (a test's teardown) waiting: a request still held is
    answered 503 without being handled, and a held answer goes out as it is."""
    async with FakeDiscord() as fake:
        guild_id = fake.add_guild()
        channel_id = fake.add_channel(guild_id)
        url = f"{fake.base_url}/api/v10/channels/{channel_id}/messages"
        fake.delay_next("create_message", seconds=60)
        fake.delay_next("list_messages", seconds=60, response_only=True)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bot {fake.bot_token}"}) as session:

            async def status_of(method: str, **kwargs: Any) -> int:
                async with session.request(method, url, **kwargs) as response:
                    return response.status

            held = asyncio.create_task(status_of("POST", json={"content": "never posted"}))
            listed = asyncio.create_task(status_of("GET"))
            await fake.wait_for(lambda: len(fake.requests) == 2)
            started = time.monotonic()
            await fake.stop()
            assert time.monotonic() - started < 5  # not the 60 s armed
            assert (await held, await listed) == (503, 200)
        assert fake.messages(channel_id) == []


async def test_history_returns_own_messages_newest_first(world: World) -> None:
    fake = world.fake
    async with running(world, no_commands) as bot:
        channel = text_channel(bot, world.channel_id)
        view = discord.ui.View().add_item(discord.ui.Button(label="Vote", custom_id="vote:1"))
        embed = discord.Embed(title="Sea shanty", description="3:12").set_footer(text="job 1 · done")
        first = await channel.send(embed=embed, view=view)
        song = discord.File(io.BytesIO(b"mp3"), "song.mp3")
        second = await channel.send("Here it is", file=song, embed=discord.Embed(title="x").set_footer(text="job 2"))
        sent = [first, second, *[await channel.send(f"note {n}") for n in range(3)]]

        history = [m async for m in channel.history(limit=50)]
        assert [m.id for m in history] == [m.id for m in reversed(sent)]
        found = next(
            m for m in history if m.author == bot.user and m.embeds and m.embeds[0].footer.text == "job 1 · done"
        )
        assert found.id == first.id
        assert (found.embeds[0].title, found.embeds[0].footer.text) == ("Sea shanty", "job 1 · done")
        assert bot.user is not None
        assert found.author.id == bot.user.id
        row = found.components[0]
        assert isinstance(row, discord.ActionRow)
        button = row.children[0]
        assert isinstance(button, discord.Button)
        assert button.custom_id == "vote:1"
        with_file = history[-2]
        assert with_file.attachments[0].filename == "song.mp3"
        assert await with_file.attachments[0].read() == b"mp3"
        assert with_file.embeds[0].footer.text == "job 2"

        ids = [m.id for m in sent]
        assert [m.id async for m in channel.history(limit=2)] == ids[:-3:-1]
        assert [m.id async for m in channel.history(limit=3, before=second)] == [ids[0]]
        assert [m.id async for m in channel.history(limit=2, after=first)] == ids[1:3]  # oldest first
        assert [m.id async for m in channel.history(limit=3, around=sent[2])] == ids[3:0:-1]
        assert [m.id async for m in channel.history(limit=None, oldest_first=True)] == ids
        with pytest.raises(discord.HTTPException) as too_many:
            await bot.http.logs_from(world.channel_id, 101)
        with pytest.raises(discord.HTTPException) as two_anchors:
            await bot.http.request(
                discord.http.Route("GET", "/channels/{channel_id}/messages", channel_id=world.channel_id),
                params={"before": ids[-1], "after": ids[0]},
            )
    assert (too_many.value.code, too_many.value.text) == (
        50035,
        "Invalid Form Body\nIn limit: int value should be less than or equal to 100.",
    )
    assert (two_anchors.value.status, two_anchors.value.code) == (400, 50035)

    pages = [r for r in fake.requests if r.method == "GET" and r.path.endswith("/messages")]
    assert pages[0].query == {"limit": "50"}
    assert {key for page in pages for key in page.query} == {"limit", "before", "after", "around"}
