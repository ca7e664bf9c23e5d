"""The real bot as its own process (`python -m bot`), pointed at the fakes, so tests can SIGKILL and SIGTERM it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from tests.fakes.discord_server import FakeDiscord
from tests.fakes.music_api import FakeMusicApi

ROOT = Path(__file__).resolve().parent.parent
SITECUSTOMIZE = "from tests.fakes.discord_redirect import install_from_env\ninstall_from_env()\n"


class BotProcess:
    """Starts the bot exactly as an operator would, with settings in the environment."""

    def __init__(self, discord: FakeDiscord, api: FakeMusicApi, database: Path, workdir: Path, **settings: Any) -> None:
        self._discord = discord
        self._api = api
        self._database = database
        self._workdir = workdir
        self._settings = settings
        self.process: asyncio.subprocess.Process | None = None
        self.log_path = workdir / "bot.log"

    def environment(self) -> dict[str, str]:
        shim = self._workdir / "shim"
        shim.mkdir(parents=True, exist_ok=True)
        (shim / "sitecustomize.py").write_text(SITECUSTOMIZE)
        values: dict[str, Any] = {
            "DISCORD_TOKEN": self._discord.bot_token,
            "AIML_API_KEY": self._api.api_key,
            "AIML_API_BASE_URL": self._api.base_url,
            "DATABASE_URL": f"sqlite:///{self._database}",
            "POLL_INTERVAL_SECONDS": 0.05,
            "PROGRESS_EDIT_INTERVAL_SECONDS": 0,
            "GENERATION_DEADLINE_SECONDS": 20,
            "WAIT_AUDIO_TIMEOUT_SECONDS": 10,
            "HTTP_TIMEOUT_SECONDS": 2,
            "RETRY_BASE_DELAY_SECONDS": 0.01,
            # A killed process's jobs are taken over once their lease runs out: short, so the tests are too.
            "JOB_LEASE_SECONDS": 2,
            "LOG_LEVEL": "DEBUG",
        }
        values.update({key.upper(): value for key, value in self._settings.items()})
        env = {key: value for key, value in os.environ.items() if not key.startswith(("DISCORD_", "AIML_"))}
        env.update({key: str(value) for key, value in values.items()})
        env.update(self._discord.env())
        env["PYTHONPATH"] = os.pathsep.join([str(shim), str(ROOT)])
        return env

    async def start(self, *arguments: str) -> None:
        environment = self.environment()  # creates the work folder
        log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", *arguments, cwd=self._workdir, env=environment, stdout=log, stderr=log
        )
        log.close()

    async def start_and_wait_ready(self, timeout: float = 30) -> None:
        await self.start()
        await self._discord.wait_until_ready(timeout=timeout)

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when a host dies."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def terminate(self, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), timeout)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def stop_if_running(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
