"""Every word of contests and the hall of fame: the announcement and its standings, the results, a member's
entries, past contests, the hall-of-fame credit and the moderators' answers."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bot.contests import STANDINGS_EDIT_INTERVAL, Contest, RankedSong
from bot.hall_of_fame import FameCandidate, HallOfFame
from bot.models import FORGOTTEN_MEMBER
from cogs.render import fit, link_text, quote_user_text

MESSAGE_LIMIT = 2000
EMBED_DESCRIPTION_LIMIT = 4096


def timestamp(contest: Contest, style: str = "R") -> str:
    return f"<t:{int(contest.ends_at.timestamp())}:{style}>"


def song_url(guild_id: int, song: RankedSong) -> str:
    return f"https://discord.com/channels/{guild_id}/{song.channel_id}/{song.message_id}"


def credit(user_id: int) -> str:
    return "a forgotten member" if user_id == FORGOTTEN_MEMBER else f"<@{user_id}>"


def song_line(guild_id: int, place: int, song: RankedSong) -> str:
    title = link_text(song.title, 60)
    return (
        f"**{place}.** [{title}]({song_url(guild_id, song)}) by {credit(song.requester_id)}"
        f" · {song.score:+d} (👍 {song.up} · 👎 {song.down})"
    )


def rules_text(contest: Contest) -> str:
    cap = contest.max_entries_per_member
    entries = f"up to {cap} per member" if cap else "as many as your quota allows"
    lines = [
        f"Enter with `/music contest:True` or `/music-custom contest:True` ({entries}; each an ordinary generation).",
        "Vote with 👍 / 👎 under the songs: the score is 👍 minus 👎 from votes cast before the end"
        + ("; votes of members who joined after the start do not count." if contest.exclude_new_members else "."),
        "Ties go to the earlier song. Nobody can vote on their own song.",
    ]
    return "\n".join(lines)


def render_announcement(contest: Contest, standings: Sequence[RankedSong] = ()) -> discord.Embed:
    embed = discord.Embed(
        title=fit(f"🏆 Contest: {contest.theme}", 256),
        description=fit(
            f"**Theme:** {quote_user_text(contest.theme, 200)}\nEnds {timestamp(contest)} ({timestamp(contest, 'f')})."
            f"\n\n{rules_text(contest)}",
            EMBED_DESCRIPTION_LIMIT,
        ),
        colour=discord.Colour.gold(),
    )
    lines = [song_line(contest.guild_id, place, song) for place, song in enumerate(standings, start=1)]
    embed.add_field(name="Standings", value=fit("\n".join(lines) or "No entries yet.", 1024), inline=False)
    minutes = int(STANDINGS_EDIT_INTERVAL.total_seconds() // 60)
    embed.set_footer(text=f"Standings are refreshed at most once every {minutes} minute(s).")
    return embed


def render_results(contest: Contest, results: Sequence[RankedSong]) -> str:
    head = f"🏁 **The contest “{quote_user_text(contest.theme, 200)}” is over!**"
    if not results:
        return f"{head}\nNo songs were entered."
    lines = [song_line(contest.guild_id, place, song) for place, song in enumerate(results, start=1)]
    winner = results[0]
    tail = f"🥇 Congratulations {credit(winner.requester_id)}! The winning song follows."
    footer = "Score = 👍 minus 👎 from votes cast during the contest; ties go to the earlier song."
    return fit("\n".join([head, *lines, tail, f"-# {footer}"]), MESSAGE_LIMIT)


def render_status(contest: Contest | None, mine: Sequence[RankedSong], entered: int) -> discord.Embed:
    if contest is None:
        return discord.Embed(
            title="🏆 No contest is running",
            description="Past results: `/music-contest past`.",
            colour=discord.Colour.light_grey(),
        )
    embed = render_announcement(contest)
    embed.clear_fields()
    cap = contest.max_entries_per_member
    used = f"{entered} of {cap}" if cap else str(entered)
    lines = [song_line(contest.guild_id, place, song) for place, song in enumerate(mine, start=1)]
    embed.add_field(
        name=f"Your entries ({used})",
        value=fit("\n".join(line.split(" ", 1)[1] for line in lines) or "None yet.", 1024),
        inline=False,
    )
    return embed


def render_past(page: int, past: Sequence[tuple[Contest, Sequence[RankedSong]]]) -> discord.Embed:
    embed = discord.Embed(title=f"🏆 Past contests (page {page})", colour=discord.Colour.gold())
    if not past:
        embed.description = "No finished contests here yet." if page == 1 else "No contests on this page."
        return embed
    for contest, top in past:
        lines = [song_line(contest.guild_id, place, song) for place, song in enumerate(top, start=1)]
        embed.add_field(
            name=fit(f"{contest.theme} · ended {contest.ends_at:%Y-%m-%d}", 256),
            value=fit("\n".join(lines) or "No songs were entered.", 1024),
            inline=False,
        )
    return embed


def render_started(contest: Contest) -> str:
    return f"🏆 The contest is on in <#{contest.channel_id}>; it ends {timestamp(contest)}."


def render_ended(contest: Contest) -> str:
    theme = quote_user_text(contest.theme, 100)
    return f"🏁 The contest “{theme}” is ending; results follow in <#{contest.channel_id}>."


def render_cancelled(contest: Contest) -> str:
    return f"🛑 The contest “{quote_user_text(contest.theme, 100)}” was cancelled; no results will be posted."


def render_cancelled_announcement(contest: Contest) -> discord.Embed:
    embed = render_announcement(contest)
    embed.title = fit(f"🛑 Cancelled: {contest.theme}", 256)
    embed.clear_fields()
    return embed


def fame_song_url(candidate: FameCandidate) -> str:
    return f"https://discord.com/channels/{candidate.guild_id}/{candidate.source_channel_id}/{candidate.message_id}"


def render_fame_credit(candidate: FameCandidate) -> str:
    """The line before a song's forward; its link also finds it again after a crash."""
    return f"🌟 Into the hall of fame: [a song]({fame_song_url(candidate)}) by {credit(candidate.requester_id)}."


def render_fame_settings(settings: HallOfFame | None) -> str:
    if settings is None:
        return "The hall of fame is off. Turn it on with `/music-admin halloffame channel:… threshold:…`."
    return f"🌟 Songs reaching a score of {settings.threshold} are forwarded to <#{settings.channel_id}>."


FAME_OFF = "The hall of fame is now off; songs already in it stay."
FAME_NEEDS_BOTH = "Give both a channel and a threshold (or `off:True`)."
