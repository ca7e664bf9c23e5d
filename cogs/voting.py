"""`/music-top` and `/music-history`."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import MusicBot
from bot.voting import LeaderboardPeriod, VotingService
from cogs.i18n import public_locale
from cogs.render import render_history, render_leaderboard

Interaction = discord.Interaction[MusicBot]

# Spam only (in memory, per process): a member may ask for the leaderboard twice in 5 seconds.
TOP_RATE = 2
TOP_PER_SECONDS = 5.0


def _member_in_guild(interaction: Interaction) -> tuple[int | None, int]:
    return interaction.guild_id, interaction.user.id


class VotingCog(commands.Cog):
    def __init__(self, voting: VotingService) -> None:
        self.voting = voting

    @app_commands.command(name="music-top", description="This server's best songs by votes")
    @app_commands.guild_only()
    @app_commands.checks.cooldown(TOP_RATE, TOP_PER_SECONDS, key=_member_in_guild)
    @app_commands.describe(period="Which votes count: the last day, week, month, or all time (default: week)")
    async def music_top(self, interaction: Interaction, period: LeaderboardPeriod = LeaderboardPeriod.WEEK) -> None:
        assert interaction.guild_id is not None  # guild_only
        clips = await self.voting.leaderboard(interaction.guild_id, period)
        await interaction.response.send_message(embed=render_leaderboard(clips, period, public_locale(interaction)))

    @app_commands.command(name="music-history", description="The latest songs a member made in this server")
    @app_commands.guild_only()
    @app_commands.describe(member="Whose songs (default: yours)")
    async def music_history(self, interaction: Interaction, member: discord.User | None = None) -> None:
        assert interaction.guild_id is not None  # guild_only
        whose = member or interaction.user
        clips = await self.voting.history(interaction.guild_id, whose.id)
        await interaction.response.send_message(embed=render_history(clips, whose, interaction.locale), ephemeral=True)


async def setup(bot: MusicBot) -> None:
    await bot.add_cog(VotingCog(bot.services.voting))
