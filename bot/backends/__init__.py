"""Music backends: every module here that defines `ADAPTER` is a provider the operator can choose with
MUSIC_BACKEND. Adding one is adding a module (and a fake for its tests); nothing else refers to them."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import aiohttp

from bot.backends.base import Capabilities, Instrumental, ModelSpec, MusicBackend, PollUpdate, Submission

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = [
    "AdapterSpec",
    "Capabilities",
    "Instrumental",
    "ModelSpec",
    "MusicBackend",
    "PollUpdate",
    "Submission",
    "adapters",
    "backend_base_url",
    "create_backend",
]


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """How to build one backend, and what an operator must know about it."""

    name: str
    summary: str
    cost_unit: str
    default_cost: int
    required_settings: tuple[str, ...]
    capabilities: Capabilities
    create: Callable[[Settings, aiohttp.ClientSession], MusicBackend]
    base_url_setting: str  # the setting naming where this backend's API (and its own files) live


@cache
def adapters() -> dict[str, AdapterSpec]:
    """Every adapter module in this package, by MUSIC_BACKEND name."""
    found: dict[str, AdapterSpec] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        spec = getattr(module, "ADAPTER", None)
        if isinstance(spec, AdapterSpec):
            found[spec.name] = spec
    return dict(sorted(found.items()))


def create_backend(settings: Settings, session: aiohttp.ClientSession) -> MusicBackend:
    return adapters()[settings.music_backend].create(settings, session)


def backend_base_url(settings: Settings) -> str:
    """The active backend's base URL: the one origin whose private address the bot may fetch from."""
    return str(getattr(settings, adapters()[settings.music_backend].base_url_setting))
