"""Each adapter's status and error mapping, its free probe against its fake, the routes of the clip APIs, and
the adapter registry with the settings each spec owns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr, ValidationError

from bot.backends import ADAPTERS, BackendConfig, adapters, aimlapi_suno, create_backend, suno_api
from bot.backends.aimlapi_audio import AimlAudioBackend, parse_generation
from bot.backends.aimlapi_gateway import gateway_error
from bot.backends.suno_api import suno_api_error
from bot.backends.suno_clips import ClipRoutes, SunoClipsBackend, indexed_ids
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
from bot.models import ClipStatus, GenerationMode, GenerationRequest
from bot.settings import Settings
from tests.fakes.aimlapi_audio import FakeAimlAudioApi
from tests.fakes.music_api import FakeMusicApi
from tests.fakes.sunoapi import FakeSunoTaskApi


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def config(base_url: str, api_key: str = "", *, backend: str = "test") -> BackendConfig:
    return BackendConfig(backend, base_url, request_timeout=2, wait_audio_timeout=5, api_key=api_key)


def test_every_backend_is_registered() -> None:
    assert list(adapters()) == ["aimlapi-audio", "aimlapi-suno", "suno-api", "sunoapi", "acestep", "sandbox"]
    for spec in adapters().values():
        capabilities = spec.capabilities
        assert capabilities.model(None) is not None, f"{spec.name}'s default model is not among its models"
        assert capabilities.outputs_per_request in (1, 2)
        assert spec.cost_unit


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"music_backend": "udio"}, "must be one of aimlapi-audio, aimlapi-suno, suno-api, sunoapi, acestep"),
        ({"music_backend": "sunoapi"}, "SUNOAPI_KEY is required"),
        ({"music_backend": "aimlapi-audio"}, "AIML_API_KEY is required"),
        ({"music_backend": "suno-api", "cost_per_generation": {"udio": 3}}, "unknown backends"),
    ],
)
def test_backend_settings_are_checked(values: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        Settings(_env_file=None, discord_token="t", **values)  # type: ignore[call-arg]


@pytest.mark.parametrize("spec", ADAPTERS, ids=lambda spec: spec.name)
def test_each_spec_names_settings_that_exist(spec: Any) -> None:
    fields = Settings.model_fields
    assert fields[spec.base_url_setting].annotation is str
    if spec.key_setting:
        assert fields[spec.key_setting].annotation == SecretStr | None
    if spec.callback_url_setting:
        assert fields[spec.callback_url_setting].annotation == str | None


@pytest.mark.parametrize(
    ("values", "backend", "base_url", "api_key", "callback_url"),
    [
        ({"aiml_api_key": "k1", "aiml_api_base_url": "http://a/"}, "aimlapi-suno", "http://a", "k1", None),
        (
            {"aiml_api_key": "k1", "music_backend": "aimlapi-audio"},
            "aimlapi-audio",
            "https://api.aimlapi.com",
            "k1",
            None,
        ),
        ({"music_backend": "suno-api", "aiml_api_key": "k1"}, "suno-api", "http://localhost:3000", "", None),
        (
            {"music_backend": "sunoapi", "sunoapi_key": "k2", "sunoapi_callback_url": "https://me/cb"},
            "sunoapi",
            "https://api.sunoapi.org",
            "k2",
            "https://me/cb",
        ),
        ({"music_backend": "acestep"}, "acestep", "http://127.0.0.1:8001", "", None),  # its key is optional
        (
            {"music_backend": "acestep", "acestep_api_key": "k3", "acestep_base_url": "http://gpu-box:8001/"},
            "acestep",
            "http://gpu-box:8001",
            "k3",
            None,
        ),
    ],
)
def test_the_chosen_backend_is_built_from_the_settings_its_spec_names(
    values: dict[str, Any], backend: str, base_url: str, api_key: str, callback_url: str | None
) -> None:
    settings = Settings(_env_file=None, discord_token="t", http_timeout_seconds=7, **values)  # type: ignore[call-arg]
    built = settings.backend_config()
    assert (built.backend, built.base_url, built.api_key, built.callback_url) == (
        backend,
        base_url,
        api_key,
        callback_url,
    )
    assert built.request_timeout == 7
    assert built.download_min_bytes_per_second == settings.download_min_bytes_per_second


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
        suno = aimlapi_suno.create(session, config(music.base_url, music.api_key))
        assert "accepts the key" in await suno.probe()
        gcui = suno_api.create(session, config(music.base_url))
        assert "credits left" in await gcui.probe()
        v2 = AimlAudioBackend(session, config(audio.base_url, audio.api_key))
        assert "accepts the key" in await v2.probe()
        reseller = SunoTaskBackend(session, config(tasks.base_url, tasks.api_key))
        assert "credits left" in await reseller.probe()
        assert music.generate_calls() == 0
        assert audio.submit_calls() == 0
        assert tasks.generate_calls() == 0

        for backend in (
            aimlapi_suno.create(session, config(music.base_url, "bad")),
            AimlAudioBackend(session, config(audio.base_url, "bad")),
            SunoTaskBackend(session, config(tasks.base_url, "bad")),
        ):
            with pytest.raises(MusicApiAuthError):
                await backend.probe()


async def test_the_two_clip_apis_are_one_class_with_their_own_routes(session: aiohttp.ClientSession) -> None:
    request = GenerationRequest(GenerationMode.CUSTOM, "la la", tags="pop", title="Song")
    async with FakeMusicApi() as music:
        seed = create_backend(session, config(music.base_url, music.api_key, backend="aimlapi-suno"))
        gcui = create_backend(session, config(music.base_url, "never sent", backend="suno-api"))
        assert isinstance(seed, SunoClipsBackend)
        assert isinstance(gcui, SunoClipsBackend)
        assert (seed.name, gcui.name) == ("aimlapi-suno", "suno-api")
        assert gcui.capabilities.model("chirp-v4") is not None
        assert seed.capabilities.model("chirp-v4") is None

        seed_clips = await seed.submit(request, wait_audio=False)
        gcui_clips = await gcui.submit(request, wait_audio=False)
        await seed.poll(seed_clips.poll_keys)
        await gcui.poll(gcui_clips.poll_keys)

    routes = {request.route: request for request in music.requests}
    assert routes["custom"].json["tags"] == "pop"
    assert "model" not in routes["custom"].json  # the seed's routes never documented it
    assert routes["custom"].headers["Authorization"] == f"Bearer {music.api_key}"
    assert routes["gcui_custom"].json["model"] == "chirp-v3-5"
    assert "Authorization" not in routes["gcui_custom"].headers
    assert music.gcui_get_batches() == [list(gcui_clips.poll_keys)]


async def test_a_route_without_wait_audio_is_asked_without_it(session: aiohttp.ClientSession) -> None:
    routes = ClipRoutes(
        generate="/generate",
        custom_generate="/generate/custom-mode",
        fetch="/",
        ids_params=indexed_ids,
        error_for_status=gateway_error,
        bearer_auth=True,
        always_send_model=False,
        wait_audio=False,
    )
    async with FakeMusicApi() as music:
        backend = SunoClipsBackend(
            session,
            name="no-wait",
            capabilities=aimlapi_suno.CAPABILITIES,
            routes=routes,
            config=config(music.base_url, music.api_key),
        )
        with pytest.raises(MusicApiInvalidRequestError):  # the seed's DTO requires the field
            await backend.submit(GenerationRequest(GenerationMode.DESCRIPTION, "x"), wait_audio=True)
    assert "wait_audio" not in music.requests[-1].json
