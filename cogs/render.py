"""Rendering: embeds, file names and message texts for clips and jobs, fitted to Discord's size limits."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import discord

from bot.backends import ServerProgress, adapters
from bot.models import FORGOTTEN_MEMBER, Clip, FailureReason, GenerationMode, Job, PostedClip
from bot.runtime import AsLink, JobOutcome, LinkReason, ListenLink, Pause, Phase
from bot.voting import LeaderboardPeriod
from cogs.i18n import Locale, ordinal_form, t, tn

EMBED_TITLE_LIMIT = 256
EMBED_FIELD_LIMIT = 1024
LYRICS_EXCERPT_CHARS = 600
CONTENT_LIMIT = 2000
PROMPT_ECHO_CHARS = 120
DETAIL_ECHO_CHARS = 300
# The bot runs as several processes and another one took this request over before it started (this one was
# stalled past its lease): that one answers in the channel.
HANDED_OVER_KEY = "job.handed_over"


def fit(text: str, limit: int) -> str:
    """Shortens to the limit with an ellipsis, as Discord rejects over-long fields outright."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# A bracket behind an even number of backslashes (none included) still opens or closes a masked link.
_ACTIVE_BRACKET = re.compile(r"(?<!\\)((?:\\\\)*)([\[\]])")


def quote_user_text(text: str, limit: int = PROMPT_ECHO_CHARS) -> str:
    """Text from outside (a member's, the music service's) shown inline: one line, no markdown tricks, and no
    brackets left to open a masked link (mentions are disabled at send time). Not for a link's own text: see
    `link_text`."""
    return _escaped_text(fit(" ".join(text.split()), limit))


def _escaped_text(text: str) -> str:
    """Markdown and masked-link brackets escaped; line breaks kept."""
    return _ACTIVE_BRACKET.sub(r"\1\\\2", discord.utils.escape_markdown(text))


def _link_target(url: str) -> str:
    """A URL from the music API, safe inside `(...)` of a masked link: nothing in it can close the link."""
    for character, encoded in (("(", "%28"), (")", "%29"), (" ", "%20"), ("<", "%3C"), (">", "%3E")):
        url = url.replace(character, encoded)
    return url


def job_label(job: Job) -> str:
    if job.request.mode is GenerationMode.CUSTOM and job.request.title:
        return quote_user_text(job.request.title)
    return quote_user_text(job.request.prompt)


def ordinal(number: int, locale: Locale = None) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st... ("2.", "2ᵉ", "2番目": by the language's CLDR rule)."""
    return t(locale, f"ordinal.{ordinal_form(locale, number)}", number=number)


def render_progress(
    job: Job,
    phase: Phase,
    listen: Sequence[ListenLink] = (),
    line: int | None = None,
    server: ServerProgress | None = None,
    *,
    locale: Locale = None,
) -> str:
    """The phase (with its place in the server's line while it waits for a slot, or the music service's own
    queue position and percentage where it gives them); and, while takes are being made, a link to hear each
    one that streams already (the stream is not the song: the finished songs come as their own messages)."""
    started = int(job.created_at.timestamp())
    words = t(locale, f"phase.{phase.value}")
    if phase is Phase.QUEUED and line is not None:
        words = t(locale, "progress.queued_in_line", position=ordinal(line, locale))
    elif phase is Phase.QUEUED and server is not None and server.queue_position:
        words = t(locale, "progress.queued_at_service", position=ordinal(server.queue_position, locale))
    elif phase is Phase.GENERATING and server is not None and server.fraction is not None:
        words = t(locale, "progress.generating_percent", percent=round(server.fraction * 100))
    lines = [t(locale, "progress.line", phase=words, label=job_label(job), started=f"<t:{started}:R>")]
    for link in listen:
        if len(listen) > 1 or link.position:
            text = t(locale, "progress.listen_take", take=link.position + 1)
        else:
            text = t(locale, "progress.listen")
        lines.append(f"▶ [{text}]({_link_target(link.url)})")
    return with_notice(fit("\n".join(lines), CONTENT_LIMIT - NOTICE_ROOM), job)


def failure_words(reason: FailureReason, locale: Locale = None) -> str:
    """Why a job ended short, in a sentence without its final full stop."""
    return t(locale, f"failure.{reason.value}").rstrip(".。")


def _reason_words(outcome: JobOutcome, locale: Locale) -> str:
    """Why the job ended short, without a final full stop; who cancelled it, for a cancel."""
    assert outcome.reason is not None
    who = outcome.job.cancel_requested_by
    if outcome.reason is FailureReason.CANCELLED and who is not None:
        return t(locale, "outcome.cancelled_by", member=f"<@{who}>")
    return failure_words(outcome.reason, locale)


def render_outcome(outcome: JobOutcome, *, locale: Locale = None) -> str:
    """The job's final word (or why it paused) on the command's message: icon, counts, reason, refund."""
    job, delivered, expected = outcome.job, outcome.delivered, outcome.expected
    if outcome.pause is Pause.POSTING:
        icon, message = "⏳", t(locale, "outcome.posting_paused", delivered=delivered, expected=expected)
    elif outcome.pause is Pause.DATABASE:
        icon, message = "⏳", t(locale, "outcome.database_paused")
    elif outcome.reason is None:
        icon, message = "✅", tn(locale, "outcome.done", delivered)
    elif delivered:
        reason = _reason_words(outcome, locale)
        icon, message = "⚠️", t(locale, "outcome.partial", delivered=delivered, expected=expected, reason=reason)
    else:
        refund = "outcome.refunded" if outcome.refunded else None
        if outcome.reason is FailureReason.CANCELLED and not outcome.refunded:
            refund = "outcome.cancelled_still_counts"
        reason = _reason_words(outcome, locale)
        icon, message = "❌", t(locale, "outcome.failed", reason=reason) + (f" {t(locale, refund)}" if refund else "")
    text = t(locale, "outcome.line", icon=icon, label=job_label(job), message=message)
    if outcome.detail:  # the music service's own words, quoted on their own line
        text += f"\n> {quote_user_text(outcome.detail, DETAIL_ECHO_CHARS)}"
    return with_notice(fit(text, CONTENT_LIMIT - NOTICE_ROOM), job)


# Room kept at the end of a message for its backend's notice.
NOTICE_ROOM = 200


def with_notice(text: str, job: Job) -> str:
    """The message, with its backend's notice (the sandbox's "not AI music") in small print below it."""
    spec = adapters().get(job.backend)
    notice = spec.capabilities.notice if spec is not None else ""
    return f"{text}\n-# {fit(notice, NOTICE_ROOM - 5)}" if notice else text


def link_note(link: AsLink, locale: Locale = None) -> str:
    """Why a song came as a link to the music service's file instead of attached."""
    if link.reason is LinkReason.TOO_LARGE:
        mib = 1024 * 1024
        size = f"{link.size / mib:.1f} MiB" if link.size is not None else t(locale, "clip.size_unknown")
        return t(locale, "clip.too_large", size=size, limit=f"{(link.limit or 0) / mib:.0f} MiB")
    if link.reason is LinkReason.NOT_STORED:
        return t(locale, "clip.not_stored")
    return t(locale, "clip.not_fetched")


def clip_title(job: Job, clip: Clip) -> str:
    return clip.title or job.request.title or fit(" ".join(job.request.prompt.split()), 80) or "Untitled"


def clip_filename(job: Job, clip: Clip, position: int, audio: Path) -> str:
    """A readable file name with the extension of the format that was downloaded (mp3, or wav for Lyria)."""
    slug = re.sub(r"[^a-z0-9]+", "-", clip_title(job, clip).lower()).strip("-")[:60] or "song"
    return f"{slug}-{position + 1}{audio.suffix or '.mp3'}"


def _format_duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    total = round(seconds)
    return f"{total // 60}:{total % 60:02d}"


def _lyrics_excerpt(lyrics: str) -> str:
    lines = [line.strip() for line in lyrics.splitlines() if line.strip()]
    return _escaped_text(fit("\n".join(lines), LYRICS_EXCERPT_CHARS))


def clip_footer(job_id: int, position: int) -> str:
    """Also how the bot recognises its own clip messages after a restart."""
    return f"Song {position + 1} · job #{job_id}"


def render_clip_embed(
    job: Job, clip: Clip, position: int, *, link: AsLink | None = None, locale: Locale = None
) -> discord.Embed:
    """Title, style, duration, model, requester, cover and the start of the lyrics; plus the link if not attached."""
    embed = discord.Embed(title=fit(clip_title(job, clip), EMBED_TITLE_LIMIT), colour=discord.Colour.blurple())
    description = _lyrics_excerpt(clip.lyrics) if clip.lyrics else ""
    if job.request.instrumental and not description:
        description = f"*{t(locale, 'clip.instrumental')}*"
    if link is not None:
        listen = f"[{t(locale, 'clip.listen')}]({_link_target(clip.audio_url)})"
        description = fit(f"{link_note(link, locale)}\n{listen}\n\n{description}", 4096)
    embed.description = description or None
    if clip.tags:
        embed.add_field(
            name=t(locale, "clip.style"), value=fit(_escaped_text(clip.tags), EMBED_FIELD_LIMIT), inline=False
        )
    duration = _format_duration(clip.duration)
    if duration:
        embed.add_field(name=t(locale, "clip.duration"), value=duration)
    model = clip.model_name or job.request.model
    if model:
        embed.add_field(name=t(locale, "clip.model"), value=fit(_escaped_text(model), EMBED_FIELD_LIMIT))
    embed.add_field(name=t(locale, "clip.requested_by"), value=f"<@{job.requester.user_id}>")
    if clip.image_url.startswith(("http://", "https://")):
        embed.set_thumbnail(url=clip.image_url)
    embed.set_footer(text=clip_footer(job.id, position))
    return embed


def jump_url(clip: PostedClip) -> str:
    return f"https://discord.com/channels/{clip.guild_id}/{clip.channel_id}/{clip.message_id}"


_BRACKETS_AS_PARENTHESES = str.maketrans("[]", "()")
_LINK_BREAKERS = re.compile(r"[()]|:(?=//)")


def link_text(text: str, limit: int) -> str:
    """The text of a masked link `[text](url)`: one line, no markdown, and nothing that can end it early or link
    elsewhere. Brackets become (escaped) parentheses, as a backslash alone does not stop `]` from closing the
    text in Discord's parser; an escaped colon keeps a URL in the text from becoming a link of its own."""
    one_line = fit(" ".join(text.split()), limit).translate(_BRACKETS_AS_PARENTHESES)
    escaped = discord.utils.escape_markdown(one_line, ignore_links=False)
    return _LINK_BREAKERS.sub(lambda found: "\\" + found[0], escaped)


def _clip_line(clip: PostedClip, prefix: str, *, with_requester: bool, locale: Locale = None) -> str:
    title = link_text(clip.title, 60)
    requester = ""
    if with_requester:
        if clip.requester_id == FORGOTTEN_MEMBER:
            requester = " " + t(locale, "top.by_forgotten")
        else:
            requester = " " + t(locale, "top.by", member=f"<@{clip.requester_id}>")
    score = f"{clip.tally.score:+d} (👍 {clip.tally.up} · 👎 {clip.tally.down})"
    when = f"<t:{int(clip.delivered_at.timestamp())}:R>"
    return f"{prefix} [{title}]({jump_url(clip)}){requester} · {score} · {when}"


def render_leaderboard(clips: list[PostedClip], period: LeaderboardPeriod, locale: Locale = None) -> discord.Embed:
    """Posted for the whole channel: in the server's language."""
    words = t(locale, f"top.period.{period.value}")
    embed = discord.Embed(title=t(locale, "top.title", period=words), colour=discord.Colour.gold())
    if not clips:
        embed.description = t(locale, "top.empty", period=words)
        return embed
    lines = [
        _clip_line(clip, f"**{rank}.**", with_requester=True, locale=locale) for rank, clip in enumerate(clips, start=1)
    ]
    embed.description = fit("\n".join(lines), 4096)
    embed.set_footer(text=t(locale, "top.footer"))
    return embed


def render_history(clips: list[PostedClip], member: discord.abc.User, locale: Locale = None) -> discord.Embed:
    embed = discord.Embed(
        title=fit(t(locale, "history.title", member=member.display_name), EMBED_TITLE_LIMIT),
        colour=discord.Colour.blurple(),
    )
    if not clips:
        embed.description = t(locale, "history.empty", member=f"<@{member.id}>")
        return embed
    embed.description = fit("\n".join(_clip_line(clip, "•", with_requester=False) for clip in clips), 4096)
    return embed
