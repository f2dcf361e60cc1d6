"""Trips to the database thread: a turn's store calls take at most two, guarantees unchanged.

A trip is one call into aiosqlite's worker thread: every statement, cursor fetch, commit and
close goes through `Connection._execute`, which queues one function for the thread and awaits
its result. The tests count calls to it on the store's connection.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest

from bot.chat import ChatService, Question
from bot.conversation import Message
from bot.errors import StoreError
from bot.storage.sqlite import MIGRATIONS, TURN_CONTEXT, ChannelSettings, SQLiteStore, TurnRecord
from tests.conftest import ask_events, make_config


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
    with sqlite3.connect(db_path) as raw:
        for script in MIGRATIONS[:3]:
            raw.create_function("chatlab_legacy_framing_tokens", 2, lambda content, name: 0)
            raw.executescript(script)
        raw.execute("PRAGMA user_version = 3")
        raw.execute("INSERT INTO turns (id, channel_id, model, created_at) VALUES (7, 1, 'm', 0)")
        raw.execute(
            "INSERT INTO messages (channel_id, turn_id, role, author_id, author_name, content,"
            " tokens, created_at) VALUES (1, 7, 'user', 5, 'ann', 'old', 4, 0),"
            " (1, 7, 'assistant', NULL, NULL, 'old answer', 2, 0)"
        )
    raw.close()

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
