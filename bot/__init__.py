"""The core of the music bot: settings, domain, music API client, storage and use cases."""
