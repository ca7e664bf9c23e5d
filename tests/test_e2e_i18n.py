"""End to end: a member whose Discord client speaks French sees the commands and the bot's answers to them in
French, an English member in English, and what the bot posts for the whole channel (songs, contest announcements
and results) is in the server's language."""

from __future__ import annotations

from pathlib import Path

from tests.clock import FakeClock
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import FakeMusicApi
from tests.harness import World, buttons, running_bot
from tests.test_e2e_admin import admin, answered
from tests.test_e2e_contests import admin as contest_admin
from tests.test_e2e_contests import answer, contest_command, results_messages
from tests.test_e2e_forget_me import ask_to_be_forgotten

DEFERRED = 5


async def test_commands_and_answers_speak_the_members_language(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    guild_id = discord_fake.add_guild(preferred_locale="de")  # the server's primary language: German
    world = World(guild_id, discord_fake.add_channel(guild_id), discord_fake.add_member(guild_id, name="marie"))
    english_member = discord_fake.add_member(guild_id, name="mary")
    discord_fake.set_client_locale(world.member_id, "fr")
    async with running_bot(
        discord_fake, api, tmp_path / "db.sqlite3", world=world, default_cooldown_seconds=3600
    ) as harness:
        # The synced commands carry their French names and descriptions; the names Discord routes by stay English.
        synced = {command["name"]: command for command in discord_fake.synced_commands[None]}
        assert {"music", "music-custom", "music-top", "music-quota", "music-admin", "music-privacy"} <= set(synced)
        music = synced["music"]
        assert music["name_localizations"]["fr"] == "musique"
        assert music["description_localizations"]["fr"] == "Transformer une description en deux chansons"
        prompt = next(option for option in music["options"] if option["name"] == "prompt")
        assert prompt["name_localizations"]["fr"] == "description"
        assert prompt["name_localizations"]["ja"] == "説明"
        period = next(option for option in synced["music-top"]["options"] if option["name"] == "period")
        week = next(choice for choice in period["choices"] if choice["value"] == "week")
        assert week["name_localizations"]["fr"] == "semaine"

        # The French member's song: the command's message and the song posts are for the whole channel (German).
        made = await harness.music("une valse sous la pluie")
        final = await harness.finished(made)
        assert final.content == "✅ „une valse sous la pluie“: Fertig: 2 Songs unten."
        song = made.followups[0]
        fields = {field["name"] for field in song.embeds[0]["fields"]}
        assert {"Stil", "Angefragt von"} <= fields
        assert song.embeds[0]["footer"]["text"] == "Song 1 · job #1"  # how the bot finds its posts: never translated

        # Their second request meets the cooldown: told privately, in French.
        refused = await harness.music("encore une")
        words = (await answered(harness, refused))["content"]
        assert refused.callbacks[0]["type"] != DEFERRED
        assert words.startswith("Doucement : ce serveur permet une demande toutes les 3600 secondes par membre.")

        # An English member is answered in English, in the same server.
        await harness.finished(await harness.music("a waltz in the rain", user_id=english_member))
        again = await harness.music("another", user_id=english_member)
        assert (await answered(harness, again))["content"].startswith(
            "Slow down: this server allows one request every 3600 seconds per member."
        )

        # The error words of the command tree, too: an admin command without Manage Server.
        denied = await discord_fake.invoke_command(
            "music-admin",
            {},
            subcommand="quota",
            guild_id=guild_id,
            channel_id=world.channel_id,
            user_id=world.member_id,
        )
        assert (await answered(harness, denied))["content"] == (
            "Il vous faut la permission Gérer le serveur pour faire cela."
        )


def _texts(payload: object, field: str) -> set[str]:
    """Every value of `field` anywhere in a component payload (a modal's rows, labels and inputs)."""
    if isinstance(payload, dict):
        found = {payload[field]} if isinstance(payload.get(field), str) else set()
        return found.union(*(_texts(value, field) for value in payload.values()))
    if isinstance(payload, list):
        return set().union(*(_texts(item, field) for item in payload))
    return set()


async def test_a_french_member_reads_embeds_buttons_forms_and_forget_me_in_french(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path
) -> None:
    guild_id = discord_fake.add_guild(preferred_locale="de")
    world = World(guild_id, discord_fake.add_channel(guild_id), discord_fake.add_member(guild_id, name="marie"))
    discord_fake.set_client_locale(world.member_id, "fr")
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3", world=world) as harness:
        # /music-quota: a private embed, in French.
        quota = (await answered(harness, await harness.command("music-quota")))["embeds"][0]
        assert quota["title"] == "🎟️ Générations musicales restantes"
        assert "Vous aujourd'hui" in {field["name"] for field in quota["fields"]}

        # Her song: its buttons sit on a channel post (German); her own vote is refused privately, in French.
        song = (await harness.songs("une valse sous la pluie"))[0]
        assert set(buttons(song).values()) >= {"Songtext", "Nochmal"}
        own_vote = await harness.click(song, "up", world.member_id)
        assert own_vote.callbacks[0]["data"]["content"] == (
            "Vous ne pouvez pas voter pour une chanson que vous avez demandée ; laissez les autres juger."
        )

        # /music-top is posted for the channel: German.
        top = (await answered(harness, await harness.command("music-top")))["embeds"][0]
        assert top["title"] == "🏆 Top-Songs: die letzten 7 Tage"

        # The custom-song form, built for her: French title, labels and placeholders.
        opened = await harness.command("music-custom")
        await discord_fake.wait_for(lambda: opened.modal is not None)
        assert opened.modal is not None
        assert opened.modal["title"] == "Chanson personnalisée"
        assert {"Titre", "Styles (mots-clés)", "Paroles"} <= _texts(opened.modal, "label")
        assert "Pluie de néon" in _texts(opened.modal, "placeholder")

        # A French moderator's /music-admin quota.
        moderator = harness.moderator("modo")
        discord_fake.set_client_locale(moderator, "fr")
        limits = (await answered(harness, await admin(harness, "quota", moderator)))["embeds"][0]
        assert limits["title"] == "🎛️ Limites musicales de ce serveur"
        assert "Serveur par jour UTC" in {field["name"] for field in limits["fields"]}

        # forget-me: the confirmation and its button, in French.
        answer = await ask_to_be_forgotten(harness, world.member_id)
        assert answer.content.startswith("**Vous oublier ?** Sur tous les serveurs, cela supprime vos votes")
        assert list(buttons(answer).values()) == ["M'oublier"]


async def test_contests_speak_the_members_language_and_post_in_the_servers(
    discord_fake: FakeDiscord, api: FakeMusicApi, tmp_path: Path, clock: FakeClock
) -> None:
    guild_id = discord_fake.add_guild(preferred_locale="fr")  # the server's primary language: French
    world = World(guild_id, discord_fake.add_channel(guild_id), discord_fake.add_member(guild_id, name="marie"))
    discord_fake.set_client_locale(world.member_id, "fr")
    async with running_bot(discord_fake, api, tmp_path / "db.sqlite3", clock=clock, world=world) as harness:
        # The French member asks what is running: nothing, in French.
        status = await contest_command(harness, "now", world.member_id)
        assert status["embeds"][0]["title"] == "🏆 Aucun concours en cours"
        assert status["embeds"][0]["description"] == "Résultats passés : `/musique-concours passés`."
        # Entering without a contest: the refusal worded in the core, told in French.
        attempt = await harness.music("une valse", contest=True)
        assert (await answer(harness, attempt))["content"] == (
            "Aucun concours n'est en cours ici : il n'y a rien à quoi participer."
        )

        # An English moderator starts one: answered in English, announced to the channel in French.
        moderator = harness.moderator()
        started = await contest_admin(harness, "contest start", moderator, theme="La pluie", ends="1d")
        assert started["content"].startswith(f"🏆 The contest is on in <#{world.channel_id}>; it ends <t:")
        shown = [message for message in discord_fake.messages(world.channel_id) if not message.ephemeral]
        (announcement,) = [message for message in shown if message.embeds]
        embed = announcement.embeds[0]
        assert embed["title"] == "🏆 Concours : La pluie"
        assert embed["description"].startswith("**Thème :** La pluie\nSe termine <t:")
        assert [field["name"] for field in embed["fields"]] == ["Classement"]
        status = await contest_command(harness, "now", world.member_id)
        assert [field["name"] for field in status["embeds"][0]["fields"]] == ["Vos participations (0)"]

        # Its results, too, are for the whole channel.
        await contest_admin(harness, "contest end", moderator)
        await discord_fake.wait_for(lambda: bool(results_messages(discord_fake, world.channel_id)))
        (results,) = results_messages(discord_fake, world.channel_id)
        assert results.content == "🏁 **Le concours « La pluie » est terminé !**\nAucune chanson n'a participé."
