"""The benchmark: what a generation costs the bot beyond the music itself (`uv run python -m bench`)."""
