"""What each adapter declares: its AdapterSpec (name, settings, price, capabilities) and the values it is built from."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import aiohttp

from bot.backends.base import Capabilities, MusicBackend
from bot.errors import MusicApiError


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """The values an adapter is built from, read from Settings by the setting names its spec declares; the
    adapters never see Settings itself."""

    backend: str
    base_url: str
    request_timeout: float
    wait_audio_timeout: float
    download_min_bytes_per_second: int = 0
    api_key: str = ""  # "" for a backend without a key setting
    callback_url: str | None = None


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """How to build one backend, which settings it owns, and what an operator must know about it.

    The `*_setting` fields name `Settings` fields (and so environment variables): the base URL is where its
    API and its own files live (the one origin whose private address the bot may fetch from), the key is
    required when MUSIC_BACKEND chooses this backend unless `key_required` is False (a server whose key is
    optional). `files_need_key`: its own files are behind the same key, sent to that origin only.
    """

    name: str
    summary: str
    cost_unit: str
    default_cost: int
    capabilities: Capabilities
    create: Callable[[aiohttp.ClientSession, BackendConfig], MusicBackend]
    error_for_status: Callable[[int, str], MusicApiError]  # its error answers, typed (file downloads too)
    base_url_setting: str
    key_setting: str | None = None
    key_required: bool = True
    files_need_key: bool = False
    callback_url_setting: str | None = None
    keyless_credential: str = "the server's own credentials"  # what the free probe proves when there is no key
    # What the backend runs inside the bot while it runs (the sandbox's file server): given the configured
    # values, it yields those the backend and its downloads are built from. None for an outside API.
    serve: Callable[[BackendConfig], AbstractAsyncContextManager[BackendConfig]] | None = None

    @property
    def credential(self) -> str:
        """What a refused probe blames, in the operator's words: the key's variable, or what stands for one."""
        return self.key_setting.upper() if self.key_setting else self.keyless_credential
