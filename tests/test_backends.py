"""Each adapter's status and error mapping, its free probe against its fake, and the adapter registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from bot.backends import adapters
from bot.backends.aimlapi_audio import AimlAudioBackend, parse_generation
from bot.backends.aimlapi_gateway import gateway_error
from bot.backends.aimlapi_suno import AimlSunoBackend
from bot.backends.suno_api import SunoApiBackend, suno_api_error
from bot.backends.sunoapi import SunoTaskBackend, envelope_error, parse_record, unwrap
from bot.errors import (
    MusicApiAuthError,
    MusicApiBadResponseError,
    MusicApiContentPolicyError,
    MusicApiCreditsError,
    MusicApiGenerationFailedError,
    MusicApiInvalidRequestError,
    MusicApiModelGoneError,
    MusicApiRateLimitedError,
    MusicApiUnavailableError,
)
from bot.models import ClipStatus
from bot.settings import Settings
from tests.fakes.aimlapi_audio import FakeAimlAudioApi
from tests.fakes.music_api import FakeMusicApi
from tests.fakes.sunoapi import FakeSunoTaskApi


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def test_every_backend_module_is_registered() -> None:
    assert list(adapters()) == ["aimlapi-audio", "aimlapi-suno", "suno-api", "sunoapi"]
    for spec in adapters().values():
        capabilities = spec.capabilities
        assert capabilities.model(None) is not None, f"{spec.name}'s default model is not among its models"
        assert capabilities.outputs_per_request in (1, 2)
        assert spec.cost_unit


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"music_backend": "udio"}, "must be one of aimlapi-audio, aimlapi-suno, suno-api, sunoapi"),
        ({"music_backend": "sunoapi"}, "SUNOAPI_KEY is required"),
        ({"music_backend": "aimlapi-audio"}, "AIML_API_KEY is required"),
        ({"music_backend": "suno-api", "cost_per_generation": {"udio": 3}}, "unknown backends"),
    ],
)
def test_backend_settings_are_checked(values: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        Settings(_env_file=None, discord_token="t", **values)  # type: ignore[call-arg]


def test_suno_api_needs_no_key_and_costs_default_per_backend() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, discord_token="t", music_backend="suno-api", cost_per_generation={"sunoapi": 20}
    )
    assert settings.cost_of("sunoapi") == 20
    assert settings.cost_of("aimlapi-suno") == 157_500


@pytest.mark.parametrize(
    ("raw", "status", "done"),
    [
        ("queued", ClipStatus.QUEUED, False),
        ("waiting", ClipStatus.QUEUED, False),
        ("generating", ClipStatus.STREAMING, False),
        ("completed", ClipStatus.COMPLETE, True),
        ("complete", ClipStatus.COMPLETE, True),
        ("COMPLETED", ClipStatus.COMPLETE, True),
        ("error", ClipStatus.ERROR, True),
        ("brand-new-status", ClipStatus.QUEUED, False),
    ],
)
def test_aimlapi_audio_statuses(raw: str, status: ClipStatus, done: bool) -> None:
    update = parse_generation("g1", {"id": "g1", "status": raw, "audio_file": {"url": "http://x/g1.mp3"}})
    assert update.clips[0].status is status
    assert update.done is done


def test_aimlapi_audio_errors() -> None:
    policy = parse_generation("g", {"status": "error", "error": {"name": "ContentPolicyViolation", "message": "no"}})
    assert isinstance(policy.error, MusicApiContentPolicyError)
    plain = parse_generation("g", {"status": "error", "error": {"name": "GenerationError", "message": "failed"}})
    assert plain.error is None
    assert plain.clips[0].error_message == "failed"
    empty = parse_generation("g", {"status": "completed"})
    assert empty.clips[0].status is ClipStatus.ERROR


SONGS = [
    {"id": "s1", "audioUrl": "", "streamAudioUrl": "http://x/s1", "title": "A"},
    {"id": "s2", "audioUrl": "", "streamAudioUrl": "", "title": "B"},
]


@pytest.mark.parametrize(
    ("status", "done", "statuses", "error"),
    [
        ("PENDING", False, None, None),
        ("TEXT_SUCCESS", False, [ClipStatus.STREAMING, ClipStatus.QUEUED], None),
        ("FIRST_SUCCESS", False, [ClipStatus.COMPLETE, ClipStatus.QUEUED], None),
        ("SUCCESS", True, [ClipStatus.COMPLETE, ClipStatus.COMPLETE], None),
        ("CALLBACK_EXCEPTION", True, [ClipStatus.COMPLETE, ClipStatus.COMPLETE], None),
        ("CREATE_TASK_FAILED", True, None, MusicApiGenerationFailedError),
        ("GENERATE_AUDIO_FAILED", True, [ClipStatus.ERROR, ClipStatus.ERROR], MusicApiGenerationFailedError),
        ("SENSITIVE_WORD_ERROR", True, None, MusicApiContentPolicyError),
        ("SOMETHING_NEW", False, None, None),
    ],
)
def test_sunoapi_task_statuses(status: str, done: bool, statuses: list[ClipStatus] | None, error: type | None) -> None:
    songs = [dict(song) for song in SONGS]
    if status == "FIRST_SUCCESS":
        songs[0]["audioUrl"] = "http://x/s1.mp3"
    if status in ("SUCCESS", "CALLBACK_EXCEPTION"):
        for song in songs:
            song["audioUrl"] = f"http://x/{song['id']}.mp3"
    response = {"sunoData": songs} if statuses else None
    update = parse_record("t1", {"status": status, "response": response, "errorMessage": "why"})
    assert update.done is done
    assert [clip.status for clip in update.clips] == (statuses or [])
    assert (type(update.error) if update.error else None) is error


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (400, MusicApiInvalidRequestError),
        (401, MusicApiAuthError),
        (405, MusicApiRateLimitedError),
        (413, MusicApiInvalidRequestError),
        (429, MusicApiCreditsError),
        (430, MusicApiRateLimitedError),
        (455, MusicApiUnavailableError),
        (500, MusicApiUnavailableError),
    ],
)
def test_sunoapi_envelope_codes(code: int, kind: type) -> None:
    assert type(envelope_error(code, "msg")) is kind
    with pytest.raises(kind):
        unwrap({"code": code, "msg": "msg", "data": None})


def test_sunoapi_envelope_must_be_an_envelope() -> None:
    with pytest.raises(MusicApiBadResponseError):
        unwrap([1, 2])


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (402, MusicApiCreditsError),
        (401, MusicApiAuthError),
        (503, MusicApiUnavailableError),
        (400, MusicApiInvalidRequestError),
    ],
)
def test_suno_api_errors(status: int, kind: type) -> None:
    assert type(suno_api_error(status, '{"error": "x"}')) is kind


def test_gateway_recognises_a_gone_model() -> None:
    assert type(gateway_error(400, '{"message": "Model suno-ai is deprecated"}')) is MusicApiModelGoneError
    assert type(gateway_error(410, "Gone")) is MusicApiModelGoneError


async def test_probes_prove_the_key_without_spending(session: aiohttp.ClientSession) -> None:
    async with FakeMusicApi() as music, FakeAimlAudioApi() as audio, FakeSunoTaskApi() as tasks:
        suno = AimlSunoBackend(
            session, base_url=music.base_url, api_key=music.api_key, wait_audio_timeout=5, request_timeout=2
        )
        assert "accepts the key" in await suno.probe()
        gcui = SunoApiBackend(session, base_url=music.base_url, wait_audio_timeout=5, request_timeout=2)
        assert "credits left" in await gcui.probe()
        v2 = AimlAudioBackend(session, base_url=audio.base_url, api_key=audio.api_key, request_timeout=2)
        assert "accepts the key" in await v2.probe()
        reseller = SunoTaskBackend(
            session, base_url=tasks.base_url, api_key=tasks.api_key, request_timeout=2, callback_url=None
        )
        assert "credits left" in await reseller.probe()
        assert music.generate_calls() == 0
        assert audio.submit_calls() == 0
        assert tasks.generate_calls() == 0

        for backend in (
            AimlSunoBackend(session, base_url=music.base_url, api_key="bad", wait_audio_timeout=5, request_timeout=2),
            AimlAudioBackend(session, base_url=audio.base_url, api_key="bad", request_timeout=2),
            SunoTaskBackend(session, base_url=tasks.base_url, api_key="bad", request_timeout=2, callback_url=None),
        ):
            with pytest.raises(MusicApiAuthError):
                await backend.probe()
