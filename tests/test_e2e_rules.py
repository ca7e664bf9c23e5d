"""End to end: moderators' prompt rules (blocked phrases, the operator's file) and channel rules, through the
real bot: a refusal is private, names its rule, and comes before any quota is reserved or the API is called."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.fakes.discord_interactions import FakeInteraction
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import FakeMusicApi
from tests.harness import RunningBot, running_bot
from tests.test_e2e_admin import admin_answer, answered, moderator_of
from tests.test_metrics import Scrape


async def refusal(harness: RunningBot, interaction: FakeInteraction) -> str:
    data = await answered(harness, interaction)
    assert interaction.ephemeral, data
    return str(data["content"])


async def nothing_reserved(harness: RunningBot) -> None:
    assert await harness.query("SELECT id FROM jobs") == []
    assert await harness.query("SELECT id FROM quota_ledger") == []
    assert harness.api.generate_calls() == 0


async def submit_custom(harness: RunningBot, values: dict[str, str]) -> FakeInteraction:
    return await harness.custom_song(values)


async def test_a_blocked_phrase_is_refused_before_any_quota_or_api_call(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3") as harness:
        moderator = moderator_of(harness)
        added = await admin_answer(harness, "blocklist add", moderator, phrase="Forbidden Fruit")
        assert "Forbidden Fruit" in added["content"]
        text = await refusal(harness, await harness.music("a ballad about FORBIDDEN   fruít at dawn"))
        assert text.startswith("🚫 Your description contains “Forbidden Fruit”")
        assert "this server's moderators" in text
        await nothing_reserved(harness)
        scraped = Scrape((await harness.bot.services.metrics.render()).decode())
        assert scraped.value("musicbot_rule_refusals_total", rule="server_phrase") == 1
        assert scraped.total("musicbot_quota_refusals_total") == 0
        # Whole words only: a longer word that merely starts with it is fine.
        final = await harness.finished(await harness.music("forbidden fruitcake for dessert"))
        assert final.content.startswith("✅")
        assert harness.api.generate_calls() == 1


async def test_custom_lyrics_titles_styles_and_again_obey_the_same_rules(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3") as harness:
        moderator = moderator_of(harness)
        first = await harness.music("a sunny day at the beach")
        assert (await harness.finished(first)).content.startswith("✅")
        await admin_answer(harness, "blocklist add", moderator, phrase="sunny")
        await admin_answer(harness, "blocklist add", moderator, phrase="Neon")
        calls = harness.api.generate_calls()
        again = await harness.click(first.followups[0], "again", user_id=harness.member_id)
        assert (await refusal(harness, again)).startswith("🚫 Your description contains “sunny”")
        song = {"song_title": "Night Drive", "style": "synthwave", "lyrics": "we drive all night"}
        for field, values in [
            ("lyrics", song | {"lyrics": "a SUNNY chorus"}),
            ("title", song | {"song_title": "Neon Rain"}),
            ("style", song | {"style": "néon, synthwave"}),
        ]:
            text = await refusal(harness, await submit_custom(harness, values))
            assert text.startswith(f"🚫 Your {field} contains"), text
        assert harness.api.generate_calls() == calls
        assert len(await harness.query("SELECT id FROM jobs")) == 1  # the first song's job only


async def test_the_operators_file_applies_everywhere_and_says_whose_rule_it_is(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text("# operator-wide\nsecret project\n", encoding="utf-8")
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3", blocklist_file=blocklist) as harness:
        text = await refusal(harness, await harness.music("a song about the Secret Project"))
        assert "“secret project”" in text
        assert "the bot's operator" in text
        await nothing_reserved(harness)
        listed = await admin_answer(harness, "blocklist list", moderator_of(harness))
        assert "None." in listed["embeds"][0]["description"]  # the server's own list is the moderators'


async def test_list_remove_and_members_cannot_change_the_list(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3") as harness:
        moderator = moderator_of(harness)
        denied = await admin_answer(harness, "blocklist add", harness.member_id, phrase="anything")
        assert "Manage Server" in denied["content"]
        await admin_answer(harness, "blocklist add", moderator, phrase="Red [Wine](http://x.example)")
        await admin_answer(harness, "blocklist add", moderator, phrase="blue")
        again = await admin_answer(harness, "blocklist add", moderator, phrase="BLUE")
        assert "blocked already" in again["content"]
        listed = await admin_answer(harness, "blocklist list", moderator)
        embed: dict[str, Any] = listed["embeds"][0]
        assert embed["title"] == "Blocked phrases (2)"
        assert "\\[Wine\\]" in embed["description"]  # escaped: a phrase cannot become a link
        assert "anything" not in embed["description"]
        removed = await admin_answer(harness, "blocklist remove", moderator, phrase="Blue")
        assert "no longer blocked" in removed["content"]
        final = await harness.finished(await harness.music("feeling blue"))
        assert final.content.startswith("✅")
        log = await harness.query("SELECT action FROM moderation_log ORDER BY id")
        assert [row["action"] for row in log] == ["blocklist_add", "blocklist_add", "blocklist_remove"]


async def test_music_works_only_in_the_listed_channels(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3") as harness:
        moderator = moderator_of(harness)
        music_room = discord_fake.add_channel(harness.guild_id, name="music")
        added = await admin_answer(harness, "channels add", moderator, channel=music_room)
        assert f"<#{music_room}>" in added["content"]
        text = await refusal(harness, await harness.music("a song in the wrong room"))
        assert text == f"🎵 In this server, music is made only in <#{music_room}>. Please use me there."
        custom = await harness.command("music-custom")  # refused before the member writes a whole song
        assert (await refusal(harness, custom)).startswith("🎵")
        assert custom.modal is None
        await nothing_reserved(harness)
        scraped = Scrape((await harness.bot.services.metrics.render()).decode())
        assert scraped.value("musicbot_rule_refusals_total", rule="channel") == 2
        there = await harness.discord.invoke_command(
            "music",
            {"prompt": "a song in the music room"},
            guild_id=harness.guild_id,
            channel_id=music_room,
            user_id=harness.member_id,
        )
        assert (await harness.finished(there)).content.startswith("✅")
        listed = await admin_answer(harness, "channels list", moderator)
        assert listed["content"] == f"`/music` works only in: <#{music_room}>."
        # A listed channel that is deleted leaves the list: the server is not locked out.
        discord_fake.delete_channel(music_room)
        await harness.discord.wait_for(lambda: harness.bot.get_channel(music_room) is None)
        for _ in range(100):
            if not await harness.query("SELECT channel_id FROM allowed_channels"):
                break
            await asyncio.sleep(0.05)
        assert await harness.query("SELECT channel_id FROM allowed_channels") == []
        final = await harness.finished(await harness.music("anywhere again"))
        assert final.content.startswith("✅")


async def test_removing_the_last_channel_allows_every_channel(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3") as harness:
        moderator = moderator_of(harness)
        elsewhere = discord_fake.add_channel(harness.guild_id, name="elsewhere")
        await admin_answer(harness, "channels add", moderator, channel=elsewhere)
        removed = await admin_answer(harness, "channels remove", moderator, channel=elsewhere)
        assert removed["content"].startswith(f"✅ <#{elsewhere}> removed.")
        assert "every channel" in removed["content"]
        not_listed = await admin_answer(harness, "channels remove", moderator, channel=elsewhere)
        assert "was not listed" in not_listed["content"]
        final = await harness.finished(await harness.music("here is fine"))
        assert final.content.startswith("✅")
