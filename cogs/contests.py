"""`/music-contest now` and `/music-contest past` for members, the moderators' contest and hall-of-fame actions,
and CommunityDelivery: how the community loop posts results, standings and hall-of-fame forwards."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import MusicBot
from bot.contests import Contest, RankedSong
from bot.hall_of_fame import FameCandidate
from cogs.contest_render import (
    fame_needs_both,
    fame_off,
    fame_song_url,
    render_announcement,
    render_cancelled,
    render_cancelled_announcement,
    render_ended,
    render_fame_credit,
    render_fame_settings,
    render_past,
    render_results,
    render_started,
    render_status,
)
from cogs.i18n import LANGUAGES, Locale, guild_locale, public_locale

log = logging.getLogger(__name__)

Interaction = discord.Interaction[MusicBot]
NO_PINGS = discord.AllowedMentions.none()
HISTORY_SEARCH_LIMIT = 100


def forward_reference(channel_id: int, message_id: int, guild_id: int) -> discord.MessageReference:
    """A reference that makes a new message a forward of another (message_reference type FORWARD)."""
    return discord.MessageReference(
        message_id=message_id,
        channel_id=channel_id,
        guild_id=guild_id,
        fail_if_not_exists=True,
        type=discord.MessageReferenceType.forward,
    )


class CommunityDelivery:
    """Posts with the bot's own token. Every post carries a nonce named after what it is (Discord returns the
    message already created with that nonce instead of a second one), so a post retried after a crash is one."""

    def __init__(self, bot: MusicBot) -> None:
        self._bot = bot

    def _channel(self, channel_id: int, guild_id: int) -> discord.PartialMessageable:
        return self._bot.get_partial_messageable(channel_id, guild_id=guild_id)

    async def show_standings(self, contest: Contest, standings: list[RankedSong]) -> None:
        if contest.announcement_id is None:
            return
        message = self._channel(contest.channel_id, contest.guild_id).get_partial_message(contest.announcement_id)
        try:
            await message.edit(embed=render_announcement(contest, standings, locale=self._locale(contest.guild_id)))
        except discord.NotFound:
            log.info("contest=%d its announcement is gone; standings not shown", contest.id)

    async def post_results(self, contest: Contest, results: list[RankedSong], *, retaken: bool) -> int:
        channel = self._channel(contest.channel_id, contest.guild_id)
        text = render_results(contest, results, locale=self._locale(contest.guild_id))
        winner = results[0] if results else None
        found = FoundPosts()
        if retaken:  # another process claimed them and stopped: what it posted may be there already
            # in whichever language the server preferred then
            texts = {render_results(contest, results, locale=language) for language in LANGUAGES}
            found = await self._find_posts(channel, texts, winner.message_id if winner else None)
        if found.text is not None and (winner is None or found.forward is not None):
            return found.text
        sent_id = found.text
        if sent_id is None:
            sent_id = (await channel.send(content=text, allowed_mentions=NO_PINGS, nonce=f"k{contest.id}r")).id
        if winner is not None and found.forward is None:
            try:
                await channel.send(
                    reference=forward_reference(winner.channel_id, winner.message_id, contest.guild_id),
                    nonce=f"k{contest.id}w",
                )
            except discord.HTTPException as error:  # the winning song's message was deleted meanwhile
                log.warning("contest=%d could not forward the winner: %s", contest.id, error)
        await self.show_standings(contest, results)
        return sent_id

    async def forward_to_hall_of_fame(self, candidate: FameCandidate) -> int:
        channel = self._channel(candidate.channel_id, candidate.guild_id)
        nonce = f"h{candidate.job_id}c{candidate.position}"
        # A claim taken over from a stopped process: what it posted longer ago than Discord remembers nonces is
        # found in the channel instead of being posted again.
        link = fame_song_url(candidate)
        found = await self._find_posts(channel, {link}, candidate.message_id) if candidate.retaken else FoundPosts()
        if found.text is None:
            credit = render_fame_credit(candidate, locale=self._locale(candidate.guild_id))
            await channel.send(content=credit, allowed_mentions=NO_PINGS, nonce=nonce)
        if found.forward is not None:
            return found.forward
        reference = forward_reference(candidate.source_channel_id, candidate.message_id, candidate.guild_id)
        forwarded = await channel.send(reference=reference, nonce=f"{nonce}f")
        return forwarded.id

    def _locale(self, guild_id: int) -> Locale:
        return guild_locale(self._bot, guild_id)

    async def _find_posts(
        self, channel: discord.PartialMessageable, texts: set[str], forwarded_id: int | None
    ) -> FoundPosts:
        """The bot's recent message containing one of `texts`, and its forward of message `forwarded_id`."""
        found = FoundPosts()
        me = self._bot.user
        try:
            async for message in channel.history(limit=HISTORY_SEARCH_LIMIT):
                if me is None or message.author.id != me.id:
                    continue
                reference = message.reference
                if reference is not None and reference.type is discord.MessageReferenceType.forward:
                    if reference.message_id == forwarded_id:
                        found.forward = message.id
                elif any(text in message.content for text in texts):
                    found.text = message.id
        except discord.HTTPException as error:
            log.warning("channel=%s could not read its history: %s", channel.id, error)
        return found


@dataclass
class FoundPosts:
    """Posts already in the channel: the text (results, a hall-of-fame credit) and the forward."""

    text: int | None = None
    forward: int | None = None


async def start_contest(
    interaction: Interaction,
    *,
    theme: str,
    ends: str,
    channel: discord.abc.GuildChannel | None,
    max_entries_per_member: int | None,
    exclude_new_members: bool,
) -> None:
    assert interaction.guild_id is not None
    assert interaction.channel_id is not None
    contests = interaction.client.services.contests
    contest = await contests.start(
        guild_id=interaction.guild_id,
        channel_id=channel.id if channel is not None else interaction.channel_id,
        theme=theme,
        ends_in=ends,
        started_by=interaction.user.id,
        max_entries_per_member=max_entries_per_member,
        exclude_new_members=exclude_new_members,
    )
    where = interaction.client.get_partial_messageable(contest.channel_id, guild_id=contest.guild_id)
    embed = render_announcement(contest, locale=public_locale(interaction))
    announcement = await where.send(embed=embed, allowed_mentions=NO_PINGS)
    await contests.announced(contest, announcement.id)
    await interaction.response.send_message(render_started(contest, locale=interaction.locale), ephemeral=True)


async def end_contest(interaction: Interaction) -> None:
    assert interaction.guild_id is not None
    contest = await interaction.client.services.contests.end_now(interaction.guild_id)
    await interaction.response.send_message(render_ended(contest, locale=interaction.locale), ephemeral=True)
    target = interaction.client.community_target
    if target is not None:  # at once, rather than at the loop's next round; the claim keeps it to one post
        await interaction.client.services.contests.settle_due(target)


async def cancel_contest(interaction: Interaction) -> None:
    assert interaction.guild_id is not None
    contest = await interaction.client.services.contests.cancel(interaction.guild_id)
    await interaction.response.send_message(render_cancelled(contest, locale=interaction.locale), ephemeral=True)
    if contest.announcement_id is not None:
        where = interaction.client.get_partial_messageable(contest.channel_id, guild_id=contest.guild_id)
        try:
            embed = render_cancelled_announcement(contest, locale=public_locale(interaction))
            await where.get_partial_message(contest.announcement_id).edit(embed=embed)
        except discord.HTTPException as error:
            log.info("contest=%d could not mark the announcement cancelled: %s", contest.id, error)


async def configure_hall_of_fame(
    interaction: Interaction, channel: discord.abc.GuildChannel | None, threshold: int | None, off: bool
) -> None:
    assert interaction.guild_id is not None
    service = interaction.client.services.hall_of_fame
    if off:
        await service.turn_off(interaction.guild_id)
        await interaction.response.send_message(fame_off(locale=interaction.locale), ephemeral=True)
        return
    if channel is not None and threshold is not None:
        await service.configure(interaction.guild_id, channel.id, threshold, actor_id=interaction.user.id)
    elif channel is not None or threshold is not None:
        await interaction.response.send_message(fame_needs_both(locale=interaction.locale), ephemeral=True)
        return
    settings = await service.settings(interaction.guild_id)
    await interaction.response.send_message(render_fame_settings(settings, locale=interaction.locale), ephemeral=True)


async def hall_of_fame_after_vote(interaction: Interaction, clip_id: str, score: int) -> None:
    """After a vote was answered: the song may have just reached the hall of fame."""
    target = interaction.client.community_target
    if target is None or interaction.guild_id is None:
        return
    try:
        await interaction.client.services.hall_of_fame.after_vote(interaction.guild_id, clip_id, score, target)
    except Exception:  # the community loop completes a forward left claimed but unposted
        log.exception("guild=%s clip=%s hall-of-fame forward failed", interaction.guild_id, clip_id)


class ContestCog(commands.Cog):
    contest = app_commands.Group(name="music-contest", description="This server's song contests", guild_only=True)

    def __init__(self, bot: MusicBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.community_target = CommunityDelivery(self.bot)

    async def cog_unload(self) -> None:
        self.bot.community_target = None

    @contest.command(name="now", description="The running contest, and your entries")
    async def now(self, interaction: Interaction) -> None:
        assert interaction.guild_id is not None
        contests = self.bot.services.contests
        running = await contests.running(interaction.guild_id)
        mine = await contests.member_songs(running, interaction.user.id) if running else []
        entered = await contests.entered(running, interaction.user.id) if running else 0
        embed = render_status(running, mine, entered, locale=interaction.locale)
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @contest.command(name="past", description="Results of this server's past contests")
    @app_commands.describe(page="Newest first, five a page")
    async def past(self, interaction: Interaction, page: app_commands.Range[int, 1, 1000] = 1) -> None:
        assert interaction.guild_id is not None
        past = await self.bot.services.contests.past(interaction.guild_id, page)
        await interaction.response.send_message(
            embed=render_past(page, past, locale=interaction.locale), ephemeral=True
        )


async def setup(bot: MusicBot) -> None:
    await bot.add_cog(ContestCog(bot))
