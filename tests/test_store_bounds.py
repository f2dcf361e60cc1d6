"""Stored token counts that are bounds (schema 5): flagged, read back as such; old rows counted."""

from __future__ import annotations

from bot.conversation import Message, byte_bound
from bot.storage.sqlite import SQLiteStore, TurnRecord
from tests.support.legacy import schema_3_database


def turn(n: int, *, bound: bool) -> TurnRecord:
    if bound:
        question = Message.bounded("user", f"question {n}", author_id=1, author_name="ann")
        answer = Message.bounded("assistant", f"answer {n}")
    else:
        question = Message("user", f"question {n}", 7, author_id=1, author_name="ann")
        answer = Message("assistant", f"answer {n}", 3)
    return TurnRecord(
        channel_id=1,
        model="gpt-4o-mini",
        question=question,
        answer=answer,
        prompt_tokens=10,
        completion_tokens=5,
        question_message_id=1000 + n,
    )


async def test_a_bound_is_stored_flagged_and_read_back_as_a_bound(store):
    await store.add_turn(turn(1, bound=False))
    await store.add_turn(turn(2, bound=True))

    _, context = await store.turn_context(1, None, 5)
    history = await store.history(1, 5)
    pages = [page async for page in store.export_pages(1)]

    for rounds in (context, history):
        assert [(r.question.bound, r.answer.bound) for r in rounds] == [
            (False, False),
            (True, True),
        ]
        assert rounds[0].question.tokens == 7 and rounds[0].answer.tokens == 3
        assert rounds[1].answer.tokens == byte_bound("answer 2")
        assert rounds[1].question == turn(2, bound=True).question
    assert [m.message.bound for m in pages[0]] == [False, False, True, True]


async def test_a_schema_3_database_migrates_and_its_counts_stay_exact(db_path):
    schema_3_database(db_path)

    async with SQLiteStore.open(db_path) as store:
        await store.add_turn(turn(2, bound=True))
        _, history = await store.turn_context(1, None, 5)

    assert [(r.question.content, r.question.tokens, r.question.bound) for r in history] == [
        ("old", 4, False),
        ("question 2", byte_bound('{"from":"ann","id":"1","message":"question 2"}'), True),
    ]
    assert [(r.answer.tokens, r.answer.bound) for r in history] == [(2, False), (8, True)]
