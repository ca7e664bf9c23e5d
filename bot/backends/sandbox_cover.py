"""The sandbox's cover art: a small PNG drawn from a seed (a gradient, a record, the word SANDBOX), with zlib alone."""

from __future__ import annotations

import colorsys
import struct
import zlib
from functools import lru_cache

COVER_PIXELS = 128
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
Colour = tuple[int, int, int]
WHITE: Colour = (255, 255, 255)
# A 4 x 5 pixel font with just the letters needed.
_GLYPHS = {
    "S": (".###", "#...", ".##.", "...#", "###."),
    "A": (".##.", "#..#", "####", "#..#", "#..#"),
    "N": ("#..#", "##.#", "#.##", "#..#", "#..#"),
    "D": ("###.", "#..#", "#..#", "#..#", "###."),
    "B": ("###.", "#..#", "###.", "#..#", "###."),
    "O": (".##.", "#..#", "#..#", "#..#", ".##."),
    "X": ("#..#", "#..#", ".##.", "#..#", "#..#"),
}
WORD = "SANDBOX"


def draw_cover(seed: int, take: int, size: int = COVER_PIXELS) -> bytes:
    """A `size` x `size` RGB PNG: a gradient in the hues of `seed` (the song's), a record whose label has the
    take's colour, and the word SANDBOX under it."""
    hue = (seed % 360) / 360
    top = _colour(hue, 0.55, 0.95)
    bottom = _colour((hue + 0.15) % 1.0, 0.75, 0.4)
    label = _colour((hue + 0.5 + 0.25 * take) % 1.0, 0.6, 0.9)
    centre_x, centre_y = (size - 1) / 2, 0.42 * size
    disc, label_edge, hole = 0.34 * size, 0.13 * size, 0.03 * size
    text = _text_pixels(size)
    rows = []
    for y in range(size):
        row = bytearray(b"\x00")  # filter type 0: the row as it is
        for x in range(size):
            radius = ((x - centre_x) ** 2 + (y - centre_y) ** 2) ** 0.5
            if (x, y) in text:
                pixel = WHITE
            elif radius < hole:
                pixel = top
            elif radius < label_edge:
                pixel = label
            elif radius < disc:
                groove = 18 + 10 * (int(radius) % 3 == 0)
                pixel = (groove, groove, groove + 4)
            else:
                pixel = _blend(top, bottom, (x + y) / (2 * size - 2))
            row += bytes(pixel)
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8 bits per channel, RGB, no interlace
    pixels = zlib.compress(b"".join(rows), 9)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


@lru_cache(maxsize=4)
def _text_pixels(size: int) -> frozenset[tuple[int, int]]:
    """The pixels of WORD, as large as fits the width, centred near the bottom."""
    columns = 5 * len(WORD) - 1
    scale = max(1, (size * 8 // 10) // columns)
    left = (size - columns * scale) // 2
    top = size - 7 * scale
    lit: set[tuple[int, int]] = set()
    for position, letter in enumerate(WORD):
        for row, line in enumerate(_GLYPHS[letter]):
            for column, mark in enumerate(line):
                if mark == "#":
                    x0, y0 = left + (5 * position + column) * scale, top + row * scale
                    lit.update((x0 + dx, y0 + dy) for dx in range(scale) for dy in range(scale))
    return frozenset(lit)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _colour(hue: float, saturation: float, value: float) -> Colour:
    red, green, blue = colorsys.hsv_to_rgb(hue, saturation, value)
    return round(red * 255), round(green * 255), round(blue * 255)


def _blend(first: Colour, second: Colour, share: float) -> Colour:
    red, green, blue = (round(a + (b - a) * share) for a, b in zip(first, second, strict=True))
    return red, green, blue
