"""Tests of the fake aimlapi /v2/generate/audio server itself, driven with a plain aiohttp client."""
