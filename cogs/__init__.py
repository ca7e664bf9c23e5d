"""The Discord layer: slash commands, buttons and rendering; thin, no SQL and no HTTP."""
