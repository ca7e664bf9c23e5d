"""The chosen backend and its file downloads, counted: each submit, poll and download is one upstream request of
its kind, each MusicApiError leaving one an error, each accepted submit a paid generation and its cost."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from bot.backends.base import Capabilities, DownloadedAudio, MusicBackend, PollUpdate, Submission
from bot.metrics import Metrics
from bot.models import GenerationRequest

Download = Callable[..., Awaitable[DownloadedAudio]]  # AudioDownloader.download's shape


class MeteredBackend:
    """A MusicBackend that counts what it asks of the one it wraps (which makes one request per call)."""

    name: str

    def __init__(self, backend: MusicBackend, metrics: Metrics, *, cost_per_generation: int) -> None:
        self.name = backend.name
        self._backend = backend
        self._metrics = metrics
        self._cost = cost_per_generation

    @property
    def capabilities(self) -> Capabilities:
        return self._backend.capabilities  # read each time: the wrapped backend may learn its models late

    async def submit(
        self, request: GenerationRequest, *, wait_audio: bool, callback_url: str | None = None
    ) -> Submission:
        with self._metrics.upstream_request(self.name, "generate"):
            submission = await self._backend.submit(request, wait_audio=wait_audio, callback_url=callback_url)
        self._metrics.generation_accepted(self.name, self._cost)
        return submission

    async def poll(self, keys: Sequence[str]) -> list[PollUpdate]:
        with self._metrics.upstream_request(self.name, "poll"):
            return await self._backend.poll(keys)

    async def probe(self) -> str:
        return await self._backend.probe()  # `musicbot doctor`'s free check; the running bot never probes


def metered_download(download: Download, metrics: Metrics, backend: str) -> Download:
    """`download`, each call counted as one `download` request of `backend` (a file too large to attach is
    no error: it is posted as a link)."""

    async def counted(url: str, destination: Path, *, max_bytes: int, time_limit: float) -> DownloadedAudio:
        with metrics.upstream_request(backend, "download"):
            return await download(url, destination, max_bytes=max_bytes, time_limit=time_limit)

    return counted
