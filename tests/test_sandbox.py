"""The sandbox backend's parts: its synthesis (deterministic, a real mp3 of 15-30 s), its cover PNG, its
task ids and timeline, and its own file server."""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest

from bot.backends import adapter, create_backend, serve_backend
from bot.backends.fetch_policy import sniff_audio_format
from bot.backends.sandbox import MODEL_NAME, NOTICE, SandboxBackend, SandboxTask, clip_words, headline
from bot.backends.sandbox_cover import PNG_SIGNATURE, draw_cover
from bot.backends.sandbox_server import SandboxFiles, take_path
from bot.backends.sandbox_synth import SAMPLE_RATE, TakePlan, read_mp3_frames, render_mp3
from bot.backends.spec import BackendConfig
from bot.models import ClipStatus, GenerationMode, GenerationRequest

DESCRIPTION = GenerationRequest(GenerationMode.DESCRIPTION, "rainy lofi beats for studying")


def task_of(request: GenerationRequest = DESCRIPTION, now: float = 1000.0) -> SandboxTask:
    return SandboxTask.for_request(request, now)


def config(base_url: str = "http://127.0.0.1:0") -> BackendConfig:
    return BackendConfig("sandbox", base_url, request_timeout=2, wait_audio_timeout=5)


def test_a_take_is_the_same_for_the_same_prompt_and_different_for_each_take() -> None:
    first, second = task_of(now=1.0), task_of(now=99.0)  # two requests of the same prompt
    assert first.key != second.key
    assert first.take(0) == second.take(0)
    assert render_mp3(first.take(0)) == render_mp3(second.take(0))
    assert render_mp3(first.take(0)) != render_mp3(first.take(1))
    other = task_of(GenerationRequest(GenerationMode.DESCRIPTION, "epic trailer music"))
    assert other.take(0).seed != first.take(0).seed


@pytest.mark.parametrize("prompt", ["rainy lofi beats", "epic trailer music", "a", "ü" * 400])
def test_each_take_is_a_valid_mp3_of_15_to_30_seconds(prompt: str) -> None:
    task = task_of(GenerationRequest(GenerationMode.DESCRIPTION, prompt))
    for index in (0, 1):
        plan = task.take(index)
        data = render_mp3(plan)
        assert data[0] == 0xFF, "starts on an MPEG frame sync"
        assert data[1] & 0xE0 == 0xE0
        assert sniff_audio_format(data[:12]) == "mp3"
        frames = read_mp3_frames(data)  # every byte belongs to a frame
        assert frames.sample_rate == SAMPLE_RATE
        assert 15 <= plan.seconds <= 30
        assert plan.seconds <= frames.seconds <= plan.seconds + 0.05


@pytest.mark.parametrize("seconds", [15, 30])
def test_a_chosen_length_is_the_length_of_the_mp3(seconds: int) -> None:
    plan = task_of(replace(DESCRIPTION, duration_seconds=seconds)).take(1)
    assert plan.seconds == seconds
    assert seconds <= read_mp3_frames(render_mp3(plan)).seconds <= seconds + 0.05


def test_the_mp3_reader_refuses_what_is_not_frames() -> None:
    data = render_mp3(TakePlan(seed=7, seconds=1, instrumental=True))
    for broken in (b"", b"ID3" + data, data[:-1], data + b"\x00" * 8):
        with pytest.raises(ValueError, match=r"frame|stray"):
            read_mp3_frames(broken)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data.startswith(PNG_SIGNATURE)
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC on {kind!r}"
        chunks.append((kind, body))
        offset += 12 + length
    return chunks


def test_the_cover_is_a_valid_png_coloured_by_the_song() -> None:
    cover = draw_cover(seed=12345, take=0)
    chunks = png_chunks(cover)
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour_type, *_ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (width, height, depth, colour_type) == (128, 128, 8, 2)
    pixels = zlib.decompress(chunks[1][1])
    assert len(pixels) == height * (1 + 3 * width)
    assert all(pixels[row * (1 + 3 * width)] == 0 for row in range(height)), "every row has its filter byte"
    assert draw_cover(seed=12345, take=0) == cover
    assert draw_cover(seed=12345, take=1) != cover
    assert pixels[1:4] != zlib.decompress(png_chunks(draw_cover(seed=200, take=0))[1][1])[1:4]


def test_the_task_id_carries_the_request_and_nothing_else_is_one() -> None:
    request = GenerationRequest(
        GenerationMode.CUSTOM, "[Verse]\nla la" * 200, True, "sandbox", "Neon", "synthwave", duration_seconds=20
    )
    task = task_of(request, now=1234.5)
    assert SandboxTask.from_key(task.key) == task
    assert len(task.key) < 1000, "compressed"
    forged = replace(task, seconds="20", instrumental=1)  # type: ignore[arg-type]
    for foreign in ("", "sandbox.", "sandbox.!!!", "task-123", task.key[:-5], "sandbox." + "A" * 40, forged.key):
        assert SandboxTask.from_key(foreign) is None


def test_every_word_of_a_take_says_it_is_the_sandbox() -> None:
    title, style, lyrics = clip_words(task_of(), 0)
    assert title == "Rainy Lofi Beats For Studying (sandbox)"
    assert style.startswith("sandbox test tune, ")
    assert "bpm" in style
    assert lyrics.startswith(NOTICE)
    assert "rainy lofi beats for studying" in lyrics
    custom = GenerationRequest(GenerationMode.CUSTOM, "my own words", title="Neon", tags="synthwave")
    title, style, lyrics = clip_words(task_of(custom), 1)
    assert (title, lyrics) == ("Neon (sandbox)", f"{NOTICE}\n\nmy own words")
    assert style.startswith("synthwave, sandbox test tune")
    _, style, lyrics = clip_words(task_of(replace(DESCRIPTION, instrumental=True)), 0)
    assert lyrics == ""
    assert style.endswith("instrumental")
    assert headline("  ") == "Untitled"


async def test_the_timeline_goes_queued_streaming_complete_on_the_same_polling_path() -> None:
    clock = [1000.0]
    async with aiohttp.ClientSession() as session:
        backend = SandboxBackend(session, config("http://127.0.0.1:5555"), now=lambda: clock[0])
        submission = await backend.submit(DESCRIPTION, wait_audio=True)
        (key,) = submission.poll_keys
        assert submission.task_id == key
        assert [clip.status for clip in submission.clips] == [ClipStatus.QUEUED] * 2

        for at, statuses, done in [
            (1000.5, ["queued", "queued"], False),
            (1001.5, ["streaming", "streaming"], False),
            (1003.5, ["complete", "streaming"], False),
            (1005.0, ["complete", "complete"], True),
        ]:
            clock[0] = at
            (update,) = await backend.poll([key])
            assert [clip.status.value for clip in update.clips] == statuses
            assert update.done is done
            for clip in update.clips:
                assert clip.model_name == MODEL_NAME
                assert clip.id.startswith("sandbox-")
                assert clip.has_audio == (clip.status is ClipStatus.COMPLETE)
                assert clip.audio_url.startswith("http://127.0.0.1:5555/takes/") == clip.has_audio
                assert clip.image_url.startswith("http://127.0.0.1:5555/covers/") == (clip.status != "queued")
        assert [clip.id for clip in update.clips] == [clip.id for clip in submission.clips]
        assert update.clips[0].duration == float(SandboxTask.from_key(key).take(0).seconds)  # type: ignore[union-attr]

        (lost,) = await backend.poll(["a-sunoapi-task-id"])
        assert lost.done
        assert lost.clips == ()
        assert lost.error is not None


@pytest.fixture
async def served() -> AsyncIterator[BackendConfig]:
    async with serve_backend(config()) as values:
        yield values


async def test_its_server_listens_on_a_free_port_and_serves_the_takes(served: BackendConfig) -> None:
    assert served.base_url.startswith("http://127.0.0.1:")
    assert not served.base_url.endswith(":0")
    plan = task_of().take(0)
    async with aiohttp.ClientSession() as session:
        async with session.get(served.base_url + take_path(plan.seed, plan.seconds, instrumental=False)) as response:
            assert response.status == 200
            assert response.content_type == "audio/mpeg"
            assert await response.read() == render_mp3(plan)
        for wrong in ("/takes/0123456789abcdef-31-v.mp3", "/takes/x.mp3", "/covers/zz-0.png", "/"):
            async with session.get(served.base_url + wrong) as response:
                assert response.status == 404, wrong


async def test_its_server_is_closed_with_the_block() -> None:
    async with (
        serve_backend(config()) as values,
        aiohttp.ClientSession() as session,
        session.get(values.base_url + "/covers/0123456789abcdef-1.png") as response,
    ):
        assert (await response.read()).startswith(PNG_SIGNATURE)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(values.base_url + "/covers/0123456789abcdef-1.png")


async def test_renders_run_off_the_event_loop_once_per_file() -> None:
    threads: list[threading.Thread] = []
    files = SandboxFiles()

    def render() -> bytes:
        threads.append(threading.current_thread())
        return b"rendered"

    assert await files._render("one", render) == b"rendered"
    assert await files._render("one", render) == b"rendered"  # the second time from its cache
    assert threads
    assert threads[0] is not threading.main_thread()
    assert len(threads) == 1


async def test_other_backends_run_nothing_of_their_own() -> None:
    values = BackendConfig("sunoapi", "https://api.sunoapi.org", request_timeout=2, wait_audio_timeout=5)
    async with serve_backend(values) as served:
        assert served is values
    assert adapter("sandbox").default_cost == 0


async def test_the_probe_synthesises_a_take_and_reads_it_back() -> None:
    async with aiohttp.ClientSession() as session:
        words = await create_backend(session, config()).probe()
    assert words.startswith("needs no key and spends nothing: synthesised a 1.0-second test take here")
    assert "mp3 frames at 22.05 kHz" in words
