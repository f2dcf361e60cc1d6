"""/export of a conversation too long for one upload: zipped, or its newest part with a note.

simcord offers every interaction Discord's largest limit (25 MiB); here the limit is lowered so
that a conversation of a few dozen rounds stands for one of thousands on an unboosted server.
"""

from __future__ import annotations

import io
import random
import tempfile
import zipfile
from pathlib import Path

import pytest
import simcord.interactions

from bot.conversation import Message
from bot.storage.sqlite import TurnRecord
from cogs import _export as summaries

ROUNDS = 60
WORDS = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "pe", "ri", "su", "to") for b in "aeiouyxz"]


async def fill(store, channel_id: int, rounds: int = ROUNDS) -> None:
    """Rounds of varied text (about 0.9 KB each; Deflate shrinks it to about a quarter)."""
    words = random.Random(8)
    for n in range(rounds):
        answer = " ".join(words.choice(WORDS) for _ in range(200))
        await store.add_turn(
            TurnRecord(
                channel_id,
                "gpt-4o-mini",
                Message("user", f"question {n}", 3, author_id=7, author_name="Alice"),
                Message("assistant", f"answer {n}: {answer}", 300),
                prompt_tokens=10,
                completion_tokens=300,
            )
        )


@pytest.fixture
def upload_limit(monkeypatch):
    """Set the `filesize_limit` the bot sees on the interactions that follow."""

    def set_limit(limit: int) -> None:
        real = simcord.interactions.base_payload

        def base_payload(*args, **kwargs):
            record, payload = real(*args, **kwargs)
            payload["attachment_size_limit"] = limit
            return record, payload

        monkeypatch.setattr(simcord.interactions, "base_payload", base_payload)

    return set_limit


@pytest.fixture
def temp_dir(monkeypatch, tmp_path):
    """Where the bot's temporary files go, to see that none is left behind."""
    directory = tmp_path / "temp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


async def exported(world, member=None):
    result = await (member or world.alice).slash(world.channel, "export")
    (attachment,) = result.response.attachments
    return result, attachment, await attachment.read()


def unzipped(data: bytes) -> tuple[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        (name,) = archive.namelist()
        return name, archive.read(name).decode()


async def test_an_export_over_the_upload_limit_is_zipped(world, simcord_bot, upload_limit):
    await fill(simcord_bot.store, world.channel.id)
    upload_limit(50_000)  # the Markdown is about 54 KB, zipped about 15 KB

    result, attachment, data = await exported(world)

    assert result.ephemeral
    assert attachment.filename == f"chatlab-{world.channel.id}.zip"
    assert attachment.size == len(data) <= 50_000
    name, text = unzipped(data)
    assert name == f"chatlab-{world.channel.id}.md"
    assert len(text.encode()) > 50_000
    assert text.startswith(f"# chatlab conversation in channel {world.channel.id}\n\n## Alice (7)")
    assert text.count("## Alice (7) — ") == ROUNDS
    assert "question 0\n" in text and f"question {ROUNDS - 1}\n" in text
    assert result.response.content == (
        f"The whole conversation: {ROUNDS} rounds, zipped to fit Discord's upload limit of "
        "48.83 KiB here."
    )


async def test_an_export_over_the_limit_even_zipped_holds_the_newest_rounds_and_says_so(
    world, simcord_bot, upload_limit, temp_dir
):
    await fill(simcord_bot.store, world.channel.id)
    upload_limit(10_000)

    result, attachment, data = await exported(world)

    assert attachment.filename == f"chatlab-{world.channel.id}-newest.zip"
    assert len(data) <= 10_000
    _, text = unzipped(data)
    kept = text.count("## Alice (7) — ")
    note = (
        f"This export holds the newest {kept} of {ROUNDS} rounds; the whole conversation is "
        "over Discord's upload limit of 9.77 KiB here."
    )
    assert 10 <= kept < ROUNDS
    assert result.response.content == note
    assert text.startswith(f"# chatlab conversation in channel {world.channel.id}\n\n> {note}\n\n")
    assert f"question {ROUNDS - kept}\n" in text and f"question {ROUNDS - kept - 1}\n" not in text
    assert f"question {ROUNDS - 1}\n" in text
    assert list(temp_dir.iterdir()) == []  # the temporary files are gone


async def test_an_export_within_the_limit_is_the_markdown_file(world, simcord_bot, upload_limit):
    await fill(simcord_bot.store, world.channel.id, rounds=3)
    upload_limit(10_000)

    result, attachment, data = await exported(world)

    assert attachment.filename == f"chatlab-{world.channel.id}.md"
    assert data.decode().count("## assistant — ") == 3
    assert result.response.content == "The whole conversation: 3 rounds."


async def test_when_not_even_the_newest_round_fits_the_member_is_told(
    world, simcord_bot, upload_limit
):
    await fill(simcord_bot.store, world.channel.id, rounds=3)
    upload_limit(300)

    result = await world.alice.slash(world.channel, "export")

    assert result.ephemeral and result.response.attachments == []
    assert "Even the newest round" in result.response.content


async def test_export_has_a_cooldown_per_member(world, simcord_bot):
    simcord_bot.export_cooldown = 60.0
    await fill(simcord_bot.store, world.channel.id, rounds=2)

    first = await world.alice.slash(world.channel, "export")
    again = await world.alice.slash(world.channel, "export")
    other = await world.bob.slash(world.channel, "export")

    assert len(first.response.attachments) == 1
    assert again.ephemeral and again.response.attachments == []
    assert "again" in again.response.content
    assert len(other.response.attachments) == 1


async def test_no_cooldown_when_it_is_set_to_zero(world, simcord_bot):
    simcord_bot.export_cooldown = 0.0
    await fill(simcord_bot.store, world.channel.id, rounds=2)

    for _ in range(3):
        result = await world.alice.slash(world.channel, "export")
        assert len(result.response.attachments) == 1


async def test_a_conversation_far_over_the_limit_is_not_deflated_whole_to_find_out(
    world, simcord_bot, upload_limit, monkeypatch
):
    # At full scale, zipping 116 MiB only to learn it is over 10 MiB would take seconds: once
    # enough is read (8 MiB; 160 KiB here, as zlib holds back about 128 KiB of this text before
    # it writes a first block) the ratio so far decides.
    monkeypatch.setattr(summaries, "_CHUNK", 4096)
    monkeypatch.setattr(summaries, "_PROJECT_AFTER", 160 * 1024)
    reads = []
    deflate = summaries._deflate

    def spy(*args, **kwargs):
        result = deflate(*args, **kwargs)
        reads.append(result[1])
        return result

    monkeypatch.setattr(summaries, "_deflate", spy)
    await fill(simcord_bot.store, world.channel.id, rounds=600)
    upload_limit(40_000)  # the Markdown is about 540 KB, zipped about 145 KB

    result, _, data = await exported(world)

    assert reads[0] < 200_000  # not until the zip itself outgrew the limit (about 260 KB)
    assert len(data) <= 40_000
    assert "This export holds the newest" in result.response.content


async def test_the_export_lists_attachments_by_name_and_quotes_what_was_asked_about(world, store):
    from bot.conversation import Attachment, Quote, TextFile, compose

    image = Attachment("cat.png", "image", "image/png", 10, "ab" * 32, 255, 8, 8)
    notes = TextFile("notes.md", "# secret plans\n", 15)
    asked = compose("what is this?", [notes], Quote("Bob", 42, "my cat"))
    await store.add_turn(
        TurnRecord(
            world.channel.id,
            "gpt-4o",
            Message("user", asked, 30, 7, "Alice", attachments=(image, notes.attachment())),
            Message("assistant", "A cat.", 3),
            prompt_tokens=10,
            completion_tokens=3,
            blobs={image.sha256: b"\x89PNG"},
        )
    )
    with tempfile.TemporaryDirectory() as folder:
        pages = store.export_pages(world.channel.id)
        export = await summaries.build_export(pages, world.channel.id, Path(folder), 10**6)
        assert export.path is not None
        written = export.path.read_text()
    assert "> **Bob**\n> my cat\n\nwhat is this?\n\n📎 cat.png, notes.md" in written
    assert "secret plans" not in written and '"files"' not in written
