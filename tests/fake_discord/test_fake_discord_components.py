"""Fake Discord: modals, dynamic buttons and select menus reaching their handlers."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import discord
import pytest
from discord.ext import commands

from tests.fake_discord.support import World, running


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
