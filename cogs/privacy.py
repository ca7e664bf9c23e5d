"""`/music-privacy forget-me`: a member deletes what the bot keeps about them, after a private confirmation; and
the listeners that note when the bot leaves or rejoins a server (its data is erased DATA_RETENTION_DAYS later)."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import MusicBot
from bot.privacy import ForgetReport, PrivacyService
from bot.tree import answer_error
from cogs.buttons import claimed
from cogs.i18n import Locale, refusal, t, tn

log = logging.getLogger(__name__)

Interaction = discord.Interaction[MusicBot]
Button = discord.ui.Button[discord.ui.View]


def confirmation(locale: Locale) -> str:
    """What forget-me deletes and keeps, above its button."""
    return t(locale, "privacy.confirm") + "\n" + t(locale, "privacy.songs_stay")


def render_forgotten(report: ForgetReport, locale: Locale = None) -> str:
    if report.running:
        return "⏳ " + tn(locale, "privacy.running", report.running)
    votes = tn(locale, "privacy.votes", report.votes)
    requests = tn(locale, "privacy.requests", report.requests)
    done = t(locale, "privacy.done", votes=votes, requests=requests)
    return f"{done}\n{t(locale, 'privacy.songs_stay')}"


class ForgetMeButton(discord.ui.DynamicItem[Button], template=r"forget-me:(?P<member>\d+)"):
    """The confirmation under forget-me's private answer; only the member it names may press it. A DynamicItem,
    so it still works after a restart."""

    def __init__(self, member_id: int, locale: Locale = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=t(locale, "button.forget_me"),
                emoji="🗑️",
                style=discord.ButtonStyle.danger,
                custom_id=f"forget-me:{member_id}",
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
                await interaction.response.send_message(t(interaction.locale, "privacy.only_member"), ephemeral=True)
                return
            # The button goes at once, so it cannot be pressed twice while the deletion runs.
            await interaction.response.edit_message(content=t(interaction.locale, "privacy.forgetting"), view=None)
            report = await interaction.client.services.privacy.forget(self.member_id)
            log.info("phase=forgotten votes=%d requests=%d refused=%d", report.votes, report.requests, report.running)
            await interaction.edit_original_response(content=render_forgotten(report, interaction.locale))
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
            raise refusal("privacy.running", count=running)
        view = discord.ui.View(timeout=None)
        view.add_item(ForgetMeButton(interaction.user.id, interaction.locale))
        await interaction.response.send_message(confirmation(interaction.locale), view=view, ephemeral=True)

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
