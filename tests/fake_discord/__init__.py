"""Tests of the fake Discord itself, driven by a real discord.py commands.Bot."""
