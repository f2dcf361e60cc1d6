"""`migrate-to`: an SQLite database copied into PostgreSQL answers every read the same."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from dataclasses import replace

import pytest

from bot.conversation import Attachment, Message
from bot.errors import StoreError
from bot.storage import TurnRecord
from bot.storage.copy import copy_to_postgres
from bot.storage.postgres import PostgresStore
from bot.storage.sqlite import SQLiteStore
from tests.support import postgres

PASSWORD = "s3cret-pässword"
CAT = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
DOG = b"\xff\xd8\xff" + b"dog" * 500

PARENT, THREAD, OTHER, DM = 100, 101, 200, 300
CHANNELS = ((PARENT, None), (THREAD, PARENT), (OTHER, None), (DM, None), (999, None))


def image(data: bytes) -> Attachment:
    return Attachment(
        "pic.png", "image", "image/png", len(data), hashlib.sha256(data).hexdigest(), 85, 4, 4
    )


def turn(channel: int, n: int, *images: bytes, guild: int | None = 7, **changes) -> TurnRecord:
    record = TurnRecord(
        channel_id=channel,
        model="gpt-4o",
        question=Message(
            "user",
            f"question {n}",
            7,
            10 + n % 3,
            f"member {n % 3}",
            n % 2 == 0,
            tuple(image(data) for data in images),
        ),
        answer=Message("assistant", f"answer {n}", 3 + n),
        prompt_tokens=100 + n,
        completion_tokens=20 + n,
        question_message_id=5000 + n,
        guild_id=guild,
        blobs={hashlib.sha256(data).hexdigest(): data for data in images},
    )
    return replace(record, **changes)


@pytest.fixture
async def source(tmp_path):
    """An SQLite database with several channels, a thread, a DM, options, prompt changes,
    attachments (one image in two channels), usage reported and not, a forgotten question."""
    path = tmp_path / "chatlab.db"
    async with SQLiteStore.open(path) as store:
        for n in range(12):
            await store.add_turn(turn(PARENT, n, *([CAT] if n == 3 else [])))
        await store.add_turn(turn(THREAD, 20, DOG, CAT))
        await store.add_turn(turn(THREAD, 21, prompt_tokens=None))
        for n in range(30, 33):
            await store.add_turn(turn(OTHER, n, prompt_tokens=2**40))
        odd = Message("user", "nul \x00 and \uffff kept", 5, 11, "n\x00me")
        await store.add_turn(turn(DM, 40, guild=None, question=odd))
        await store.forget_question(PARENT, 5005)
        await store.set_system_prompt(PARENT, "be brief", by_id=1, by_name="mod", guild_id=7)
        await store.set_system_prompt(PARENT, "be kind", by_id=2, by_name="mod 2")
        await store.set_system_prompt(THREAD, "thread's own", by_id=3, by_name="mod 3")
        await store.set_system_prompt(OTHER, None, by_id=4, by_name="mod 4")
        await store.set_channel_model(PARENT, "gpt-4.1")
        await store.set_channel_effort(THREAD, "high")
        await store.set_channel_option(PARENT, "history_rounds", "4", guild_id=7)
        await store.set_channel_option(PARENT, "mode", "chat")
        await store.set_channel_option(THREAD, "temperature", "0.3")
        await store.set_channel_option(OTHER, "mode", "threads")
        await store.set_meta("tree", "abc")
    return path


async def reads(store) -> list[object]:
    """Everything the Store interface answers about the fixture's data."""
    answers: list[object] = []
    for channel, parent in CHANNELS:
        answers += [
            await store.history(channel, 100),
            await store.history(channel, 2),
            await store.turn_context(channel, parent, 3),
            await store.channel_settings(channel, parent),
            await store.prompt_changes(channel),
            await store.usage(channel),
            await store.count_rounds(channel),
            [page async for page in store.export_pages(channel, page_size=3)],
            [page async for page in store.export_pages(channel, newest_first=True)],
        ]
    answers += [
        await store.blobs([image(CAT).sha256, image(DOG).sha256, "0" * 64]),
        await store.channels_with_option("mode", ["chat", "threads"]),
        await store.get_meta("tree"),
    ]
    return answers


async def test_the_copy_answers_every_read_as_the_original(source):
    async with SQLiteStore.open(source) as original:
        expected = await reads(original)

    async with postgres.fresh_database() as url:
        report = await copy_to_postgres(source, url)
        async with PostgresStore.open(url) as copy:
            copied = await reads(copy)

    assert copied == expected
    assert report.counts == {
        "channels": 3,
        "channel_options": 4,
        "prompt_changes": 4,
        "turns": 18,
        "messages": 34,
        "blobs": 2,
        "message_blobs": 3,
        "meta": 1,
    }
    assert report.sample_size >= 4 + 2 + 3 + 1  # every channel's newest turns at least


async def test_new_turns_after_the_copy_get_new_ids(source):
    async with postgres.fresh_database() as url:
        await copy_to_postgres(source, url)
        async with PostgresStore.open(url) as copy:
            turn_id = await copy.add_turn(turn(PARENT, 50))
            await copy.set_system_prompt(PARENT, "later", by_id=1, by_name="mod")
            rounds = await copy.history(PARENT, 100)

    assert turn_id == 19
    assert [r.question.content for r in rounds][-2:] == ["question 11", "question 50"]


async def test_a_database_holding_conversations_is_refused_and_kept(source):
    async with postgres.fresh_database() as url:
        async with PostgresStore.open(url) as target:
            await target.add_turn(turn(1, 1))
        with pytest.raises(StoreError, match="already holds conversations"):
            await copy_to_postgres(source, url)
        async with PostgresStore.open(url) as target:
            assert [r.question.content for r in await target.history(1, 10)] == ["question 1"]
            assert await target.history(PARENT, 10) == []


async def test_the_password_is_never_printed(source, caplog):
    caplog.set_level(logging.DEBUG)
    async with postgres.fresh_database() as url:
        # The test server trusts local connections: the password is accepted and ignored.
        secret_url = url.replace("postgres:@", f"postgres:{PASSWORD}@")
        assert PASSWORD in secret_url
        report = await copy_to_postgres(source, secret_url)
        with pytest.raises(StoreError) as refused:
            await copy_to_postgres(source, secret_url)  # not empty any more

    assert report.counts["turns"] == 18
    assert PASSWORD not in str(refused.value)
    assert PASSWORD not in caplog.text
    assert "Copied 18 rows of turns" in caplog.text


async def test_a_missing_sqlite_file_is_refused_without_creating_it(tmp_path):
    missing = tmp_path / "nothing.db"

    with pytest.raises(StoreError, match="no SQLite database"):
        await copy_to_postgres(missing, "postgresql://u:p@127.0.0.1:1/x")

    assert not missing.exists()


async def test_a_copy_that_differs_is_reported(source, monkeypatch):
    """The check compares what both stores read: a row lost on the way is named."""
    from bot.storage import copy

    real = copy._copy_table

    async def lossy(rows, target, table):
        copied = await real(rows, target, table)
        if table.name == "prompt_changes":
            with sqlite3.connect(source) as raw:  # one more change appears after the copy
                raw.execute(
                    "INSERT INTO prompt_changes (channel_id, prompt, set_at) VALUES (1, 'x', 0)"
                )
            raw.close()
        return copied

    monkeypatch.setattr(copy, "_copy_table", lossy)
    async with postgres.fresh_database() as url:
        with pytest.raises(StoreError, match="prompt_changes has 5 rows in SQLite and 4"):
            await copy_to_postgres(source, url)
