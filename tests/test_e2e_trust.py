"""End to end: what the music API says is not trusted about which clips belong to a job, how many there are,
where their cover is, or what its error text may do in a message."""

from __future__ import annotations

from typing import Any

from tests.fakes.hostile_files import HostileFileServer
from tests.fakes.music_api import ClipOutcome, FakeMusicApi
from tests.harness import RunningBot


def complete_clip(api: FakeMusicApi, clip_id: str, *, audio_of: str, **fields: Any) -> dict[str, Any]:
    """An AudioInfo object as the API would list it, with `audio_of`'s real mp3 behind it."""
    info: dict[str, Any] = {
        "id": clip_id,
        "status": "complete",
        "title": f"Song {clip_id}",
        "audio_url": f"{api.base_url}/audio/{audio_of}.mp3",
        "image_url": f"{api.base_url}/image/{audio_of}.png",
        "lyric": "[Verse]\nla la",
        "tags": "pop",
        "duration": 12.5,
        "model_name": "chirp-v3-5",
    }
    info.update(fields)
    return info


def clip_messages(harness: RunningBot) -> list[Any]:
    return [message for message in harness.discord.messages(harness.channel_id) if message.embeds]


async def test_a_clip_id_of_another_job_changes_nothing_and_fails_only_the_new_job(harness: RunningBot) -> None:
    first = await harness.finished(await harness.music("the original"))
    assert first.content.startswith("✅")
    before = await harness.query("SELECT id, job_id, title, lyrics, message_id FROM clips ORDER BY id")
    stolen = before[0]["id"]

    harness.api.fail_next(
        "generate",
        status=200,
        body=[complete_clip(harness.api, stolen, audio_of=stolen, title="hijacked", lyric="not yours")],
    )
    second = await harness.finished(await harness.music("the thief"))

    assert second.content.startswith("❌")
    assert "could not read" in second.content
    assert await harness.query("SELECT id, job_id, title, lyrics, message_id FROM clips ORDER BY id") == before
    jobs = await harness.query("SELECT id, status, failure_reason, charged FROM jobs ORDER BY id")
    assert jobs == [
        {"id": 1, "status": "delivered", "failure_reason": None, "charged": 1},
        {"id": 2, "status": "failed", "failure_reason": "api_bad_response", "charged": 0},
    ]
    assert len(clip_messages(harness)) == 2  # only the first job's songs were ever posted


async def test_an_answer_with_25_clips_posts_what_one_request_makes(harness: RunningBot) -> None:
    await harness.finished(await harness.music("a real one, for its audio"))
    (real, *_) = [row["id"] for row in await harness.query("SELECT id FROM clips ORDER BY position")]
    flood = [complete_clip(harness.api, f"flood-{n}", audio_of=real) for n in range(25)]
    harness.api.fail_next("generate", status=200, body=flood)

    final = await harness.finished(await harness.music("one request"))

    assert final.content.startswith("✅")
    assert len(clip_messages(harness)) == 2 + 2
    stored = await harness.query("SELECT id FROM clips WHERE job_id = 2 ORDER BY position")
    assert [row["id"] for row in stored] == ["flood-0", "flood-1"]
    assert await harness.query("SELECT count(*) AS n FROM quota_ledger WHERE job_id = 2") == [{"n": 1}]


async def test_ten_thousand_ids_are_not_polled(harness: RunningBot) -> None:
    harness.api.fail_next(
        "generate",
        status=200,
        body=[{"id": f"id-{n}", "status": "queued", "audio_url": ""} for n in range(10_000)],
    )
    final = await harness.finished(await harness.music("many ids"), timeout=30)
    assert final.content.startswith("❌")
    batches = harness.api.fetch_batches()
    assert batches, "the job's clips were polled"
    assert {id_ for batch in batches for id_ in batch} <= {"id-0", "id-1"}
    assert await harness.query("SELECT count(*) AS n FROM clips") == [{"n": 2}]


async def test_a_cover_at_a_private_address_is_left_out(harness: RunningBot) -> None:
    await harness.finished(await harness.music("a real one, for its audio"))
    (real, *_) = [row["id"] for row in await harness.query("SELECT id FROM clips ORDER BY position")]
    harness.api.fail_next(
        "generate",
        status=200,
        body=[
            complete_clip(harness.api, "metadata", audio_of=real, image_url="http://169.254.169.254/latest/x.png"),
            complete_clip(harness.api, "loopback", audio_of=real, image_url="http://127.0.0.1:9/cover.png"),
        ],
    )
    final = await harness.finished(await harness.music("covers"))
    assert final.content.startswith("✅")
    posted = clip_messages(harness)[2:]
    assert len(posted) == 2
    assert all("thumbnail" not in message.embeds[0] for message in posted)
    assert all(len(message.attachments) == 1 for message in posted)  # the songs themselves still went


async def test_the_music_services_error_text_is_quoted_not_obeyed(harness: RunningBot) -> None:
    words = "[Verify your account](https://evil.example/login) **now** @everyone <@&1>"
    harness.api.next_outcome(ClipOutcome.error(words), ClipOutcome.error(words))

    final = await harness.finished(await harness.music("bad words"))

    assert final.content.startswith("❌")
    assert "[Verify your account](" not in final.content
    assert r"\[Verify your account\](https://evil.example/login)" in final.content
    assert r"\*\*now\*\*" in final.content
    assert final.pinged() == set()


async def test_an_audio_url_at_a_private_address_or_not_audio_is_never_posted(harness: RunningBot) -> None:
    await harness.finished(await harness.music("a real one, for its audio"))
    (real, *_) = [row["id"] for row in await harness.query("SELECT id FROM clips ORDER BY position")]
    async with HostileFileServer() as intranet:
        secret = intranet.file("/internal/secrets.json", b'{"token": "hunter2"}', content_type="audio/mpeg")
        harness.api.fail_next(
            "generate",
            status=200,
            body=[
                complete_clip(harness.api, "ssrf", audio_of=real, audio_url=secret),
                complete_clip(harness.api, "fine", audio_of=real),
            ],
        )
        partly = await harness.finished(await harness.music("one bad address"))
        assert intranet.hits("/internal/secrets.json") == 0, "the bot fetched a private address"

    assert partly.content.startswith("⚠️")
    assert "1 of 2 songs delivered" in partly.content
    assert "will not fetch" in partly.content
    posted = clip_messages(harness)[2:]
    assert [len(message.attachments) for message in posted] == [1]
    assert "secrets" not in str(posted[0].embeds)

    # On the backend's own origin the address is allowed, but a JSON document is still not a song.
    json_url = f"{harness.api.base_url}/api/get_limit"  # JSON, and needs no key
    harness.api.fail_next(
        "generate",
        status=200,
        body=[
            complete_clip(harness.api, "json-1", audio_of=real, audio_url=json_url),
            complete_clip(harness.api, "json-2", audio_of=real, audio_url=json_url),
        ],
    )
    failed = await harness.finished(await harness.music("json as mp3"))
    assert failed.content.startswith("❌")
    assert "not audio" in failed.content
    assert "not counted against the server's quota" in failed.content
    assert len(clip_messages(harness)) == 3  # nothing posted for it, not even a link


async def test_a_songs_own_text_cannot_make_links_in_its_embed(harness: RunningBot) -> None:
    await harness.finished(await harness.music("a real one, for its audio"))
    (real, *_) = [row["id"] for row in await harness.query("SELECT id FROM clips ORDER BY position")]
    trap = "[Claim your prize](https://evil.example/login)"
    harness.api.fail_next(
        "generate",
        status=200,
        body=[
            complete_clip(harness.api, "trap-1", audio_of=real, tags=trap, lyric=f"[Verse]\n{trap}", model_name=trap),
            complete_clip(
                harness.api,
                "trap-2",
                audio_of="missing",  # the download fails: the song is posted as a link to this address
                audio_url=f"{harness.api.base_url}/audio/x.mp3) [{trap}](https://evil.example",
            ),
        ],
    )
    final = await harness.finished(await harness.music("traps"))
    assert final.content.startswith("✅")
    first, second = clip_messages(harness)[2:]
    embed = first.embeds[0]
    texts = [embed["description"], *(field["value"] for field in embed["fields"])]
    assert all("[Claim your prize](" not in text for text in texts)
    assert r"\[Claim your prize\](https://evil.example/login)" in embed["description"]
    assert r"\[Verse\]" in embed["description"]
    link_embed = second.embeds[0]["description"]
    assert link_embed.count("](") == 1  # only the bot's own "Listen to the mp3" link
    assert "%29" in link_embed
