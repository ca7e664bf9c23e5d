"""Wire-level helpers of the fake music API: error bodies, JS/zod coercions, id parsing and fake media bytes."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import random
import re
import struct
import uuid
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime

from aiohttp import web

from tests.fakes.loopback import LoopbackServer, json_or_none
from tests.fakes.music_api_shapes import ACCESS_DENIED_BODY, GATEWAY_MESSAGES

_CHUNK_SIZE = 16 * 1024
_STYLE_BANK = (
    "upbeat synth pop",
    "melancholic acoustic folk",
    "energetic rock, male vocals",
    "dreamy lo-fi hip hop",
    "cinematic orchestral",
    "funky disco, female vocals",
)


def _gateway_error(request: web.Request, status: int, message: str) -> web.Response:
    request_id = str(uuid.uuid4())
    body = {
        "message": message.replace("{request_id}", request_id),
        "path": request.path,
        "requestId": request_id,
        "statusCode": status,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    return web.json_response(body, status=status)


def _gcui_error(status: int, error: str) -> web.Response:
    return web.json_response({"error": error}, status=status)


def _gcui_ids(query: Mapping[str, str]) -> list[str]:
    """gcui-art `ids=a,b` → ["a", "b"]; absent or empty → [] (the whole feed)."""
    raw = query.get("ids", "")
    return raw.split(",") if raw else []


def _js_truthy(value: object) -> bool:
    """JavaScript `Boolean(value)` for a JSON value."""
    if value is None or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0 and not math.isnan(value)
    if isinstance(value, str):
        return value != ""
    return True


def _js_string(value: object) -> str:
    """A JSON value as the string Suno would see; absent/null become ""."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _access_denied() -> web.Response:
    return web.Response(status=403, text=ACCESS_DENIED_BODY)


async def _send_bytes(request: web.Request, data: bytes, content_type: str, *, with_length: bool) -> web.StreamResponse:
    response = web.StreamResponse(status=200)
    response.content_type = content_type
    if with_length:
        response.content_length = len(data)
    else:
        response.enable_chunked_encoding()
    await response.prepare(request)
    for offset in range(0, len(data), _CHUNK_SIZE):
        await response.write(data[offset : offset + _CHUNK_SIZE])
    await response.write_eof()
    return response


async def _json_body(request: web.Request) -> object:
    """The parsed JSON body, or None (zod's `undefined`) when it is absent, not JSON or not sent as JSON."""
    if request.content_type != "application/json":
        return None
    return json_or_none(await request.text())


def _parse_ids(query: Mapping[str, str]) -> list[str] | str:
    """qs-style `ids[0]=a&ids[1]=b` → ["a", "b"]; otherwise the zod-style issue text."""
    indexed: list[tuple[int, str]] = []
    for key, value in query.items():
        match = re.fullmatch(r"ids\[(\d+)\]", key)
        if match:
            indexed.append((int(match.group(1)), value))
    if indexed:
        return [value for _, value in sorted(indexed, key=lambda pair: pair[0])]
    if "ids" in query:
        return 'Expected array, received string at "ids"'
    return 'Required at "ids"'


def _zod_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _drop_blank_lines(lyrics: str) -> str:
    return "\n".join(line for line in lyrics.split("\n") if line.strip())


def _compose_song(description: str, instrumental: bool) -> tuple[str, str, str]:
    """The title, tags and lyrics "Suno" writes for a description, deterministically."""
    digest = hashlib.sha256(description.encode()).digest()
    words = re.findall(r"[\w']+", description)
    title = " ".join(words[:4]).title() or "Untitled"
    tags = _STYLE_BANK[digest[0] % len(_STYLE_BANK)]
    if instrumental:
        return title, tags, ""
    subject = " ".join(words[:6]).lower() or "nothing at all"
    lyrics = (
        f"[Verse]\nI keep thinking of {subject}\nEvery day it's on my mind\n\n"
        f"[Chorus]\nOh, {subject}\nWe will be fine\n\n"
        f"[Outro]\n{title}"
    )
    return title, tags, lyrics


def _duration_for(clip_id: str) -> float:
    """A v3.5-plausible length (60 s to 4 min) derived from the id."""
    spread = int(hashlib.sha256(clip_id.encode()).hexdigest()[:8], 16) % 18_000
    return round(60 + spread / 100, 2)


@functools.lru_cache(maxsize=32)
def _fake_mp3(clip_id: str, size: int) -> bytes:
    id3_header = b"ID3\x04\x00\x00\x00\x00\x00\x00"  # ID3v2.4, no flags, empty tag
    frame_header = b"\xff\xfb\x90\x64"  # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz
    payload = random.Random(f"fake-mp3:{clip_id}").randbytes(max(size, 0))
    return (id3_header + frame_header + payload)[: max(size, 0)]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


TINY_PNG: bytes = (
    b"\x89PNG\r\n\x1a\n"
    + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    + _png_chunk(b"IDAT", zlib.compress(b"\x00\x80\x40\xff"))
    + _png_chunk(b"IEND", b"")
)
_TINY_MP4 = struct.pack(">I", 20) + b"ftypisom\x00\x00\x02\x00isom"


class AimlGatewayFaults(LoopbackServer):
    """The AI/ML API gateway's error answers, armed the same way on both of its fakes (the Suno routes and
    /v2/generate/audio)."""

    def fail_with_gateway_error(self, route: str, status: int, *, message: str | None = None, times: int = 1) -> None:
        """aimlapi gateway error {message, path, requestId, statusCode, timestamp}; `message` defaults to the
        documented one for 401/403/429/500/502/503/504 and may hold a `{request_id}` placeholder."""
        text = message if message is not None else GATEWAY_MESSAGES[status]

        async def respond(request: web.Request) -> web.StreamResponse:
            return _gateway_error(request, status, text)

        self._intercept(route, respond, times)
