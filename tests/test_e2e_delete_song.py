"""End to end: a moderator deletes a song with `/music-admin delete-song` or the message's "Delete song" app
command; members and messages that are not songs are refused."""

from __future__ import annotations

from typing import Any

from tests.fakes.discord_server import FakeInteraction, FakeMessage
from tests.harness import RunningBot

DEFERRED = 5


def link(harness: RunningBot, message: FakeMessage, guild_id: int | None = None) -> str:
    return f"https://discord.com/channels/{guild_id or harness.guild_id}/{message.channel_id}/{message.id}"


async def by_command(harness: RunningBot, user_id: int, message: str) -> FakeInteraction:
    return await harness.discord.invoke_command(
        "music-admin",
        {"message": message},
        subcommand="delete-song",
        guild_id=harness.guild_id,
        channel_id=harness.channel_id,
        user_id=user_id,
    )


async def by_menu(harness: RunningBot, user_id: int, message: FakeMessage) -> FakeInteraction:
    return await harness.discord.invoke_message_command("Delete song", message.id, user_id=user_id)


async def final_words(harness: RunningBot, interaction: FakeInteraction) -> str:
    """The private answer, once it is more than a "thinking" message."""

    def answered() -> bool:
        original = interaction.original
        return original is not None and bool(original.content)

    await harness.discord.wait_for(answered)
    assert interaction.ephemeral
    assert interaction.original is not None
    return interaction.original.content


async def top_links(harness: RunningBot) -> str:
    viewer = harness.discord.add_member(harness.guild_id, name="viewer")
    interaction = await harness.command("music-top", viewer, period="all")
    await harness.discord.wait_for(lambda: bool(interaction.callbacks))
    return str(interaction.callbacks[0]["data"]["embeds"][0]["description"])


async def song_records(harness: RunningBot, message: FakeMessage) -> dict[str, Any]:
    clips = await harness.query("SELECT id FROM clips WHERE message_id = ?", message.id)
    clip_ids = [row["id"] for row in clips]
    marks = ", ".join("?" * len(clip_ids)) or "NULL"
    votes = await harness.query(f"SELECT * FROM votes WHERE clip_id IN ({marks})", *clip_ids)
    tallies = await harness.query(f"SELECT * FROM vote_tallies WHERE clip_id IN ({marks})", *clip_ids)
    hours = await harness.query(f"SELECT * FROM vote_hours WHERE clip_id IN ({marks})", *clip_ids)
    return {"clips": clip_ids, "votes": votes, "tallies": tallies, "hours": hours}


async def test_a_moderator_deletes_songs_by_command_and_from_the_apps_menu(harness: RunningBot) -> None:
    first, second = await harness.songs("two songs to remove")
    keeper, _ = await harness.songs("a song that stays")
    voters = [harness.discord.add_member(harness.guild_id, name=f"v{n}") for n in range(3)]
    for voter in voters:
        for song in (first, second, keeper):
            await harness.click(song, "up", voter)
    assert f"/{first.id})" in await top_links(harness)
    moderator = harness.moderator()

    command = await by_command(harness, moderator, link(harness, first))
    words = await final_words(harness, command)
    assert command.callbacks[0]["type"] == DEFERRED
    assert words.lower().startswith("🗑️ deleted “two songs to remove")
    assert "its 3 votes" in words
    assert first.deleted
    assert first.id not in [message.id for message in harness.discord.messages(harness.channel_id)]
    assert await song_records(harness, first) == {"clips": [], "votes": [], "tallies": [], "hours": []}

    menu = await by_menu(harness, moderator, second)
    assert "Deleted" in await final_words(harness, menu)
    assert second.deleted
    assert (await song_records(harness, second))["clips"] == []

    top = await top_links(harness)
    assert f"/{first.id})" not in top
    assert f"/{second.id})" not in top
    assert f"/{keeper.id})" in top
    assert len((await song_records(harness, keeper))["votes"]) == 3
    jobs = await harness.query("SELECT status, charged FROM jobs ORDER BY id")
    assert jobs == [{"status": "delivered", "charged": 1}] * 2  # the requests stay for quota history


async def test_deleting_a_song_is_refused_to_members_and_for_anything_but_a_song(harness: RunningBot) -> None:
    request = await harness.music("a song")
    await harness.finished(request)
    song = request.followups[0]
    member = harness.discord.add_member(harness.guild_id, name="member")
    for attempt in (await by_command(harness, member, link(harness, song)), await by_menu(harness, member, song)):
        assert "You need the Manage Server permission" in await final_words(harness, attempt)
    assert not song.deleted

    moderator = harness.moderator()
    assert request.original is not None  # the bot's own progress message is not a song
    refusals = {
        "progress message": await by_menu(harness, moderator, request.original),
        "another server's link": await by_command(harness, moderator, link(harness, song, guild_id=123456789012345678)),
        "an unknown id": await by_command(harness, moderator, "123456789012345678"),
    }
    for case, interaction in refusals.items():
        assert "not one of this bot's songs in this server" in await final_words(harness, interaction), case
    nonsense = await by_command(harness, moderator, "the one I liked")
    assert "message link" in await final_words(harness, nonsense)
    assert not song.deleted
    assert not request.original.deleted
    assert len(await harness.query("SELECT * FROM clips WHERE message_id IS NOT NULL")) == 2
