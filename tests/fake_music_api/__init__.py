"""Tests of the fake music API server itself, driven with a plain aiohttp client."""
