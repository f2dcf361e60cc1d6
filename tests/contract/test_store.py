"""The store's contract, on every engine (tests/contract/conftest.py), reopened to prove
persistence. What only one engine does is in tests/test_store_sqlite.py and
tests/test_store_postgres.py."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from bot.conversation import Message
from bot.errors import StoreError
from bot.storage import TurnRecord


def turn(channel: int, n: int, *, user: int = 1, usage: tuple[int, int] | None = (10, 5)):
    return TurnRecord(
        channel_id=channel,
        model="gpt-4o-mini",
        question=Message("user", f"question {n}", 7, author_id=user, author_name=f"user{user}"),
        answer=Message("assistant", f"answer {n}", 3),
        prompt_tokens=usage[0] if usage else None,
        completion_tokens=usage[1] if usage else None,
    )


async def test_usage_sums_past_the_largest_integer_a_row_can_hold(store):
    await store.add_turn(turn(1, 1, usage=(2**63 - 1, 1)))
    await store.add_turn(turn(1, 2, usage=(2**63 - 1, 1)))

    usage = await store.usage(1)

    assert usage.answers == 2 and usage.prompt_tokens >= 2**63 and usage.completion_tokens == 2


async def test_turns_survive_a_restart(open_store):
    async with open_store() as store:
        await store.add_turn(turn(1, 1))
        await store.add_turn(turn(1, 2, user=2))

    async with open_store() as reopened:
        rounds = await reopened.history(1, 10)

    assert [(r.question.content, r.answer.content) for r in rounds] == [
        ("question 1", "answer 1"),
        ("question 2", "answer 2"),
    ]
    assert rounds[1].question == Message("user", "question 2", 7, 2, "user2")


async def test_history_returns_the_newest_rounds_oldest_first(store):
    for n in range(10):
        await store.add_turn(turn(1, n))

    rounds = await store.history(1, 3)

    assert [r.question.content for r in rounds] == ["question 7", "question 8", "question 9"]


async def test_a_failed_turn_leaves_nothing_behind(store):
    bad = TurnRecord(
        channel_id=1,
        model="m",
        question=Message("user", "q", 1, 1, "a"),
        answer=Message("bogus-role", "a", 1),  # type: ignore[arg-type]  # fails the CHECK
        prompt_tokens=1,
        completion_tokens=1,
    )

    with pytest.raises(StoreError):
        await store.add_turn(bad)

    assert await store.history(1, 10) == []
    assert (await store.usage(1)).answers == 0


async def test_reset_forgets_only_this_channel_and_keeps_prompt_and_usage(store):
    await store.set_system_prompt(1, "be brief", by_id=9, by_name="mod")
    for n in range(3):
        await store.add_turn(turn(1, n))
    await store.add_turn(turn(2, 0))

    forgotten = await store.reset(1)

    assert forgotten == 3
    assert await store.history(1, 10) == []
    assert len(await store.history(2, 10)) == 1
    assert (await store.channel_settings(1)).prompt.text == "be brief"
    assert (await store.usage(1)).answers == 3


async def test_a_thread_inherits_its_parents_prompt_until_it_has_its_own(store):
    await store.set_system_prompt(100, "parent prompt", by_id=1, by_name="mod")

    inherited = (await store.channel_settings(200, parent_id=100)).prompt
    await store.set_system_prompt(200, "thread prompt", by_id=2, by_name="mod2")
    own = (await store.channel_settings(200, parent_id=100)).prompt

    assert (inherited.text, inherited.inherited) == ("parent prompt", True)
    assert (own.text, own.inherited, own.set_by_name) == ("thread prompt", False, "mod2")
    assert (await store.channel_settings(300)).prompt is None


async def test_prompt_changes_are_recorded_with_who_and_when(store):
    await store.set_system_prompt(1, "first", by_id=5, by_name="ann")
    await store.set_system_prompt(1, None, by_id=6, by_name="bob")

    changes = await store.prompt_changes(1)

    assert [(c.prompt, c.set_by_name) for c in changes] == [(None, "bob"), ("first", "ann")]
    assert changes[0].set_at >= changes[1].set_at > 0
    assert (await store.channel_settings(1)).prompt is None


async def test_usage_sums_reported_tokens_and_counts_unreported(store):
    await store.add_turn(turn(1, 1, usage=(100, 20)))
    await store.add_turn(turn(1, 2, usage=(150, 30)))
    await store.add_turn(turn(1, 3, usage=None))

    usage = await store.usage(1)

    assert (usage.answers, usage.prompt_tokens, usage.completion_tokens) == (3, 250, 50)
    assert usage.unreported == 1 and usage.total_tokens == 300


async def test_sql_looking_text_is_stored_verbatim(store):
    nasty = "'); DROP TABLE messages; -- \x00 <|endoftext|> 🦊 \u202e"
    record = turn(1, 1)
    record = TurnRecord(1, "m", Message("user", nasty, 1, 1, "x'); --"), record.answer, 1, 1)

    await store.add_turn(record)

    ((exported_q, _),) = [page async for page in store.export_pages(1)]
    assert exported_q.message.content == nasty
    assert exported_q.message.author_name == "x'); --"


async def test_channel_model_inherits_and_can_be_cleared(store):
    await store.set_channel_model(100, "gpt-4.1")
    await store.set_system_prompt(200, "thread's own", by_id=1, by_name="mod")

    inherited = await store.channel_settings(200, parent_id=100)
    await store.set_channel_model(100, None)
    cleared = await store.channel_settings(200, parent_id=100)

    assert (inherited.model, inherited.prompt.text) == ("gpt-4.1", "thread's own")
    assert cleared.model is None


async def test_meta_values_round_trip(store):
    await store.set_meta("tree", "abc")
    await store.set_meta("tree", "def")

    assert await store.get_meta("tree") == "def"
    assert await store.get_meta("missing") is None


async def test_forgetting_a_question_removes_its_round_but_keeps_its_usage(store):
    await store.add_turn(replace(turn(1, 1), question_message_id=111))
    await store.add_turn(replace(turn(1, 2), question_message_id=222))
    await store.add_turn(replace(turn(2, 3), question_message_id=111))  # same id, other channel

    forgot = await store.forget_question(1, 111)
    again = await store.forget_question(1, 111)
    unknown = await store.forget_question(1, 999)

    assert (forgot, again, unknown) == (True, False, False)
    assert [r.question.content for r in await store.history(1, 10)] == ["question 2"]
    assert [r.question.content for r in await store.history(2, 10)] == ["question 3"]
    assert (await store.usage(1)).answers == 2  # the tokens were spent all the same


# -- export in pages -----------------------------------------------------------------------


async def test_export_pages_come_in_order_in_pages_of_the_size_asked(store):
    for n in range(7):
        await store.add_turn(turn(1, n))
    await store.add_turn(turn(2, 99))

    pages = [page async for page in store.export_pages(1, page_size=4)]
    newest = [page async for page in store.export_pages(1, page_size=5, newest_first=True)]

    assert [len(p) for p in pages] == [4, 4, 4, 2]
    contents = [m.message.content for p in pages for m in p]
    assert contents == [text for n in range(7) for text in (f"question {n}", f"answer {n}")]
    assert [len(p) for p in newest] == [5, 5, 4]
    assert [m.message.content for p in newest for m in p] == contents[::-1]
    assert [page async for page in store.export_pages(3)] == []
    assert await store.count_rounds(1) == 7 and await store.count_rounds(3) == 0


async def test_export_pages_do_not_hold_the_store_between_pages(store):
    for n in range(4):
        await store.add_turn(turn(1, n))

    pages = store.export_pages(1, page_size=2)
    first = await anext(pages)
    await asyncio.wait_for(store.add_turn(turn(1, 4)), timeout=5)  # while the export is paused
    rest = [page async for page in pages]

    assert [m.message.content for m in first] == ["question 0", "answer 0"]
    assert sum(len(p) for p in rest) == 8  # the turn added meanwhile comes last


# -- usage figures a broken server may send --------------------------------------------------


@pytest.mark.parametrize(
    ("reported", "stored"),
    [
        ((2**63, 5), (None, 5)),
        ((10**30, -1), (None, None)),
        ((2**63 - 1, 0), (2**63 - 1, 0)),
        ((12.0, 1.5), (12, None)),
    ],
)
async def test_absurd_usage_figures_are_stored_as_unreported(store, reported, stored):
    record = replace(turn(1, 1), prompt_tokens=reported[0], completion_tokens=reported[1])

    await store.add_turn(record)

    usage = await store.usage(1)
    assert (usage.prompt_tokens, usage.completion_tokens) == tuple(v or 0 for v in stored)
    assert [r.question.content for r in await store.history(1, 10)] == ["question 1"]
    assert (await store.usage(1)).unreported == (None in stored)


async def test_a_channels_reasoning_effort_is_kept_and_inherited_by_its_threads(store):
    await store.set_channel_effort(100, "high")
    await store.set_channel_model(100, "o4-mini")

    parent = await store.channel_settings(100)
    thread = await store.channel_settings(101, parent_id=100)
    await store.set_channel_effort(101, "low")
    own = await store.channel_settings(101, parent_id=100)
    await store.set_channel_effort(100, None)
    cleared = await store.channel_settings(100)

    assert (parent.reasoning_effort, parent.model) == ("high", "o4-mini")
    assert (thread.reasoning_effort, thread.model) == ("high", "o4-mini")
    assert own.reasoning_effort == "low"
    assert cleared.reasoning_effort is None and cleared.model == "o4-mini"
