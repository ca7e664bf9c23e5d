"""Parsing the API's clip objects, mapping its failures and validating requests, without a network."""

from __future__ import annotations

import pytest

from bot.backends.aimlapi_gateway import gateway_error as error_for_status
from bot.backends.aimlapi_suno import CAPABILITIES
from bot.backends.suno_clips import parse_clip, parse_clips
from bot.errors import (
    InvalidRequestError,
    MusicApiAuthError,
    MusicApiBadResponseError,
    MusicApiCreditsError,
    MusicApiInvalidRequestError,
    MusicApiRateLimitedError,
    MusicApiUnavailableError,
)
from bot.models import ClipStatus, GenerationMode, GenerationRequest
from bot.runtime import validate_request


def test_submitted_clip_with_nulls_and_empties() -> None:
    clip = parse_clip(
        {
            "id": "a1",
            "title": "",
            "image_url": None,
            "lyric": "",
            "audio_url": "",
            "status": "submitted",
            "tags": None,
            "duration": None,
            "error_message": None,
        }
    )
    assert clip.status is ClipStatus.SUBMITTED
    assert (clip.title, clip.image_url, clip.tags, clip.duration) == ("", "", "", None)
    assert not clip.has_audio


def test_missing_fields_are_tolerated() -> None:
    clip = parse_clip({"id": "a1"})
    assert clip.status is ClipStatus.QUEUED
    assert clip.audio_url == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("complete", ClipStatus.COMPLETE),
        ("completed", ClipStatus.COMPLETE),
        ("COMPLETE", ClipStatus.COMPLETE),
        ("queue", ClipStatus.QUEUED),
        ("Streaming", ClipStatus.STREAMING),
        ("error", ClipStatus.ERROR),
        ("something-new", ClipStatus.QUEUED),
        (None, ClipStatus.QUEUED),
    ],
)
def test_status_spellings(raw: object, expected: ClipStatus) -> None:
    assert ClipStatus.parse(raw) is expected


def test_complete_clip_has_audio_and_duration() -> None:
    clip = parse_clip(
        {
            "id": "a1",
            "status": "completed",
            "audio_url": "https://cdn1.suno.ai/a1.mp3",
            "duration": 158.84,
            "lyric": "[Verse]\nhello",
            "tags": "pop",
            "title": "Hi",
        }
    )
    assert clip.has_audio
    assert clip.duration == pytest.approx(158.84)
    assert clip.lyrics.startswith("[Verse]")


@pytest.mark.parametrize("url", ["https://cdn1.suno.ai/None.mp3", "", "   "])
def test_none_mp3_or_empty_url_is_not_audio(url: str) -> None:
    assert not parse_clip({"id": "a1", "status": "complete", "audio_url": url}).has_audio


def test_streaming_url_is_not_final_audio() -> None:
    clip = parse_clip({"id": "a1", "status": "streaming", "audio_url": "https://audiopipe.suno.ai/?item_id=a1"})
    assert not clip.has_audio


def test_duration_as_string_or_garbage() -> None:
    assert parse_clip({"id": "a", "duration": "12.5"}).duration == 12.5
    assert parse_clip({"id": "a", "duration": "soon"}).duration is None
    assert parse_clip({"id": "a", "duration": True}).duration is None


@pytest.mark.parametrize("payload", [{"clips": []}, "text", [{"title": "no id"}], ["not an object"]])
def test_bad_shapes_are_bad_responses(payload: object) -> None:
    with pytest.raises(MusicApiBadResponseError):
        parse_clips(payload)


@pytest.mark.parametrize(
    ("status", "body", "kind", "words"),
    [
        (401, '{"message":"This request requires a valid API key","statusCode":401}', MusicApiAuthError, "valid API"),
        (403, '{"message":"You\'ve run out of credits."}', MusicApiCreditsError, "run out"),
        (402, '{"error":"Payment required"}', MusicApiCreditsError, "Payment"),
        (429, '{"message":"Too Many Requests"}', MusicApiRateLimitedError, "Too Many"),
        (400, '{"message":"Body validation error!"}', MusicApiInvalidRequestError, "validation"),
        (500, "Internal Server Error", MusicApiUnavailableError, "Internal Server Error"),
        (504, '{"message":"Generation timeout"}', MusicApiUnavailableError, "timeout"),
    ],
)
def test_error_mapping(status: int, body: str, kind: type[Exception], words: str) -> None:
    error = error_for_status(status, body)
    assert type(error) is kind
    assert words in error.detail
    assert str(status) in error.detail


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (GenerationRequest(GenerationMode.DESCRIPTION, "x" * 401), "401 characters long; the limit is 400"),
        (GenerationRequest(GenerationMode.DESCRIPTION, " \n\t "), "The description is empty"),
        (GenerationRequest(GenerationMode.DESCRIPTION, "ok", model="chirp-v9"), "Unknown model"),
        (GenerationRequest(GenerationMode.CUSTOM, "la la", title="t" * 81, tags="pop"), "title is 81"),
        (GenerationRequest(GenerationMode.CUSTOM, "la la", title="T", tags="s" * 201), "style is 201"),
        (GenerationRequest(GenerationMode.CUSTOM, "l" * 3001, title="T", tags="pop"), "lyrics is 3001"),
        (GenerationRequest(GenerationMode.CUSTOM, "", title="T", tags="pop"), "The lyrics is empty"),
    ],
)
def test_validation_names_the_limit(request_: GenerationRequest, words: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        validate_request(request_, CAPABILITIES)
    assert words in caught.value.message


def test_validation_trims_and_allows_instrumental_without_lyrics() -> None:
    cleaned = validate_request(
        GenerationRequest(GenerationMode.CUSTOM, "  ", instrumental=True, title=" Drift ", tags=" ambient "),
        CAPABILITIES,
    )
    assert (cleaned.prompt, cleaned.title, cleaned.tags) == ("", "Drift", "ambient")
    assert validate_request(GenerationRequest(GenerationMode.DESCRIPTION, "  rain  "), CAPABILITIES).prompt == "rain"
