"""Music backends: the ADAPTERS list is every provider the operator can choose with MUSIC_BACKEND. Adding one
is one module defining `ADAPTER`, one entry here (and a fake for its tests)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from types import MappingProxyType

import aiohttp

from bot.backends import acestep, aimlapi_audio, aimlapi_suno, sandbox, suno_api, sunoapi
from bot.backends.base import (
    Capabilities,
    Instrumental,
    ModelSpec,
    MusicBackend,
    PollUpdate,
    ServerProgress,
    Submission,
)
from bot.backends.downloads import AudioDownloader
from bot.backends.spec import AdapterSpec, BackendConfig

__all__ = [
    "ADAPTERS",
    "AdapterSpec",
    "AudioDownloader",
    "BackendConfig",
    "Capabilities",
    "Instrumental",
    "ModelSpec",
    "MusicBackend",
    "PollUpdate",
    "ServerProgress",
    "Submission",
    "adapter",
    "adapters",
    "create_backend",
    "create_downloader",
    "serve_backend",
]

# In the order operators see them listed (settings errors, /music-admin usage).
ADAPTERS: tuple[AdapterSpec, ...] = (
    aimlapi_audio.ADAPTER,
    aimlapi_suno.ADAPTER,
    suno_api.ADAPTER,
    sunoapi.ADAPTER,
    acestep.ADAPTER,
    sandbox.ADAPTER,
)
_BY_NAME: Mapping[str, AdapterSpec] = MappingProxyType({spec.name: spec for spec in ADAPTERS})


def adapters() -> Mapping[str, AdapterSpec]:
    """Every adapter by its MUSIC_BACKEND name."""
    return _BY_NAME


def adapter(name: str) -> AdapterSpec:
    return _BY_NAME[name]


def serve_backend(config: BackendConfig) -> AbstractAsyncContextManager[BackendConfig]:
    """What the chosen backend runs inside the bot, if anything, for as long as the block runs; it yields the
    values the backend and its downloads are then built from (the sandbox's base URL: where it really listens)."""
    serve = adapter(config.backend).serve
    return serve(config) if serve is not None else nullcontext(config)


def create_backend(session: aiohttp.ClientSession, config: BackendConfig) -> MusicBackend:
    return adapter(config.backend).create(session, config)


def create_downloader(session: aiohttp.ClientSession, config: BackendConfig) -> AudioDownloader:
    """The chosen backend's result files: its own origin trusted (and sent its key, where its files need it),
    its error answers typed."""
    spec = adapter(config.backend)
    return AudioDownloader(
        session,
        trusted_origin=config.base_url,
        read_timeout=config.request_timeout,
        min_bytes_per_second=config.download_min_bytes_per_second,
        error_for_status=spec.error_for_status,
        origin_headers={"Authorization": f"Bearer {config.api_key}"} if spec.files_need_key and config.api_key else {},
    )
