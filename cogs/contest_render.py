"""Every word of contests and the hall of fame: the announcement and its standings, the results, a member's
entries, past contests, the hall-of-fame credit and the moderators' answers. The channel's posts read the
server's preferred language, the answers to a member theirs (`locale`)."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bot.contests import STANDINGS_EDIT_INTERVAL, Contest, RankedSong
from bot.hall_of_fame import FameCandidate, HallOfFame
from bot.models import FORGOTTEN_MEMBER
from cogs.i18n import Locale, t
from cogs.render import fit, link_text, quote_user_text

MESSAGE_LIMIT = 2000
EMBED_DESCRIPTION_LIMIT = 4096


def timestamp(contest: Contest, style: str = "R") -> str:
    return f"<t:{int(contest.ends_at.timestamp())}:{style}>"


def song_url(guild_id: int, song: RankedSong) -> str:
    return f"https://discord.com/channels/{guild_id}/{song.channel_id}/{song.message_id}"


def credit(user_id: int, locale: Locale = None) -> str:
    return t(locale, "contest.forgotten_member") if user_id == FORGOTTEN_MEMBER else f"<@{user_id}>"


def song_entry(guild_id: int, song: RankedSong, locale: Locale = None) -> str:
    """A song, who asked for it and its score, without its place."""
    return t(
        locale,
        "contest.song",
        title=link_text(song.title, 60),
        url=song_url(guild_id, song),
        requester=credit(song.requester_id, locale),
        score=f"{song.score:+d}",
        up=song.up,
        down=song.down,
    )


def song_line(guild_id: int, place: int, song: RankedSong, locale: Locale = None) -> str:
    return f"**{place}.** {song_entry(guild_id, song, locale)}"


def rules_text(contest: Contest, locale: Locale = None) -> str:
    cap = contest.max_entries_per_member
    entries = t(locale, "contest.rules.entries_capped", cap=cap) if cap else t(locale, "contest.rules.entries_quota")
    votes = "contest.rules.vote_excluding_new" if contest.exclude_new_members else "contest.rules.vote"
    lines = [t(locale, "contest.rules.enter", entries=entries), t(locale, votes), t(locale, "contest.rules.ties")]
    return "\n".join(lines)


def render_announcement(
    contest: Contest, standings: Sequence[RankedSong] = (), *, locale: Locale = None
) -> discord.Embed:
    description = t(
        locale,
        "contest.announcement.description",
        theme=quote_user_text(contest.theme, 200),
        ends=timestamp(contest),
        ends_at=timestamp(contest, "f"),
    )
    embed = discord.Embed(
        title=fit(t(locale, "contest.announcement.title", theme=contest.theme), 256),
        description=fit(f"{description}\n\n{rules_text(contest, locale)}", EMBED_DESCRIPTION_LIMIT),
        colour=discord.Colour.gold(),
    )
    lines = [song_line(contest.guild_id, place, song, locale) for place, song in enumerate(standings, start=1)]
    embed.add_field(
        name=t(locale, "contest.standings"),
        value=fit("\n".join(lines) or t(locale, "contest.standings.none"), 1024),
        inline=False,
    )
    minutes = int(STANDINGS_EDIT_INTERVAL.total_seconds() // 60)
    embed.set_footer(text=t(locale, "contest.standings.refreshed", minutes=minutes))
    return embed


def render_results(contest: Contest, results: Sequence[RankedSong], *, locale: Locale = None) -> str:
    head = t(locale, "contest.results.head", theme=quote_user_text(contest.theme, 200))
    if not results:
        return f"{head}\n{t(locale, 'contest.no_songs')}"
    lines = [song_line(contest.guild_id, place, song, locale) for place, song in enumerate(results, start=1)]
    tail = t(locale, "contest.results.winner", winner=credit(results[0].requester_id, locale))
    footer = t(locale, "contest.results.footer")
    return fit("\n".join([head, *lines, tail, f"-# {footer}"]), MESSAGE_LIMIT)


def render_status(
    contest: Contest | None, mine: Sequence[RankedSong], entered: int, *, locale: Locale = None
) -> discord.Embed:
    if contest is None:
        return discord.Embed(
            title=t(locale, "contest.status.none.title"),
            description=t(locale, "contest.status.none.description"),
            colour=discord.Colour.light_grey(),
        )
    embed = render_announcement(contest, locale=locale)
    embed.clear_fields()
    cap = contest.max_entries_per_member
    used = t(locale, "contest.status.used_capped", entered=entered, cap=cap) if cap else str(entered)
    lines = [song_entry(contest.guild_id, song, locale) for song in mine]
    embed.add_field(
        name=t(locale, "contest.status.entries", used=used),
        value=fit("\n".join(lines) or t(locale, "contest.status.entries.none"), 1024),
        inline=False,
    )
    return embed


def render_past(
    page: int, past: Sequence[tuple[Contest, Sequence[RankedSong]]], *, locale: Locale = None
) -> discord.Embed:
    embed = discord.Embed(title=t(locale, "contest.past.title", page=page), colour=discord.Colour.gold())
    if not past:
        embed.description = t(locale, "contest.past.none" if page == 1 else "contest.past.none_on_page")
        return embed
    for contest, top in past:
        lines = [song_line(contest.guild_id, place, song, locale) for place, song in enumerate(top, start=1)]
        embed.add_field(
            name=fit(t(locale, "contest.past.entry", theme=contest.theme, ended=f"{contest.ends_at:%Y-%m-%d}"), 256),
            value=fit("\n".join(lines) or t(locale, "contest.no_songs"), 1024),
            inline=False,
        )
    return embed


def render_started(contest: Contest, *, locale: Locale = None) -> str:
    return t(locale, "contest.started", channel=f"<#{contest.channel_id}>", ends=timestamp(contest))


def render_ended(contest: Contest, *, locale: Locale = None) -> str:
    theme = quote_user_text(contest.theme, 100)
    return t(locale, "contest.ended", theme=theme, channel=f"<#{contest.channel_id}>")


def render_cancelled(contest: Contest, *, locale: Locale = None) -> str:
    return t(locale, "contest.cancelled", theme=quote_user_text(contest.theme, 100))


def render_cancelled_announcement(contest: Contest, *, locale: Locale = None) -> discord.Embed:
    embed = render_announcement(contest, locale=locale)
    embed.title = fit(t(locale, "contest.cancelled.title", theme=contest.theme), 256)
    embed.clear_fields()
    return embed


def fame_song_url(candidate: FameCandidate) -> str:
    return f"https://discord.com/channels/{candidate.guild_id}/{candidate.source_channel_id}/{candidate.message_id}"


def render_fame_credit(candidate: FameCandidate, *, locale: Locale = None) -> str:
    """The line before a song's forward. Its link, in every language, also finds it again after a crash."""
    requester = credit(candidate.requester_id, locale)
    return t(locale, "fame.credit", url=fame_song_url(candidate), requester=requester)


def render_fame_settings(settings: HallOfFame | None, *, locale: Locale = None) -> str:
    if settings is None:
        return t(locale, "fame.settings.off")
    return t(locale, "fame.settings.on", threshold=settings.threshold, channel=f"<#{settings.channel_id}>")


def fame_off(*, locale: Locale = None) -> str:
    return t(locale, "fame.turned_off")


def fame_needs_both(*, locale: Locale = None) -> str:
    return t(locale, "fame.needs_both")
