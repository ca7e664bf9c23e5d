"""`/music-privacy forget-me`: a member deletes what the bot keeps about them, after a private confirmation; and
the listeners that note when the bot leaves or rejoins a server (its data is erased DATA_RETENTION_DAYS later)."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import MusicBot
from bot.errors import UserFacingError
from bot.privacy import ForgetReport, PrivacyService
from bot.tree import answer_error
from cogs.buttons import claimed

log = logging.getLogger(__name__)

Interaction = discord.Interaction[MusicBot]
Button = discord.ui.Button[discord.ui.View]

SONGS_STAY = (
    "The songs already posted stay in their channels: they are messages of those servers. To have one removed, "
    "ask a moderator of that server; they can use `/music-admin delete-song` or the song's *Apps → Delete song*."
)
CONFIRM = (
    "**Forget me?** In every server, this deletes your votes, erases the prompts, lyrics, titles and styles of your "
    "requests in the bot's records (the requests stay as anonymous rows, so usage figures still add up), and "
    "`/music-history` no longer lists your songs. It cannot be undone.\n"
    "Kept until they run out, so that limits still hold: today's count of your generations and when your "
    "cooldown ends; and any block a moderator set.\n" + SONGS_STAY
)
ONLY_THE_MEMBER = "Only the member who asked to be forgotten can confirm this."


def running_words(running: int) -> str:
    several = running != 1
    return (
        f"You have {running} request{'s' if several else ''} still being made or waiting in line. "
        f"Run `/music-privacy forget-me` again once {'they have' if several else 'it has'} finished; nothing "
        "was deleted."
    )


def render_forgotten(report: ForgetReport) -> str:
    if report.running:
        return f"⏳ {running_words(report.running)}"
    votes = f"{report.votes} vote{'s' if report.votes != 1 else ''}"
    requests = f"{report.requests} request{'s' if report.requests != 1 else ''}"
    return f"✅ Done: {votes} deleted, and the words of {requests} erased, in every server.\n{SONGS_STAY}"


class ForgetMeButton(discord.ui.DynamicItem[Button], template=r"forget-me:(?P<member>\d+)"):
    """The confirmation under forget-me's private answer; only the member it names may press it. A DynamicItem,
    so it still works after a restart."""

    def __init__(self, member_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Forget me", emoji="🗑️", style=discord.ButtonStyle.danger, custom_id=f"forget-me:{member_id}"
            )
        )
        self.member_id = member_id

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: Interaction, item: discord.ui.Item[Any], match: Any
    ) -> ForgetMeButton:
        return cls(int(match["member"]))

    async def interaction_check(self, interaction: Interaction) -> bool:  # type: ignore[override]
        return await claimed(interaction)

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        try:
            if interaction.user.id != self.member_id:
                await interaction.response.send_message(ONLY_THE_MEMBER, ephemeral=True)
                return
            # The button goes at once, so it cannot be pressed twice while the deletion runs.
            await interaction.response.edit_message(content="⏳ Forgetting you…", view=None)
            report = await interaction.client.services.privacy.forget(self.member_id)
            log.info("phase=forgotten votes=%d requests=%d refused=%d", report.votes, report.requests, report.running)
            await interaction.edit_original_response(content=render_forgotten(report))
        except Exception as error:
            await answer_error(interaction, error)


class PrivacyCog(commands.Cog):
    privacy_group = app_commands.Group(
        name="music-privacy", description="What this bot keeps about you", guild_only=True
    )

    def __init__(self, privacy: PrivacyService) -> None:
        self.privacy = privacy

    @privacy_group.command(
        name="forget-me", description="Delete your votes, prompts, lyrics and history from this bot, in every server"
    )
    async def forget_me(self, interaction: Interaction) -> None:
        running = await self.privacy.running_requests(interaction.user.id)
        if running:
            raise UserFacingError(running_words(running))
        view = discord.ui.View(timeout=None)
        view.add_item(ForgetMeButton(interaction.user.id))
        await interaction.response.send_message(CONFIRM, view=view, ephemeral=True)

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """Kicked, or the server deleted: its data is kept DATA_RETENTION_DAYS from now (for ever if unset)."""
        log.info("guild=%d phase=left", guild.id)
        await self.privacy.guild_left(guild.id)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self.privacy.guild_joined(guild.id)


async def setup(bot: MusicBot) -> None:
    bot.add_dynamic_items(ForgetMeButton)
    await bot.add_cog(PrivacyCog(bot.services.privacy))
