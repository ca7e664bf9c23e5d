"""Callback addresses: one per job, unforgeable without the database's secret, the same in every process."""

from __future__ import annotations

from bot.callbacks import CallbackAddresses, shared_secret
from bot.storage import BotStateStore, Database


def test_a_token_names_its_job_and_no_other() -> None:
    addresses = CallbackAddresses(b"s" * 32, base_url="https://bot.example/prefix/", backend="sunoapi")
    url = addresses.url_for(42)
    assert url.startswith("https://bot.example/prefix/callbacks/sunoapi/42-")
    token = url.rsplit("/", 1)[1]
    assert addresses.job_of(token) == 42
    mac = token.split("-")[1]
    assert addresses.job_of(f"43-{mac}") is None
    assert addresses.job_of(f"42-{mac[:-1]}0" if mac[-1] != "0" else f"42-{mac[:-1]}1") is None
    assert addresses.job_of(f"042-{mac}") is None
    assert addresses.job_of("42") is None
    other_secret = CallbackAddresses(b"t" * 32, base_url="https://bot.example", backend="sunoapi")
    assert other_secret.job_of(token) is None
    other_backend = CallbackAddresses(b"s" * 32, base_url="https://bot.example", backend="acestep")
    assert other_backend.job_of(token) is None


async def test_every_process_reads_the_same_secret(database: Database) -> None:
    state = BotStateStore(database)
    first, second = await shared_secret(state), await shared_secret(state)
    assert first == second
    assert len(first) == 32
