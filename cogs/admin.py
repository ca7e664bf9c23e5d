"""`/music-admin` for moderators (limits, usage, blocks, deleting a song) and `/music-quota` for everyone."""

from __future__ import annotations

from collections.abc import Mapping

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import MusicBot
from bot.backends import adapters
from bot.models import MAX_COOLDOWN_SECONDS, Requester
from bot.privacy import PrivacyService
from bot.quota import QuotaService, UsagePeriod
from cogs.quota_render import render_limits, render_quota_status, render_usage
from cogs.song_deletion import delete_song_by_reference

Interaction = discord.Interaction[MusicBot]
Count = app_commands.Range[int, -1, 1_000_000]


class AdminCog(commands.Cog):
    """Every command here needs Manage Server, checked again at run time: servers can override
    command permissions in their Integrations settings, so `default_permissions` is only a hint."""

    admin = app_commands.Group(
        name="music-admin",
        description="Moderators: music limits, usage and blocks",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, quota: QuotaService, costs: Mapping[str, tuple[int, str]], privacy: PrivacyService) -> None:
        self.quota_service = quota
        self.costs = costs  # each backend's price of one generation and its unit, for the usage report
        self.privacy = privacy

    async def interaction_check(self, interaction: Interaction) -> bool:  # type: ignore[override]
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage()
        if not interaction.permissions.manage_guild:
            raise app_commands.MissingPermissions(["manage_guild"])
        return True

    @admin.command(name="quota", description="Set this server's limits; with no options, show them")
    @app_commands.describe(
        daily="Generations per UTC day for the whole server (-1 unlimited, 0 off)",
        monthly="Generations per UTC calendar month for the whole server (-1 unlimited, 0 off)",
        per_member_daily="Generations per UTC day for each member (-1 unlimited, 0 off)",
        cooldown_seconds="Seconds a member waits between requests (0 = none)",
        max_concurrent="Generations running at once in this server (-1 unlimited, 0 off)",
        max_queued="Requests that wait in line when that many run (-1 unlimited, 0: refused instead)",
    )
    async def quota(
        self,
        interaction: Interaction,
        daily: Count | None = None,
        monthly: Count | None = None,
        per_member_daily: Count | None = None,
        cooldown_seconds: app_commands.Range[int, 0, MAX_COOLDOWN_SECONDS] | None = None,
        max_concurrent: Count | None = None,
        max_queued: Count | None = None,
    ) -> None:
        assert interaction.guild_id is not None
        quota = self.quota_service
        requested = {
            "daily": daily,
            "monthly": monthly,
            "per_member_daily": per_member_daily,
            "cooldown_seconds": cooldown_seconds,
            "max_concurrent": max_concurrent,
            "max_queued": max_queued,
        }
        changes = {name: value for name, value in requested.items() if value is not None}
        applied = await quota.set_limits(interaction.guild_id, changes, actor_id=interaction.user.id) if changes else []
        record = await quota.limits(interaction.guild_id)
        await interaction.response.send_message(embed=render_limits(record, applied), ephemeral=True)

    @admin.command(name="usage", description="Generations, tokens spent, failures and top members")
    @app_commands.describe(period="today, the last 7 days, this month or all time (default: this month)")
    async def usage(self, interaction: Interaction, period: UsagePeriod = UsagePeriod.MONTH) -> None:
        assert interaction.guild_id is not None
        report = await self.quota_service.usage(interaction.guild_id, period)
        embed = render_usage(report, period, costs=self.costs)
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @admin.command(name="block", description="Stop a member generating music on this server")
    @app_commands.describe(member="Who to block", reason="Why (shown to them when they try)")
    async def block(
        self, interaction: Interaction, member: discord.User, reason: app_commands.Range[str, 1, 200] | None = None
    ) -> None:
        assert interaction.guild_id is not None
        await self.quota_service.block(interaction.guild_id, member.id, reason=reason, actor_id=interaction.user.id)
        await interaction.response.send_message(f"⛔ <@{member.id}> can no longer generate music here.", ephemeral=True)

    @admin.command(name="unblock", description="Let a blocked member generate music again")
    @app_commands.describe(member="Who to unblock")
    async def unblock(self, interaction: Interaction, member: discord.User) -> None:
        assert interaction.guild_id is not None
        await self.quota_service.unblock(interaction.guild_id, member.id, actor_id=interaction.user.id)
        await interaction.response.send_message(f"✅ <@{member.id}> can generate music again.", ephemeral=True)

    @admin.command(name="delete-song", description="Delete one of the bot's songs: its message, votes and record")
    @app_commands.describe(message="The song's message link (Copy Message Link) or id")
    async def delete_song(self, interaction: Interaction, message: app_commands.Range[str, 1, 200]) -> None:
        await delete_song_by_reference(interaction, self.privacy, message)


class QuotaCog(commands.Cog):
    def __init__(self, quota: QuotaService) -> None:
        self.quota_service = quota

    @app_commands.command(name="music-quota", description="What this server and you have left, and when it resets")
    @app_commands.guild_only()
    async def music_quota(self, interaction: Interaction) -> None:
        assert interaction.guild_id is not None
        assert interaction.channel_id is not None
        requester = Requester(interaction.guild_id, interaction.channel_id, interaction.user.id)
        status = await self.quota_service.status(requester)
        await interaction.response.send_message(embed=render_quota_status(status), ephemeral=True)


async def setup(bot: MusicBot) -> None:
    costs = {name: (bot.settings.cost_of(name), spec.cost_unit) for name, spec in adapters().items()}
    await bot.add_cog(AdminCog(bot.services.quota, costs, bot.services.privacy))
    await bot.add_cog(QuotaCog(bot.services.quota))
