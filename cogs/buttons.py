"""The buttons under every clip: 👍 / 👎 votes, Lyrics and Again; this extension owns and registers them.
DynamicItems, so they survive restarts: all their state is in the custom_id and the database. discord.py builds
them from the custom id alone, so their callbacks reach the services through the client."""

from __future__ import annotations

import asyncio
import io
import weakref
from typing import Any, Protocol, runtime_checkable

import discord

from bot.app import MusicBot
from bot.models import JobStatus, VoteChoice, VoteTally
from bot.tree import answer_error
from cogs.contests import hall_of_fame_after_vote
from cogs.i18n import Locale, public_locale, refusal, t
from cogs.render import fit

Interaction = discord.Interaction[MusicBot]
Button = discord.ui.Button[discord.ui.View]

LYRICS_EMBED_LIMIT = 4096
TALLY_CATCH_UP_EDITS = 3
_VOTE_EMOJI = {VoteChoice.UP: "👍", VoteChoice.DOWN: "👎"}


@runtime_checkable
class AgainHandler(Protocol):
    """The music extension's cog: it starts a generation like the one `job_id` was (the Again button)."""

    async def again(self, interaction: Interaction, job_id: int) -> None: ...


# Clicks on one clip are answered one at a time, so the counts Discord shows last are the latest tally.
_clip_locks: weakref.WeakValueDictionary[tuple[int, int], asyncio.Lock] = weakref.WeakValueDictionary()


def _clip_lock(job_id: int, position: int) -> asyncio.Lock:
    lock = _clip_locks.get((job_id, position))
    if lock is None:
        lock = asyncio.Lock()
        _clip_locks[(job_id, position)] = lock
    return lock


async def claimed(interaction: Interaction) -> bool:
    """Each click is claimed once in the database before anything happens, so when two sessions receive the
    same click, one of them answers it."""
    return await interaction.client.claim(interaction)


class VoteButton(discord.ui.DynamicItem[Button], template=r"vote:(?P<job>\d+):(?P<pos>\d+):(?P<choice>up|down)"):
    def __init__(self, job_id: int, position: int, choice: VoteChoice, count: int = 0) -> None:
        super().__init__(
            discord.ui.Button(
                label=f"{_VOTE_EMOJI[choice]} {count}",
                style=discord.ButtonStyle.secondary,
                custom_id=f"vote:{job_id}:{position}:{choice.value}",
            )
        )
        self.job_id = job_id
        self.position = position
        self.choice = choice

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: Interaction, item: discord.ui.Item[Any], match: Any
    ) -> VoteButton:
        return cls(int(match["job"]), int(match["pos"]), VoteChoice(match["choice"]))

    async def interaction_check(self, interaction: Interaction) -> bool:  # type: ignore[override]
        return await claimed(interaction)

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        try:
            async with _clip_lock(self.job_id, self.position):
                result = await interaction.client.services.voting.vote(
                    self.job_id,
                    self.position,
                    voter_id=interaction.user.id,
                    voter_is_bot=interaction.user.bot,
                    choice=self.choice,
                    voter_joined_at=getattr(interaction.user, "joined_at", None),
                )
                view = clip_view(self.job_id, self.position, result.tally, public_locale(interaction))
                await interaction.response.edit_message(view=view)
                await self._show_latest_tally(interaction, result.tally)
            await hall_of_fame_after_vote(interaction, result.clip_id, result.tally.score)
        except Exception as error:
            await answer_error(interaction, error)

    async def _show_latest_tally(self, interaction: Interaction, shown: VoteTally) -> None:
        """Another process may have answered a click on this clip meanwhile, and Discord keeps the last edit:
        edit again until the message shows the tally as it now stands."""
        voting = interaction.client.services.voting
        for _ in range(TALLY_CATCH_UP_EDITS):
            latest = (await voting.clip_for_buttons(self.job_id, self.position)).tally
            if latest == shown:
                return
            view = clip_view(self.job_id, self.position, latest, public_locale(interaction))
            await interaction.edit_original_response(view=view)
            shown = latest


class LyricsButton(discord.ui.DynamicItem[Button], template=r"lyrics:(?P<job>\d+):(?P<pos>\d+)"):
    def __init__(self, job_id: int, position: int, locale: Locale = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=t(locale, "button.lyrics"),
                emoji="📜",
                style=discord.ButtonStyle.secondary,
                custom_id=f"lyrics:{job_id}:{position}",
            )
        )
        self.job_id = job_id
        self.position = position

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: Interaction, item: discord.ui.Item[Any], match: Any
    ) -> LyricsButton:
        return cls(int(match["job"]), int(match["pos"]))

    async def interaction_check(self, interaction: Interaction) -> bool:  # type: ignore[override]
        return await claimed(interaction)

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        try:
            clip = await interaction.client.services.voting.clip_for_buttons(self.job_id, self.position)
            lyrics, locale = clip.lyrics.strip(), interaction.locale
            if clip.erased:
                await interaction.response.send_message(t(locale, "lyrics.erased"), ephemeral=True)
            elif not lyrics:
                await interaction.response.send_message(t(locale, "lyrics.none"), ephemeral=True)
            elif len(lyrics) <= LYRICS_EMBED_LIMIT:
                embed = discord.Embed(title=fit(clip.title, 256), description=lyrics)
                await interaction.response.send_message(embed=embed, ephemeral=True)
            else:
                # Past an embed's 4096 characters the full text goes as a file, never cut.
                file = discord.File(io.BytesIO(lyrics.encode()), filename="lyrics.txt")
                await interaction.response.send_message(
                    t(locale, "lyrics.attached", title=discord.utils.escape_markdown(fit(clip.title, 200))),
                    file=file,
                    ephemeral=True,
                )
        except Exception as error:
            await answer_error(interaction, error)


class AgainButton(discord.ui.DynamicItem[Button], template=r"again:(?P<job>\d+)"):
    def __init__(self, job_id: int, locale: Locale = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=t(locale, "button.again"),
                emoji="🔁",
                style=discord.ButtonStyle.primary,
                custom_id=f"again:{job_id}",
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: Interaction, item: discord.ui.Item[Any], match: Any
    ) -> AgainButton:
        return cls(int(match["job"]))

    async def interaction_check(self, interaction: Interaction) -> bool:  # type: ignore[override]
        return await claimed(interaction)

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        """The same prompt and options, for (and charged to) whoever clicked."""
        try:
            music = interaction.client.get_cog("MusicCog")
            if not isinstance(music, AgainHandler):
                raise RuntimeError("the music extension is not loaded")
            await music.again(interaction, self.job_id)
        except Exception as error:
            await answer_error(interaction, error)


class CancelButton(discord.ui.DynamicItem[Button], template=r"cancel:(?P<job>\d+)"):
    """On the progress message: the requester, or a moderator (Manage Server), stops the job. Before the paid
    call it is given back; after it, it still counts (the music service was paid) and nothing more is posted."""

    def __init__(self, job_id: int, locale: Locale = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=t(locale, "button.cancel"),
                emoji="✖️",
                style=discord.ButtonStyle.danger,
                custom_id=f"cancel:{job_id}",
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: Interaction, item: discord.ui.Item[Any], match: Any
    ) -> CancelButton:
        return cls(int(match["job"]))

    async def interaction_check(self, interaction: Interaction) -> bool:  # type: ignore[override]
        return await claimed(interaction)

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        try:
            runtime = interaction.client.services.runtime
            try:
                job = await runtime.jobs.get(self.job_id)
            except KeyError:
                job = None
            if job is None or job.requester.guild_id != interaction.guild_id:
                raise refusal("cancel.unknown")
            moderator = interaction.permissions.manage_guild
            if interaction.user.id != job.requester.user_id and not moderator:
                raise refusal("cancel.not_yours")
            stopping = await runtime.cancel(self.job_id, interaction.user.id)
            if stopping is None:
                key = "cancel.ended"
            elif stopping.status is JobStatus.RESERVED:
                key = "cancel.free"
            else:
                key = "cancel.counts"
            await interaction.response.send_message(t(interaction.locale, key), ephemeral=True)
        except Exception as error:
            await answer_error(interaction, error)


DYNAMIC_ITEMS = (VoteButton, LyricsButton, AgainButton, CancelButton)


async def setup(bot: MusicBot) -> None:
    """Registers the buttons, so clicks on any clip message (however old) reach them."""
    bot.add_dynamic_items(*DYNAMIC_ITEMS)


def progress_view(job_id: int, locale: Locale = None) -> discord.ui.View:
    """The Cancel button under a running job's progress message (labelled in the server's language)."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id, locale))
    return view


def clip_view(job_id: int, position: int, tally: VoteTally, locale: Locale = None) -> discord.ui.View:
    """The four buttons under a clip message, with the current vote counts on their labels (the others' in the
    server's language)."""
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton(job_id, position, VoteChoice.UP, tally.up))
    view.add_item(VoteButton(job_id, position, VoteChoice.DOWN, tally.down))
    view.add_item(LyricsButton(job_id, position, locale))
    view.add_item(AgainButton(job_id, locale))
    return view
