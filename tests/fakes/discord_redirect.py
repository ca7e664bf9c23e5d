"""Point an unmodified discord.py at a FakeDiscord from environment variables (for bot subprocesses)."""

from __future__ import annotations

import os

API_BASE_VARIABLE = "FAKE_DISCORD_API_BASE"
GATEWAY_VARIABLE = "FAKE_DISCORD_GATEWAY"


def install_from_env() -> bool:
    """Patch discord.http.Route.BASE and DiscordWebSocket.DEFAULT_GATEWAY if the variables are set.

    Returns whether anything was patched. Call it from a sitecustomize (or before the bot starts).
    """
    api_base = os.environ.get(API_BASE_VARIABLE)
    gateway = os.environ.get(GATEWAY_VARIABLE)
    if not api_base and not gateway:
        return False
    import discord.gateway
    import discord.http
    import yarl

    if api_base:
        discord.http.Route.BASE = api_base.rstrip("/")
    if gateway:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    return True
