"""The gcui-art "AudioInfo" clip shape shared by the aimlapi Suno routes and self-hosted suno-api servers."""

from __future__ import annotations

from bot.backends.base import PollUpdate, seconds_field, text_field
from bot.errors import MusicApiBadResponseError
from bot.models import Clip, ClipStatus


def parse_clip(raw: object) -> Clip:
    """One AudioInfo object -> Clip. Fields may be null, "" or missing; only a non-empty id is required."""
    if not isinstance(raw, dict):
        raise MusicApiBadResponseError(f"expected a clip object, got {type(raw).__name__}")
    clip_id = text_field(raw.get("id"))
    if not clip_id:
        raise MusicApiBadResponseError("clip without an id")
    return Clip(
        id=clip_id,
        status=ClipStatus.parse(raw.get("status")),
        title=text_field(raw.get("title")),
        audio_url=text_field(raw.get("audio_url")),
        image_url=text_field(raw.get("image_url")),
        lyrics=text_field(raw.get("lyric")) or text_field(raw.get("prompt")),
        tags=text_field(raw.get("tags")),
        duration=seconds_field(raw.get("duration")),
        model_name=text_field(raw.get("model_name")),
        error_message=text_field(raw.get("error_message")),
    )


def parse_clips(payload: object) -> list[Clip]:
    """The API answers with a bare JSON array of clips."""
    if not isinstance(payload, list):
        raise MusicApiBadResponseError(f"expected a list of clips, got {type(payload).__name__}")
    return [parse_clip(item) for item in payload]


def clip_updates(clips: list[Clip]) -> list[PollUpdate]:
    """Polling by clip id: each clip is its own key, done once it is complete or failed."""
    return [PollUpdate(key=clip.id, clips=(clip,), done=clip.status.is_terminal) for clip in clips]
