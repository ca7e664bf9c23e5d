"""Tests of the fake Suno task API (sunoapi.org / kie.ai) itself, driven with a plain aiohttp client."""
