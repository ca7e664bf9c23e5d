"""`/music-admin` for moderators (limits, usage, blocks, deleting a song) and `/music-quota` for everyone."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import MusicBot
from bot.backends import adapters
from bot.errors import RuleLimitError
from bot.models import MAX_COOLDOWN_SECONDS, Requester
from bot.privacy import PrivacyService
from bot.quota import QuotaService, UsagePeriod
from bot.rules import PHRASE_MAX_CHARS, ModerationRules
from cogs.contests import cancel_contest, configure_hall_of_fame, end_contest, start_contest
from cogs.i18n import refusal, t
from cogs.quota_render import render_limits, render_quota_status, render_usage
from cogs.render import quote_user_text
from cogs.rules_render import render_channels, render_phrases
from cogs.song_deletion import delete_song_by_reference

log = logging.getLogger(__name__)

Interaction = discord.Interaction[MusicBot]
Count = app_commands.Range[int, -1, 1_000_000]
Phrase = app_commands.Range[str, 1, PHRASE_MAX_CHARS]
# Where a member can type a command (a thread counts as its parent channel).
MusicChannel = discord.TextChannel | discord.VoiceChannel | discord.StageChannel


class AdminCog(commands.Cog):
    """Every command here needs Manage Server, checked again at run time: servers can override
    command permissions in their Integrations settings, so `default_permissions` is only a hint."""

    admin = app_commands.Group(
        name="music-admin",
        description="Moderators: music limits, usage, blocks, blocked phrases and channels",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    blocklist = app_commands.Group(
        name="blocklist", description="Words and phrases refused in prompts, lyrics, titles and styles", parent=admin
    )
    channels = app_commands.Group(name="channels", description="The channels where /music works", parent=admin)
    contest = app_commands.Group(name="contest", description="A song contest with a theme and a deadline", parent=admin)

    def __init__(
        self,
        quota: QuotaService,
        rules: ModerationRules,
        costs: Mapping[str, tuple[int, str]],
        privacy: PrivacyService,
    ) -> None:
        self.quota_service = quota
        self.rules = rules
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
        await interaction.response.send_message(
            embed=render_limits(record, applied, interaction.locale), ephemeral=True
        )

    @admin.command(name="usage", description="Generations, tokens spent, failures and top members")
    @app_commands.describe(period="today, the last 7 days, this month or all time (default: this month)")
    async def usage(self, interaction: Interaction, period: UsagePeriod = UsagePeriod.MONTH) -> None:
        assert interaction.guild_id is not None
        report = await self.quota_service.usage(interaction.guild_id, period)
        embed = render_usage(report, period, costs=self.costs, locale=interaction.locale)
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @admin.command(name="block", description="Stop a member generating music on this server")
    @app_commands.describe(member="Who to block", reason="Why (shown to them when they try)")
    async def block(
        self, interaction: Interaction, member: discord.User, reason: app_commands.Range[str, 1, 200] | None = None
    ) -> None:
        assert interaction.guild_id is not None
        await self.quota_service.block(interaction.guild_id, member.id, reason=reason, actor_id=interaction.user.id)
        text = t(interaction.locale, "admin.blocked", member=f"<@{member.id}>")
        await interaction.response.send_message(text, ephemeral=True)

    @admin.command(name="unblock", description="Let a blocked member generate music again")
    @app_commands.describe(member="Who to unblock")
    async def unblock(self, interaction: Interaction, member: discord.User) -> None:
        assert interaction.guild_id is not None
        await self.quota_service.unblock(interaction.guild_id, member.id, actor_id=interaction.user.id)
        text = t(interaction.locale, "admin.unblocked", member=f"<@{member.id}>")
        await interaction.response.send_message(text, ephemeral=True)

    @blocklist.command(name="add", description="Refuse requests containing a word or phrase (whole words)")
    @app_commands.describe(phrase="Matched as whole words, ignoring case and accents")
    async def blocklist_add(self, interaction: Interaction, phrase: Phrase) -> None:
        assert interaction.guild_id is not None
        try:
            added = await self.rules.add_phrase(interaction.guild_id, phrase, actor_id=interaction.user.id)
        except RuleLimitError as error:
            raise refusal("admin.phrase_limit", limit=error.limit) from None
        shown = quote_user_text(phrase, PHRASE_MAX_CHARS)
        text = t(interaction.locale, "admin.phrase_added" if added else "admin.phrase_known", phrase=shown)
        await interaction.response.send_message(text, ephemeral=True)

    @blocklist.command(name="remove", description="Allow a blocked word or phrase again")
    @app_commands.describe(phrase="The phrase as it is listed (case and accents do not matter)")
    async def blocklist_remove(self, interaction: Interaction, phrase: Phrase) -> None:
        assert interaction.guild_id is not None
        removed = await self.rules.remove_phrase(interaction.guild_id, phrase, actor_id=interaction.user.id)
        shown = quote_user_text(removed or phrase, PHRASE_MAX_CHARS)
        text = t(interaction.locale, "admin.phrase_removed" if removed else "admin.phrase_unknown", phrase=shown)
        await interaction.response.send_message(text, ephemeral=True)

    @blocklist.command(name="list", description="The phrases this server refuses")
    async def blocklist_list(self, interaction: Interaction) -> None:
        assert interaction.guild_id is not None
        embed, attachment = render_phrases(await self.rules.phrases(interaction.guild_id), interaction.locale)
        files = [attachment] if attachment is not None else []
        await interaction.response.send_message(embed=embed, files=files, ephemeral=True)

    @channels.command(name="add", description="Allow /music in a channel (once any is listed, only there)")
    @app_commands.describe(channel="A channel where members may make music")
    async def channels_add(self, interaction: Interaction, channel: MusicChannel) -> None:
        assert interaction.guild_id is not None
        try:
            added = await self.rules.add_channel(interaction.guild_id, channel.id, actor_id=interaction.user.id)
        except RuleLimitError as error:
            raise refusal("admin.channel_limit", limit=error.limit) from None
        listed = await self.rules.channels(interaction.guild_id)
        head = t(
            interaction.locale, "admin.channel_added" if added else "admin.channel_listed", channel=f"<#{channel.id}>"
        )
        await interaction.response.send_message(f"{head} {render_channels(listed, interaction.locale)}", ephemeral=True)

    @channels.command(name="remove", description="Stop allowing /music in a channel")
    @app_commands.describe(channel="A listed channel")
    async def channels_remove(self, interaction: Interaction, channel: MusicChannel) -> None:
        assert interaction.guild_id is not None
        removed = await self.rules.remove_channel(interaction.guild_id, channel.id, actor_id=interaction.user.id)
        listed = await self.rules.channels(interaction.guild_id)
        key = "admin.channel_removed" if removed else "admin.channel_unlisted"
        head = t(interaction.locale, key, channel=f"<#{channel.id}>")
        await interaction.response.send_message(f"{head} {render_channels(listed, interaction.locale)}", ephemeral=True)

    @channels.command(name="list", description="Where /music works in this server")
    async def channels_list(self, interaction: Interaction) -> None:
        assert interaction.guild_id is not None
        listed = await self.rules.channels(interaction.guild_id)
        await interaction.response.send_message(render_channels(listed, interaction.locale), ephemeral=True)

    @commands.Cog.listener()
    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        """A deleted channel leaves the list, so a server whose listed channels are all gone is not locked out."""
        if await self.rules.remove_channel(channel.guild.id, channel.id, actor_id=None):
            log.info("guild=%d channel=%d was deleted; removed from the allowed channels", channel.guild.id, channel.id)

    @contest.command(name="start", description="Start a contest (one at a time); songs enter with contest:True")
    @app_commands.describe(
        theme="What the songs should be about",
        ends="How long it runs: 3d, 12h, 90m or 1d12h",
        channel="Where it is announced and its results posted (default: here)",
        max_entries_per_member="Entries each member may make (default: no cap beyond the quota)",
        exclude_new_members="Leave out votes of members who joined after the contest started",
    )
    async def contest_start(
        self,
        interaction: Interaction,
        theme: app_commands.Range[str, 1, 200],
        ends: app_commands.Range[str, 1, 20],
        channel: MusicChannel | None = None,
        max_entries_per_member: app_commands.Range[int, 1, 100] | None = None,
        exclude_new_members: bool = False,
    ) -> None:
        await start_contest(
            interaction,
            theme=theme,
            ends=ends,
            channel=channel,
            max_entries_per_member=max_entries_per_member,
            exclude_new_members=exclude_new_members,
        )

    @contest.command(name="end", description="End the running contest now and post its results")
    async def contest_end(self, interaction: Interaction) -> None:
        await end_contest(interaction)

    @contest.command(name="cancel", description="Cancel the running contest (no results)")
    async def contest_cancel(self, interaction: Interaction) -> None:
        await cancel_contest(interaction)

    @admin.command(name="halloffame", description="Forward songs reaching a score to a channel; no options: show")
    @app_commands.describe(
        channel="Where songs are forwarded", threshold="The score (👍 minus 👎) a song must reach", off="Turn it off"
    )
    async def halloffame(
        self,
        interaction: Interaction,
        channel: MusicChannel | None = None,
        threshold: app_commands.Range[int, 1, 1_000_000] | None = None,
        off: bool = False,
    ) -> None:
        await configure_hall_of_fame(interaction, channel, threshold, off)

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
        await interaction.response.send_message(embed=render_quota_status(status, interaction.locale), ephemeral=True)


async def setup(bot: MusicBot) -> None:
    costs = {name: (bot.settings.cost_of(name), spec.cost_unit) for name, spec in adapters().items()}
    await bot.add_cog(AdminCog(bot.services.quota, bot.services.rules, costs, bot.services.privacy))
    await bot.add_cog(QuotaCog(bot.services.quota))
