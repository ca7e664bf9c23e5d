"""Provider callbacks: a per-job address on the bot's HTTP server that a provider pushes its progress to.

A callback only wakes the job's polling: whatever its body says, the bot re-reads the task from the API before
acting, so a forged, repeated or late callback changes nothing but when the next poll comes. The address carries
the job id and an HMAC of it under a secret kept in the database (shared by every process, kept across
restarts), so nobody can wake jobs they were not given the address of.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from bot.storage import BotStateStore

SECRET_KEY = "callback_secret"
_TOKEN = re.compile(r"(?P<job>[1-9][0-9]{0,18})-(?P<mac>[0-9a-f]{32})")


class CallbackAddresses:
    """`{base_url}/callbacks/{backend}/{job id}-{mac}` for each job, and the job a token names (or None)."""

    def __init__(self, secret: bytes, *, base_url: str, backend: str) -> None:
        self._secret = secret
        self._prefix = f"{base_url.rstrip('/')}/callbacks/{backend}/"
        self.backend = backend

    def _mac(self, job_id: int) -> str:
        return hmac.new(self._secret, f"{self.backend}:{job_id}".encode(), hashlib.sha256).hexdigest()[:32]

    def url_for(self, job_id: int) -> str:
        return f"{self._prefix}{job_id}-{self._mac(job_id)}"

    def job_of(self, token: str) -> int | None:
        found = _TOKEN.fullmatch(token)
        if found is None:
            return None
        job_id = int(found["job"])
        return job_id if hmac.compare_digest(found["mac"], self._mac(job_id)) else None


async def shared_secret(state: BotStateStore) -> bytes:
    """The database's callback secret, made by whichever process asks first."""
    existing = await state.get(SECRET_KEY)
    if existing is None:
        await state.set_if_absent(SECRET_KEY, secrets.token_hex(32))
        existing = await state.get(SECRET_KEY)
    assert existing is not None
    return bytes.fromhex(existing)
