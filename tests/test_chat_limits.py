"""Bounded work in ChatService: queue caps, /stop, /reset dropping the queue, the answer cap,
deleted questions, NUL characters — against the loopback model server and a real SQLite file."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest

from bot.chat import Answer, ChatService, Delta, Question, StopOutcome
from bot.errors import Dropped, QueueFull, Reason, Stopped
from bot.llm import OpenAIChatModel
from bot.storage.sqlite import SQLiteStore
from tests.conftest import ask_events, make_config
from tests.fake_openai import Reply


def question(text: str = "hi", *, author: int = 1, channel: int = 1, message: int | None = None):
    return Question(channel, author, f"member{author}", text, message_id=message)


class Asking:
    """A question being asked in the background; `events` fills as the service yields."""

    def __init__(self, service: ChatService, asked: Question) -> None:
        self.events: list[object] = []
        self.first_delta = asyncio.Event()
        self.task = asyncio.create_task(self._run(service, asked))

    async def _run(self, service: ChatService, asked: Question) -> list[object]:
        async with aclosing(service.ask(asked)) as events:
            async for event in events:
                self.events.append(event)
                if isinstance(event, Delta):
                    self.first_delta.set()
        return self.events

    async def outcome(self) -> object:
        """What the question ended with: its Answer, or the exception it raised."""
        try:
            return (await self.task)[-1]
        except Exception as exc:
            return exc


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
def limited(store: SQLiteStore, chat_model: OpenAIChatModel) -> ChatService:
    return ChatService(
        store, chat_model, make_config(max_waiting_per_channel=2, max_waiting_per_member=2)
    )


async def test_a_member_cannot_queue_more_than_their_share(limited, llm_server):
    llm_server.gate.clear()  # the first answer is held: everything else waits
    first = Asking(limited, question("one", author=1))
    second = Asking(limited, question("two", author=1))
    await settle()

    with pytest.raises(QueueFull) as refused:
        await ask_events(limited, question("three", author=1))

    assert refused.value.per_member and refused.value.limit == 2
    assert limited.queue_refusal(1, 2) is None  # other members still may
    llm_server.gate.set()
    assert isinstance(await first.outcome(), Answer)
    assert isinstance(await second.outcome(), Answer)
    assert len(llm_server.requests) == 2


async def test_a_channel_holds_a_bounded_number_of_waiting_questions(limited, llm_server):
    llm_server.gate.clear()
    asking = [Asking(limited, question(f"q{n}", author=n)) for n in range(3)]  # 1 + 2 waiting
    await settle()

    with pytest.raises(QueueFull) as refused:
        await ask_events(limited, question("one too many", author=9))

    assert not refused.value.per_member and refused.value.limit == 2
    assert limited.queue_refusal(2, 9) is None  # another channel is not affected
    llm_server.gate.set()
    assert all(isinstance(outcome, Answer) for outcome in [await a.outcome() for a in asking])


async def test_stop_while_the_model_is_waited_on_ends_the_answer_at_once(
    service, llm_server, store
):
    llm_server.default = Reply(text="first words, then nothing", chunk_size=6, stall_after=1)
    asking = Asking(service, question("tell me", author=7))
    await asking.first_delta.wait()
    await settle()  # back to waiting on the stalled stream

    assert service.stop(1, by_id=8, moderator=False) is StopOutcome.NOT_YOURS
    assert service.stop(1, by_id=7, moderator=False) is StopOutcome.STOPPED
    outcome = await asyncio.wait_for(asking.outcome(), 5)

    assert isinstance(outcome, Stopped)
    assert (outcome.reason, outcome.by_id) == (Reason.STOP, 7)
    assert await store.history(1, 10) == []  # nothing of it is kept
    assert service.busy_channels == 0
    assert service.stop(1, by_id=7, moderator=True) is StopOutcome.NOTHING


async def test_a_moderator_can_stop_anyones_answer_between_two_pieces(service, llm_server, store):
    llm_server.default = Reply(text="a slow and steady answer", chunk_size=4)
    stopped: list[StopOutcome] = []

    async with aclosing(service.ask(question("go", author=7))) as events:
        with pytest.raises(Stopped) as raised:
            async for event in events:
                if isinstance(event, Delta) and not stopped:
                    stopped.append(service.stop(1, by_id=99, moderator=True))

    assert stopped == [StopOutcome.STOPPED]
    assert raised.value.by_id == 99
    assert await store.history(1, 10) == []
    # The channel answers the next question normally.
    assert isinstance((await ask_events(service, question("again")))[-1], Answer)


async def test_reset_does_not_wait_drops_waiting_questions_and_stops_the_answer(
    limited, llm_server, store
):
    await ask_events(limited, question("remember me"))
    llm_server.gate.clear()  # the next answer is held
    active = Asking(limited, question("being answered", author=1))
    waiting = [Asking(limited, question(f"waiting {n}", author=n + 2)) for n in range(2)]
    await llm_server.wait_for_requests(2)
    await settle()

    outcome = await asyncio.wait_for(limited.reset(1), 1)

    assert (outcome.rounds, outcome.dropped, outcome.stopped) == (1, 2, True)
    assert isinstance(await active.outcome(), Stopped)
    for asking in waiting:
        result = await asking.outcome()
        assert isinstance(result, Dropped) and result.reason is Reason.RESET
    assert len(llm_server.requests) == 2  # the dropped questions never reached the model
    assert await store.history(1, 10) == []
    llm_server.gate.set()


async def test_an_answer_from_a_server_that_ignores_max_tokens_is_cut_and_stored_cut(
    store, chat_model, llm_server
):
    service = ChatService(store, chat_model, make_config(max_tokens=64))
    cap = service.config.answer_cap
    llm_server.default = Reply(text="y" * (cap * 50), chunk_size=1000)

    events = await ask_events(service, question("count to a million"))

    answer = events[-1]
    assert isinstance(answer, Answer) and answer.cut and not answer.truncated
    assert len(answer.text) == cap == 64 * 16
    assert "".join(e.text for e in events if isinstance(e, Delta)) == answer.text
    (stored,) = await store.history(1, 10)
    assert stored.answer.content == answer.text


async def test_nul_characters_are_neither_sent_nor_stored(service, llm_server, store):
    await ask_events(service, question("a\x00b\x00"))

    sent = llm_server.requests[0]["messages"][-1]["content"]
    assert "\x00" not in sent and "\\u0000" not in sent and "ab" in sent
    (stored,) = await store.history(1, 10)
    assert stored.question.content == "ab"


async def test_deleting_a_question_forgets_its_turn_or_stops_its_answer(service, llm_server, store):
    await ask_events(service, question("keep", message=100))
    await ask_events(service, question("forget", message=101))

    assert await service.forget_question(1, 101)
    assert [r.question.content for r in await store.history(1, 10)] == ["keep"]
    assert not await service.forget_question(1, 555)

    llm_server.gate.clear()
    active = Asking(service, question("in flight", message=102))
    waiting = Asking(service, question("queued", author=2, message=103))
    await llm_server.wait_for_requests(3)
    await settle()
    assert await service.forget_question(1, 103)
    assert await service.forget_question(1, 102)
    llm_server.gate.set()

    stopped, dropped = await active.outcome(), await waiting.outcome()
    assert isinstance(stopped, Stopped) and stopped.reason is Reason.DELETED
    assert isinstance(dropped, Dropped) and dropped.reason is Reason.DELETED
    assert [r.question.content for r in await store.history(1, 10)] == ["keep"]


async def test_an_answer_already_stored_cannot_be_stopped_and_a_deletion_still_forgets_it(
    service, store, llm_server
):
    async with aclosing(service.ask(question("forget me", author=7, message=300))) as events:
        async for event in events:
            if isinstance(event, Answer):  # stored; the edge is still showing it
                assert service.stop(1, by_id=7, moderator=True) is StopOutcome.NOTHING
                assert await service.forget_question(1, 300)

    assert await store.history(1, 10) == []


async def test_a_reset_while_an_answer_is_shown_forgets_it_and_stops_nothing(service, store):
    async with aclosing(service.ask(question("being shown", author=7))) as events:
        async for event in events:
            if isinstance(event, Answer):
                outcome = await service.reset(1)

    assert (outcome.rounds, outcome.dropped, outcome.stopped) == (1, 0, False)
    assert await store.history(1, 10) == []


async def test_back_to_the_default_model_in_a_thread_reports_the_parents(service):
    await service.set_channel_model(100, "gpt-4.1")

    in_force = await service.set_channel_model(101, None, parent_id=100)

    assert in_force == "gpt-4.1" == await service.channel_model(101, parent_id=100)
