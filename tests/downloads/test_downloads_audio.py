"""Downloads: what arrives must be recognisable audio."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from bot.backends.base import DownloadedAudio
from bot.backends.fetch_policy import sniff_audio_format
from bot.errors import NotAudioError
from tests.downloads.support import fetch, nothing_left
from tests.fakes.hostile_files import FLAC, M4A, MP3, OGG, WAV, HostileFileServer


@pytest.mark.parametrize(
    ("body", "content_type", "audio_format"),
    [
        (MP3, "audio/mpeg", "mp3"),
        (b"\xff\xfb\x90\x64" + bytes(500), "audio/mpeg", "mp3"),
        (WAV, "audio/wav", "wav"),
        (FLAC, "audio/flac", "flac"),
        (OGG, "application/ogg", "ogg"),
        (M4A, "audio/mp4", "m4a"),
        (MP3, "application/octet-stream", "mp3"),
        (WAV, "binary/octet-stream", "wav"),
    ],
)
async def test_audio_is_accepted_with_its_format(
    body: bytes,
    content_type: str,
    audio_format: str,
    host: HostileFileServer,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    url = host.file("/clip", body, content_type)
    destination = tmp_path / "clip.download"
    downloaded = await fetch(session, url, destination, trusted=[host.base_url])
    assert downloaded == DownloadedAudio(len(body), audio_format)
    assert destination.read_bytes() == body


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (json.dumps({"error": "not found"}).encode(), "audio/mpeg", "its first bytes are not MP3, WAV, FLAC, Ogg"),
        (b"<!doctype html><html><body>Sign in</body></html>", "text/html", "it was sent as text/html"),
        (json.dumps({"audio": "x"}).encode(), "application/json", "it was sent as application/json"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "image/png", "it was sent as image/png"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "application/octet-stream", "its first bytes are not"),
        (b"\xff\x00" + bytes(100), "audio/mpeg", "its first bytes are not"),
        (b"", "audio/mpeg", "the music service's file is empty"),
    ],
)
async def test_what_is_not_audio_is_refused_and_nothing_is_kept(
    body: bytes,
    content_type: str,
    words: str,
    host: HostileFileServer,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    url = host.file("/clip.mp3", body, content_type)
    with pytest.raises(NotAudioError, match=words) as refused:
        await fetch(session, url, tmp_path / "clip.download", trusted=[host.base_url])
    assert refused.value.detail.startswith("the music service's file is")
    assert refused.value.retryable is False
    assert nothing_left(tmp_path)


def test_sniffing_needs_only_the_first_bytes() -> None:
    assert sniff_audio_format(b"ID3") == "mp3"
    assert sniff_audio_format(b"\xff\xe0") == "mp3"
    assert sniff_audio_format(b"\xff\xd8\xff\xe0") is None  # a JPEG
    assert sniff_audio_format(b"RIFF\x00\x00\x00\x00AVI ") is None
    assert sniff_audio_format(b"") is None
