"""Fixtures for the fake Discord tests: a fake Discord with one guild, one text channel and one member."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fake_discord.support import World
from tests.fakes.discord_server import FakeDiscord


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with FakeDiscord() as fake:
        guild_id = fake.add_guild()
        channel_id = fake.add_channel(guild_id)
        user_id = fake.add_member(guild_id, name="alice")
        with fake.patch_discord_py():
            yield World(fake, guild_id, channel_id, user_id)
        assert fake.internal_errors == []
        assert fake.unhandled_routes == []
