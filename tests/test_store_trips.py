"""Trips to the database thread: a turn's store calls take at most two, guarantees unchanged.

A trip is one call into aiosqlite's worker thread: every statement, cursor fetch, commit and
close goes through `Connection._execute`, which queues one function for the thread and awaits
its result. The tests count calls to it on the store's connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from dataclasses import replace

import pytest

from bot.chat import ChatService, Question
from bot.conversation import Attachment, Message
from bot.errors import StoreError
from bot.storage.records import SystemPrompt, Usage
from bot.storage.sqlite import MIGRATIONS, TURN_CONTEXT, ChannelSettings, SQLiteStore, TurnRecord
from tests.conftest import ask_events, make_config
from tests.support.legacy import schema_3_database


def turn(channel: int, n: int, *, user: int = 1) -> TurnRecord:
    return TurnRecord(
        channel_id=channel,
        model="gpt-4o-mini",
        question=Message("user", f"question {n}", 7, author_id=user, author_name=f"user{user}"),
        answer=Message("assistant", f"answer {n}", 3),
        prompt_tokens=10,
        completion_tokens=5,
        question_message_id=1000 + n,
    )


@pytest.fixture
def trips(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions the store sends to its database thread, in order."""
    sent: list[str] = []
    connection = store._db
    real = connection._execute

    async def counted(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(connection, "_execute", counted)
    return sent


async def test_a_whole_turns_store_calls_take_at_most_two_trips(store, trips):
    await store.set_system_prompt(5, "be brief", by_id=9, by_name="mod")
    for n in range(3):
        await store.add_turn(turn(1, n))
    trips.clear()

    settings, history = await store.turn_context(1, 5, max_rounds=5)
    await store.add_turn(turn(1, 3))

    assert len(trips) <= 2, trips
    assert settings.prompt is not None and settings.prompt.inherited
    assert [r.question.content for r in history] == ["question 0", "question 1", "question 2"]


async def test_writing_a_turn_is_one_trip(store, trips):
    await store.add_turn(turn(1, 1))

    assert len(trips) == 1, trips


async def test_turn_context_is_what_channel_settings_and_history_say(store):
    await store.set_system_prompt(5, "parent prompt", by_id=9, by_name="mod")
    await store.set_channel_model(5, "gpt-4")
    await store.set_channel_effort(1, "low")
    for n in range(7):
        await store.add_turn(turn(1, n, user=n % 2 + 1))
    await store.add_turn(turn(2, 99))  # another channel's rows stay out

    for channel, parent in ((1, 5), (1, None), (5, None), (2, 1), (3, None)):
        for rounds in (0, 1, 3, 10):
            context = await store.turn_context(channel, parent, rounds)

            expected = (
                await store.channel_settings(channel, parent),
                await store.history(channel, rounds),
            )
            assert context == expected, (channel, parent, rounds)
    settings, _ = await store.turn_context(1, 5, 1)
    assert settings == ChannelSettings(
        settings.prompt, "gpt-4", "low", inherited=frozenset({"model"})
    )


async def test_turn_context_leaves_out_a_turn_cut_by_its_limit(store):
    for n in range(3):
        await store.add_turn(turn(1, n))
    # A question whose answer row was lost (forgotten by hand): its round is not whole.
    async with store._db.execute(
        "DELETE FROM messages WHERE role = 'assistant' AND content = 'answer 2'"
    ):
        pass

    _, history = await store.turn_context(1, None, 2)

    assert [r.question.content for r in history] == ["question 1"]
    assert history == await store.history(1, 2)


async def test_turn_context_reads_only_the_channels_newest_rows(store):
    parameters = {"channel": 1, "parent": 5, "rounds": 10}
    async with store._db.execute(f"EXPLAIN QUERY PLAN {TURN_CONTEXT}", parameters) as cursor:
        plan = [row[-1] for row in await cursor.fetchall()]

    assert any("messages USING INDEX messages_by_channel" in step for step in plan), plan
    assert any("channels USING INTEGER PRIMARY KEY" in step for step in plan), plan
    options = [step for step in plan if "channel_options" in step]
    assert len(options) == 3 and all("USING PRIMARY KEY (channel_id=?" in s for s in options)
    assert not any("TEMP B-TREE" in step or step.startswith("SCAN messages") for step in plan)


async def test_a_turn_written_in_one_statement_is_stored_as_before(store):
    record = replace(turn(1, 1, user=42), question_message_id=555)

    turn_id = await store.add_turn(record)

    async with store._db.execute(
        "SELECT id, channel_id, user_id, model, prompt_tokens, completion_tokens,"
        " question_message_id FROM turns"
    ) as cursor:
        turns = await cursor.fetchall()
    async with store._db.execute(
        "SELECT channel_id, turn_id, role, author_id, author_name, content, tokens FROM messages"
        " ORDER BY id"
    ) as cursor:
        messages = await cursor.fetchall()
    assert [tuple(t) for t in turns] == [(turn_id, 1, 42, "gpt-4o-mini", 10, 5, 555)]
    assert [tuple(m) for m in messages] == [
        (1, turn_id, "user", 42, "user42", "question 1", 7),
        (1, turn_id, "assistant", None, None, "answer 1", 3),
    ]
    assert await store.add_turn(turn(2, 2)) == turn_id + 1
    assert await store.forget_question(1, 555)


async def test_a_turn_failing_at_its_last_row_leaves_nothing_and_the_next_turn_works(store):
    await store.add_turn(turn(1, 1))
    bad = replace(turn(1, 2), answer=Message("bogus-role", "a", 1))  # type: ignore[arg-type]

    with pytest.raises(StoreError):
        await store.add_turn(bad)
    await store.add_turn(turn(1, 3))

    assert [r.question.content for r in await store.history(1, 10)] == ["question 1", "question 3"]
    assert (await store.usage(1)).answers == 2
    assert not store._db.in_transaction


async def test_a_schema_3_database_migrates_and_keeps_its_turns(db_path):
    schema_3_database(db_path)

    async with SQLiteStore.open(db_path) as store:
        new_id = await store.add_turn(turn(1, 8))
        _, history = await store.turn_context(1, None, 5)

    assert new_id == 8
    assert [(r.question.content, r.answer.content) for r in history] == [
        ("old", "old answer"),
        ("question 8", "answer 8"),
    ]


async def test_a_whole_turn_through_the_service_takes_two_trips(
    store, trips, chat_model, llm_server
):

    service = ChatService(store, chat_model, make_config())
    await ask_events(service, Question(1, 7, "Ann", "warm up"))
    trips.clear()

    await ask_events(service, Question(1, 7, "Ann", "a question"))

    assert len(trips) == 2, trips  # one read (settings + window), one write (the whole turn)


# -- schema 5: options, attachments, guild ids ----------------------------------------------

RED = b"\x89PNG\r\n\x1a\n" + b"red" * 1000


def with_image(record: TurnRecord, data: bytes = RED, name: str = "cat.png") -> TurnRecord:
    digest = hashlib.sha256(data).hexdigest()
    picture = Attachment(name, "image", "image/png", len(data), digest, 85, 64, 64)
    question = replace(record.question, attachments=(*record.question.attachments, picture))
    return replace(record, question=question, blobs={**record.blobs, digest: data})


async def rows(store: SQLiteStore, sql: str) -> list[tuple[object, ...]]:
    async with store._db.execute(sql) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]


async def test_a_turn_with_images_is_still_one_trip_and_a_whole_turn_two(store, trips):
    await store.set_channel_option(5, "history_rounds", "2")
    await store.add_turn(turn(1, 0))
    trips.clear()

    settings, history = await store.turn_context(1, 5, max_rounds=10)
    await store.add_turn(with_image(with_image(turn(1, 1)), b"another image", "dog.png"))

    assert len(trips) == 2, trips
    assert settings.options == {"history_rounds": "2"} and len(history) == 1
    assert await rows(store, "SELECT count(*) FROM blobs") == [(2,)]


async def test_an_image_sent_twice_is_stored_once_and_linked_to_each_question(store):
    await store.add_turn(with_image(turn(1, 1)))
    await store.add_turn(with_image(turn(2, 2)))
    await store.add_turn(with_image(turn(1, 3), name="same bytes, new name.png"))

    assert await rows(store, "SELECT sha256, size, length(data) FROM blobs") == [
        (hashlib.sha256(RED).hexdigest(), len(RED), len(RED))
    ]
    assert await rows(
        store,
        "SELECT m.content FROM message_blobs AS b JOIN messages AS m ON m.id = b.message_id"
        " ORDER BY m.id",
    ) == [("question 1",), ("question 2",), ("question 3",)]


async def test_a_failure_injected_mid_write_of_a_turn_with_images_leaves_nothing(store):
    await store.add_turn(turn(1, 0))
    before = [await rows(store, f"SELECT * FROM {t}") for t in ("turns", "messages", "blobs")]
    # After the turn, its messages and the image's bytes are written, linking fails.
    await store._db.execute(
        "CREATE TEMP TRIGGER fail_link BEFORE INSERT ON message_blobs"
        " BEGIN SELECT RAISE(ABORT, 'injected'); END"
    )

    with pytest.raises(StoreError, match="injected"):
        await store.add_turn(with_image(turn(1, 1)))

    after = [await rows(store, f"SELECT * FROM {t}") for t in ("turns", "messages", "blobs")]
    assert after == before
    assert not store._db.in_transaction
    await store._db.execute("DROP TRIGGER temp.fail_link")
    await store.add_turn(with_image(turn(1, 2)))
    assert len(await store.history(1, 5)) == 2


async def test_a_blobs_bytes_go_when_the_last_message_referring_to_them_goes(store):
    await store.add_turn(with_image(turn(1, 1)))
    await store.add_turn(with_image(turn(2, 2)))

    await store.reset(1)
    assert await rows(store, "SELECT count(*) FROM blobs") == [(1,)]
    await store.reset(2)

    assert await rows(store, "SELECT count(*) FROM blobs") == [(0,)]
    assert await rows(store, "SELECT count(*) FROM message_blobs") == [(0,)]


async def test_guild_ids_are_kept_with_turns_channels_and_options(store):
    await store.add_turn(replace(turn(1, 1), guild_id=77))
    await store.add_turn(turn(2, 2))  # a DM
    await store.set_channel_option(1, "mode", "chat", guild_id=77)
    await store.set_channel_model(1, "gpt-4o")  # no guild given: the one kept stays
    await store.set_system_prompt(3, "hi", by_id=1, by_name="mod", guild_id=78)
    await store.set_channel_effort(4, "low", guild_id=79)

    assert await rows(store, "SELECT channel_id, guild_id FROM turns ORDER BY id") == [
        (1, 77),
        (2, None),
    ]
    assert await rows(store, "SELECT channel_id, guild_id FROM channels ORDER BY 1") == [
        (1, 77),
        (3, 78),
        (4, 79),
    ]
    assert await rows(store, "SELECT channel_id, guild_id FROM channel_options") == [(1, 77)]


async def test_the_rounds_a_turn_reads_follow_the_option_inside_the_one_query(store, trips):
    for n in range(5):
        await store.add_turn(turn(101, n))
    await store.set_channel_option(100, "history_rounds", "2")
    trips.clear()

    _, history = await store.turn_context(101, 100, max_rounds=10)

    assert len(trips) == 1, trips
    assert [r.question.content for r in history] == ["question 3", "question 4"]


async def test_a_schema_4_database_migrates_to_5_and_reads_back_the_same(db_path):
    with sqlite3.connect(db_path) as raw:
        raw.create_function("chatlab_legacy_framing_tokens", 2, lambda content, name: 0)
        for script in MIGRATIONS[:4]:
            raw.executescript(script)
        raw.execute("PRAGMA user_version = 4")
        raw.execute(
            "INSERT INTO channels (channel_id, system_prompt, prompt_set_by_id,"
            " prompt_set_by_name, prompt_set_at, model, reasoning_effort)"
            " VALUES (100, 'be brief', 9, 'mod', 5.0, 'gpt-4o', 'high'),"
            " (101, NULL, NULL, NULL, NULL, NULL, 'low')"
        )
        raw.execute(
            "INSERT INTO turn_writes (channel_id, user_id, model, prompt_tokens,"
            " completion_tokens, created_at, question_message_id, question_role,"
            " question_author_name, question_content, question_tokens, question_tokens_bound,"
            " answer_role, answer_author_id, answer_author_name, answer_content, answer_tokens,"
            " answer_tokens_bound) VALUES (101, 5, 'gpt-4o', 11, 6, 7.0, 900, 'user', 'ann',"
            " 'old question', 4, 1, 'assistant', NULL, NULL, 'old answer', 2, 0)"
        )
    raw.close()

    async with SQLiteStore.open(db_path) as store:
        settings, history = await store.turn_context(101, 100, 5)
        (page,) = [page async for page in store.export_pages(101)]
        usage = await store.usage(101)
        await store.set_channel_option(101, "temperature", "0.3", guild_id=7)
        await store.add_turn(with_image(turn(101, 1)))
        _, after = await store.turn_context(101, 100, 5)
        await store.set_channel_model(101, "gpt-4o-mini")
        thread = await store.channel_settings(101, 100)
        assert await store.forget_question(101, 900)

    assert settings == ChannelSettings(
        SystemPrompt("be brief", 9, "mod", 5.0, inherited=True),
        "gpt-4o",
        "low",
        inherited=frozenset({"model"}),
    )
    old = (
        Message("user", "old question", 4, 5, "ann", bound=True),
        Message("assistant", "old answer", 2),
    )
    assert [(r.question, r.answer) for r in history] == [old]
    assert [(m.message, m.created_at) for m in page] == [(old[0], 7.0), (old[1], 7.0)]
    assert usage == Usage(1, 11, 6, 0)
    assert [r.question.attachments for r in after] == [
        (),
        with_image(turn(101, 1)).question.attachments,
    ]
    assert (thread.model, thread.reasoning_effort, thread.options) == (
        "gpt-4o-mini",
        "low",
        {"temperature": "0.3"},
    )


async def test_reads_of_channels_answered_at_once_are_queued_together_not_in_turn(tmp_path):
    # The connection's thread runs statements one at a time anyway: a read need not wait for
    # another coroutine's read to come back before it is sent (only for an open transaction).
    async with SQLiteStore.open(tmp_path / "pipelined.db") as store:
        events: list[str] = []
        real = store._db._execute

        async def traced(fn, *args, **kwargs):
            events.append("sent")
            try:
                return await real(fn, *args, **kwargs)
            finally:
                events.append("back")

        store._db._execute = traced  # type: ignore[method-assign]
        await asyncio.gather(*(store.turn_context(channel, None, 5) for channel in (1, 2, 3)))

    assert events[:3] == ["sent", "sent", "sent"]
