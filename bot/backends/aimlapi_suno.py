"""`aimlapi-suno`: the AI/ML API's "[old] Music Generation" (Suno v3.5) routes, the seed's backend.

POST /generate and /generate/custom-mode (wait_audio), then GET /?ids[0]=..&ids[1]=.. in batches.
"""

from __future__ import annotations

import aiohttp

from bot.backends.aimlapi_gateway import gateway_error
from bot.backends.base import Capabilities, ModelSpec
from bot.backends.spec import AdapterSpec, BackendConfig
from bot.backends.suno_clips import ClipRoutes, SunoClipsBackend, indexed_ids

NAME = "aimlapi-suno"
# Caps from upstream-api.md §1.3 (documented by Suno resellers for v3.5; aimlapi documents none).
CAPABILITIES = Capabilities(
    models=(ModelSpec("chirp-v3-5"), ModelSpec("chirp-v3-0")),
    default_model="chirp-v3-5",
    outputs_per_request=2,
    cover_art=True,
    writes_titles=True,
)
# make_instrumental and wait_audio are required by the DTO; model only when the member chose one, since
# aimlapi never documented the field (upstream-api.md §1.1).
ROUTES = ClipRoutes(
    generate="/generate",
    custom_generate="/generate/custom-mode",
    fetch="/",
    ids_params=indexed_ids,
    error_for_status=gateway_error,
    bearer_auth=True,
    always_send_model=False,
)


def create(session: aiohttp.ClientSession, config: BackendConfig) -> SunoClipsBackend:
    return SunoClipsBackend(session, name=NAME, capabilities=CAPABILITIES, routes=ROUTES, config=config)


ADAPTER = AdapterSpec(
    name=NAME,
    summary="AI/ML API Suno v3.5 routes (POST /generate, GET /?ids[0]=); listed as no longer available upstream",
    cost_unit="AI/ML API tokens",
    default_cost=157_500,
    capabilities=CAPABILITIES,
    create=create,
    error_for_status=gateway_error,
    base_url_setting="aiml_api_base_url",
    key_setting="aiml_api_key",
)
