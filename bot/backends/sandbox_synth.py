"""The sandbox's music: a short tune synthesised from a seed (chords, bass, a lead, drums), encoded as mp3."""

from __future__ import annotations

import hashlib
import math
import random
from array import array
from dataclasses import dataclass
from functools import lru_cache
from operator import add

import lameenc

SAMPLE_RATE = 22_050
BIT_RATE_KBPS = 64
FRAME_SAMPLES = 576  # samples in one MPEG-2 Layer III frame (22.05 kHz is MPEG-2's half rate)
# LAME adds its encoder delay and pads the end to a whole frame: two frames fewer of PCM make a file of the
# asked length (measured: 2 to 25 ms over it).
ENCODER_EXTRA_SAMPLES = 2 * FRAME_SAMPLES
MIN_SECONDS, MAX_SECONDS = 15, 30
TABLE_SIZE = 2048  # samples of one wave cycle; a power of two, so a phase wraps with a mask
PHASE_BITS = 16
FADE_SECONDS = 1.5

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_SCALES = {
    "major pentatonic": (0, 2, 4, 7, 9),
    "minor pentatonic": (0, 3, 5, 7, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
}
# Chord roots as steps of the major scale (I-V-vi-IV and friends); each chord is a major triad on its root.
_PROGRESSIONS = ((0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4), (0, 3, 4, 3), (5, 4, 3, 4))
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
Timbre = tuple[tuple[int, float], ...]  # (partial, weight) pairs
_LEADS: dict[str, Timbre] = {
    "warm lead": ((1, 1.0), (2, 0.5), (3, 0.25)),
    "reedy lead": ((1, 1.0), (3, 0.33), (5, 0.2), (7, 0.14)),
    "hollow lead": ((1, 1.0), (2, 0.3), (4, 0.2), (6, 0.1)),
    "bright lead": ((1, 1.0), (2, 0.7), (3, 0.5), (4, 0.35), (5, 0.2)),
}
_SINE: Timbre = ((1, 1.0),)
_BASS: Timbre = ((1, 1.0), (2, 0.35))
# Sixteen sixteenths per bar: 1 kick, 2 snare, 3 hat. The loudest overlap (kick on kick, plus chord, bass and
# lead at their peaks) stays below 30,000, so the sum never leaves 16 bits.
_DRUM_PATTERNS = (
    (1, 0, 3, 0, 2, 0, 3, 0, 1, 0, 3, 1, 2, 0, 3, 0),
    (1, 0, 0, 3, 2, 0, 0, 3, 1, 1, 0, 3, 2, 0, 3, 3),
    (1, 3, 3, 3, 2, 3, 3, 3, 1, 3, 3, 3, 2, 3, 1, 3),
)
Phrase = tuple[int | None, ...]  # a bar of eighth notes (MIDI numbers), None for a rest


@dataclass(frozen=True, slots=True)
class TakePlan:
    """What one take is rendered from: the same plan always gives the same bytes."""

    seed: int
    seconds: int
    instrumental: bool


@dataclass(frozen=True, slots=True)
class Arrangement:
    """The musical choices a take's seed makes, also shown to the member as its style."""

    bpm: int
    key: int  # MIDI note of the tonic
    scale: str
    lead: str
    progression: tuple[int, ...]
    phrases: tuple[Phrase, ...]
    drums: tuple[int, ...]
    noise_seed: int

    def describe(self) -> str:
        return f"{self.bpm} bpm, {NOTE_NAMES[self.key % 12]} {self.scale}, {self.lead}"


def take_seed(song_seed: bytes, take: int) -> int:
    """One take's seed: a different tune for each take of the same song."""
    return int.from_bytes(hashlib.sha256(song_seed + bytes([take])).digest()[:8], "big")


def pick_seconds(seed: int) -> int:
    """A length from MIN_SECONDS to MAX_SECONDS, for a take whose length the member did not choose."""
    return MIN_SECONDS + seed % (MAX_SECONDS - MIN_SECONDS + 1)


def arrange(plan: TakePlan) -> Arrangement:
    rng = random.Random(plan.seed)
    key = 45 + rng.randrange(12)  # A2 to G#3
    scale = rng.choice(sorted(_SCALES))
    lead = rng.choice(sorted(_LEADS))  # drawn either way, so an instrumental is the same tune on bells
    return Arrangement(
        bpm=rng.randrange(84, 133, 4),
        key=key,
        scale=scale,
        lead="bell lead" if plan.instrumental else lead,
        progression=rng.choice(_PROGRESSIONS),
        phrases=tuple(_phrase(rng, _SCALES[scale], key) for _ in range(2)),
        drums=rng.choice(_DRUM_PATTERNS),
        noise_seed=rng.getrandbits(32),
    )


def render_mp3(plan: TakePlan) -> bytes:
    """The take as a mono 22.05 kHz, 64 kbit/s mp3 lasting `plan.seconds` (to within one frame)."""
    return encode_mp3(render_pcm(plan))


def encode_mp3(pcm: bytes) -> bytes:
    """Signed 16-bit mono PCM at SAMPLE_RATE as bare mp3 frames (no ID3 tag)."""
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(BIT_RATE_KBPS)
    encoder.set_in_sample_rate(SAMPLE_RATE)
    encoder.set_channels(1)
    encoder.set_quality(7)  # LAME's fast setting: plenty for these tunes
    return bytes(encoder.encode(pcm)) + bytes(encoder.flush())


def render_pcm(plan: TakePlan) -> bytes:
    """Signed 16-bit mono PCM: a bar of chords, a bar with drums, then a lead over the four-chord loop; faded."""
    arrangement = arrange(plan)
    total = max(FRAME_SAMPLES, plan.seconds * SAMPLE_RATE - ENCODER_EXTRA_SAMPLES)
    sixteenth = round(SAMPLE_RATE * 15 / arrangement.bpm)
    lead = _SINE if plan.instrumental else _LEADS[arrangement.lead]
    kit = _drum_kit(arrangement.noise_seed, sixteenth)
    beds = [_bed(arrangement, sixteenth, chord) for chord in range(4)]
    bars: dict[tuple[int, int | None, bool], list[int]] = {}  # a repeated bar is rendered once
    track: list[int] = []
    index = 0
    while len(track) < total:
        shape = (index % 4, None if index < 2 else (index // 4) % 2, index >= 1)
        if shape not in bars:
            bars[shape] = _bar(arrangement, sixteenth, lead, kit, beds[shape[0]], *shape[1:])
        track += bars[shape]
        index += 1
    del track[total:]
    _fade_out(track)
    return array("h", track).tobytes()


def _bed(arrangement: Arrangement, sixteenth: int, chord: int) -> list[int]:
    """A bar of the chord: stabs on the beats over the bass on the half bars."""
    beat = 4 * sixteenth
    root = arrangement.key + _MAJOR[arrangement.progression[chord]]
    stab = _tone((_freq(root), _freq(root + 4), _freq(root + 7)), beat, _SINE, 2600, 0.35)
    bass = _tone((_freq(root - 12),), 2 * beat, _BASS, 5200, 0.6)
    return list(map(add, stab * 4, bass * 2))


def _bar(
    arrangement: Arrangement,
    sixteenth: int,
    lead: Timbre,
    kit: tuple[tuple[int, ...], ...],
    bed: list[int],
    phrase: int | None,
    drums: bool,
) -> list[int]:
    """One bar: the chord's bed, and the lead phrase and the drums if asked."""
    bar = bed.copy()
    if phrase is not None:
        eighth = 2 * sixteenth
        for step, note in enumerate(arrangement.phrases[phrase]):
            if note is not None:
                _mix(bar, step * eighth, _tone((_freq(note),), eighth, lead, 4200, 0.9))
    if drums:
        for step, hit in enumerate(arrangement.drums):
            if hit:
                _mix(bar, step * sixteenth, kit[hit - 1])
    return bar


def _phrase(rng: random.Random, scale: tuple[int, ...], key: int) -> Phrase:
    """Eight eighth notes walking the scale an octave above the key; about one in five is a rest."""
    notes: list[int | None] = []
    step = rng.randrange(len(scale))
    for _ in range(8):
        step = max(0, min(2 * len(scale) - 1, step + rng.choice((-2, -1, -1, 0, 1, 1, 2))))
        octave, degree = divmod(step, len(scale))
        notes.append(None if rng.random() < 0.2 else key + 12 + 12 * octave + scale[degree])
    return tuple(notes)


def _freq(midi_note: int) -> float:
    return 440.0 * 2 ** ((midi_note - 69) / 12)


@lru_cache(maxsize=16)
def _table(timbre: Timbre) -> tuple[float, ...]:
    """One cycle of the wave, normalised to a peak of 1."""
    raw = [
        sum(weight * math.sin(2 * math.pi * partial * index / TABLE_SIZE) for partial, weight in timbre)
        for index in range(TABLE_SIZE)
    ]
    peak = max(abs(value) for value in raw) or 1.0
    return tuple(value / peak for value in raw)


@lru_cache(maxsize=64)
def _envelope(length: int, decay: float, loudness: float) -> tuple[float, ...]:
    """A quick attack, an exponential decay and a short release, as amplitudes in 16-bit units."""
    attack = min(60, length // 4)
    release = min(200, length // 4)
    peak = 32767 * 0.28 * loudness
    shape = [peak * math.exp(-index / decay) for index in range(length)]
    for index in range(attack):
        shape[index] *= index / attack
    for index in range(release):
        shape[length - 1 - index] *= index / release
    return tuple(shape)


@lru_cache(maxsize=256)
def _tone(freqs: tuple[float, ...], length: int, timbre: Timbre, decay: float, loudness: float) -> tuple[int, ...]:
    """A note (or a chord of several) of `length` samples, as 16-bit integers."""
    table = _table(timbre)
    mask = TABLE_SIZE - 1
    mixed = [0.0] * length
    for freq in freqs:
        increment = round(freq * TABLE_SIZE / SAMPLE_RATE * (1 << PHASE_BITS))
        mixed = list(map(add, mixed, [table[(index * increment >> PHASE_BITS) & mask] for index in range(length)]))
    envelope = _envelope(length, decay, loudness / len(freqs))
    return tuple([int(value * gain) for value, gain in zip(mixed, envelope, strict=True)])


def _drum_kit(seed: int, sixteenth: int) -> tuple[tuple[int, ...], ...]:
    """Kick (a falling sine), snare (noise over a body) and hat (a tick of noise), one take's own noise."""
    noise = random.Random(seed)
    kick = []
    phase = 0.0
    for index in range(min(2 * sixteenth, SAMPLE_RATE // 4)):
        phase += 2 * math.pi * (50 + 90 * math.exp(-index / 900)) / SAMPLE_RATE
        kick.append(int(9000 * math.exp(-index / 2500) * math.sin(phase)))
    snare = [
        int(
            3800 * math.exp(-index / 1500) * (2 * noise.random() - 1)
            + 1500 * math.exp(-index / 700) * math.sin(index / 20)
        )
        for index in range(min(2 * sixteenth, SAMPLE_RATE // 5))
    ]
    hat = [
        int(1400 * math.exp(-index / 250) * (2 * noise.random() - 1))
        for index in range(min(sixteenth, SAMPLE_RATE // 20))
    ]
    return tuple(kick), tuple(snare), tuple(hat)


def _mix(track: list[int], start: int, sound: tuple[int, ...]) -> None:
    """Adds `sound` into `track` from `start`; what would fall past the end is cut."""
    end = start + len(sound)
    track[start:end] = map(add, track[start:end], sound)


def _fade_out(track: list[int]) -> None:
    length = min(len(track), int(FADE_SECONDS * SAMPLE_RATE))
    offset = len(track) - length
    for index in range(length):
        track[offset + index] = track[offset + index] * (length - index) // length


@dataclass(frozen=True, slots=True)
class Mp3Summary:
    """What the frame headers of an mp3 say: how many frames, at what rate, so how long it plays."""

    frames: int
    sample_rate: int
    seconds: float


_MPEG1_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MPEG2_KBPS = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_RATES = {0b11: (44_100, 48_000, 32_000), 0b10: (22_050, 24_000, 16_000), 0b00: (11_025, 12_000, 8_000)}


def read_mp3_frames(data: bytes) -> Mp3Summary:
    """Walks the Layer III frames from the first byte to the last; ValueError where one is not a frame."""
    offset = frames = samples = rate = 0
    while offset < len(data):
        if len(data) - offset < 4:
            raise ValueError(f"{len(data) - offset} stray bytes after the last frame")
        header = int.from_bytes(data[offset : offset + 4], "big")
        version, layer = (header >> 19) & 0b11, (header >> 17) & 0b11
        bitrate_index, rate_index = (header >> 12) & 0xF, (header >> 10) & 0b11
        if header >> 21 != 0x7FF or version == 0b01 or layer != 0b01 or bitrate_index in (0, 15) or rate_index == 3:
            raise ValueError(f"no Layer III frame header at byte {offset}")
        rate = _RATES[version][rate_index]
        mpeg1 = version == 0b11
        kbps = (_MPEG1_KBPS if mpeg1 else _MPEG2_KBPS)[bitrate_index]
        offset += (144_000 if mpeg1 else 72_000) * kbps // rate + ((header >> 9) & 1)
        samples += 1152 if mpeg1 else 576
        frames += 1
    if not frames:
        raise ValueError("no frames at all")
    if offset > len(data):
        raise ValueError(f"the last frame is cut short by {offset - len(data)} bytes")
    return Mp3Summary(frames=frames, sample_rate=rate, seconds=samples / rate)
