"""`suno-api`: a self-hosted gcui-art/suno-api server, the same clip shape as the seed under /api/...

POST /api/generate and /api/custom_generate, GET /api/get?ids=a,b; no key (the server holds the Suno cookie).
"""

from __future__ import annotations

import aiohttp

from bot.backends.base import Capabilities, ModelSpec, error_detail
from bot.backends.spec import AdapterSpec, BackendConfig
from bot.backends.suno_clips import ClipRoutes, SunoClipsBackend, comma_separated_ids
from bot.errors import (
    MusicApiAuthError,
    MusicApiCreditsError,
    MusicApiError,
    MusicApiInvalidRequestError,
    MusicApiRateLimitedError,
    MusicApiUnavailableError,
)

NAME = "suno-api"
# gcui-art forwards `model` verbatim as Suno's `mv`; these are the names known to work (providers.md §2).
CAPABILITIES = Capabilities(
    models=(ModelSpec("chirp-v3-5"), ModelSpec("chirp-v3-0"), ModelSpec("chirp-v4")),
    default_model="chirp-v3-5",
    outputs_per_request=2,
    cover_art=True,
    writes_titles=True,
)


def suno_api_error(status: int, body: str) -> MusicApiError:
    """gcui-art passes Suno's status through with `{"error": ...}`; 402 is Suno out of credits."""
    detail = f"HTTP {status}: {error_detail(body)}"
    if status == 402:
        return MusicApiCreditsError(detail, status=status)
    if status in (401, 403):
        return MusicApiAuthError(detail + " (the server's SUNO_COOKIE may have expired)", status=status)
    if status == 429:
        return MusicApiRateLimitedError(detail, status=status)
    if status in (400, 404, 413):
        return MusicApiInvalidRequestError(detail, status=status)
    return MusicApiUnavailableError(detail, status=status)


ROUTES = ClipRoutes(
    generate="/api/generate",
    custom_generate="/api/custom_generate",
    fetch="/api/get",
    ids_params=comma_separated_ids,
    error_for_status=suno_api_error,
    bearer_auth=False,
    always_send_model=True,
    credits_path="/api/get_limit",
)


def create(session: aiohttp.ClientSession, config: BackendConfig) -> SunoClipsBackend:
    return SunoClipsBackend(session, name=NAME, capabilities=CAPABILITIES, routes=ROUTES, config=config)


ADAPTER = AdapterSpec(
    name=NAME,
    summary="self-hosted gcui-art/suno-api (POST /api/generate, GET /api/get?ids=); best effort, captcha-prone",
    cost_unit="Suno credits",
    default_cost=10,
    capabilities=CAPABILITIES,
    create=create,
    error_for_status=suno_api_error,
    base_url_setting="suno_api_base_url",
    keyless_credential="the server's Suno session",
)
