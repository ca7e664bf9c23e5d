"""What a member may ask for: the model they named, and their text checked against its limits before anything
is spent."""

from __future__ import annotations

from dataclasses import replace

from bot.backends import Capabilities, Instrumental, ModelSpec
from bot.errors import InvalidRequestError
from bot.models import GenerationMode, GenerationRequest


def chosen_model(capabilities: Capabilities, name: str | None) -> ModelSpec:
    """The model the member named (or the backend's default); refuses names this backend does not offer."""
    model = capabilities.model(name)
    if model is None:
        offered = ", ".join(capabilities.model_names)
        raise InvalidRequestError(
            f"Unknown model {name!r}. This bot's music service offers: {offered}.",
            key="request.unknown_model",
            values={"name": repr(name), "offered": offered},
        )
    return model


def custom_mode_model(capabilities: Capabilities, name: str | None) -> ModelSpec:
    """The model for `/music-custom`, refused up front when it cannot take your own lyrics, title and style."""
    model = chosen_model(capabilities, name)
    if not model.custom_lyrics:
        raise InvalidRequestError(
            f"{model.name} does not take your own lyrics, title and style: use /music.",
            key="request.no_custom_lyrics",
            values={"model": model.name},
        )
    return model


def validate_request(request: GenerationRequest, capabilities: Capabilities) -> GenerationRequest:
    """Trims the text and refuses what the backend would reject or could not honour, before anything is spent.
    Each message names the option or the limit."""

    def checked(label: str, value: str | None, limit: int, *, required: bool) -> str | None:
        text = (value or "").strip()
        if not text:
            if required:
                raise InvalidRequestError(
                    f"The {label} is empty. Describe the song you want.", key=f"request.empty.{label}"
                )
            return None
        if len(text) > limit:
            raise InvalidRequestError(
                f"The {label} is {len(text)} characters long; the limit is {limit}. Please shorten it.",
                key=f"request.too_long.{label}",
                values={"length": len(text), "limit": limit},
            )
        return text

    model = chosen_model(capabilities, request.model)
    if request.instrumental and model.instrumental is Instrumental.NEVER:
        raise InvalidRequestError(
            f"{model.name} cannot make instrumentals; describe the music in the prompt instead.",
            key="request.no_instrumental",
            values={"model": model.name},
        )
    if request.duration_seconds is not None:
        if model.duration_range is None:
            raise InvalidRequestError(
                f"{model.name} does not let you choose the duration; leave it out.",
                key="request.no_duration",
                values={"model": model.name},
            )
        low, high = model.duration_range
        if not low <= request.duration_seconds <= high:
            raise InvalidRequestError(
                f"{model.name} makes songs of {low} to {high} seconds.",
                key="request.duration_range",
                values={"model": model.name, "low": low, "high": high},
            )
    if request.mode is GenerationMode.DESCRIPTION:
        if not model.description_mode:
            raise InvalidRequestError(
                f"{model.name} needs your own lyrics: use /music-custom.",
                key="request.needs_lyrics",
                values={"model": model.name},
            )
        prompt = checked("description", request.prompt, model.max_prompt_chars, required=True)
        return replace(request, prompt=prompt or "")
    model = custom_mode_model(capabilities, request.model)
    needs_lyrics = model.lyrics_required or (model.instrumental is not Instrumental.ALWAYS and not request.instrumental)
    lyrics = checked("lyrics", request.prompt, model.max_lyrics_chars, required=needs_lyrics)
    title = checked("title", request.title, model.max_title_chars, required=True)
    tags = checked("style", request.tags, model.max_tags_chars, required=True)
    return replace(request, prompt=lyrics or "", title=title, tags=tags)
