"""Model and storage faults: the member is told, nothing is half-written, the bot carries on."""

from __future__ import annotations

import asyncio
import sqlite3

import openai
import pytest

from bot.chat import Answer, ChatService, Question
from bot.errors import StorageFull
from bot.llm import OpenAIChatModel, open_client
from bot.storage.sqlite import SQLiteStore
from cogs._render import explain
from tests.conftest import ask_events, make_config
from tests.fake_openai import (
    FakeOpenAI,
    Reply,
    context_too_long,
    rate_limited,
    server_error,
    unauthorized,
)
from tests.speakers import said

# A generous liveness guard, not a performance assertion: a fault must end the turn, not hang it.
BOUNDED = 10.0


async def ask(service: ChatService, channel: int, text: str) -> Answer:
    async with asyncio.timeout(BOUNDED):
        events = await ask_events(service, Question(channel, 1, "Ann", text))
    assert isinstance(events[-1], Answer)
    return events[-1]


FAULTS = {
    "429 with Retry-After": (rate_limited("30"), "rate-limited; try again in about 30 seconds"),
    "500": (server_error(), "The model server had an error"),
    "401": (unauthorized(), "rejected the bot's API key"),
    # With two rounds of history: the first try, then one retry per round dropped.
    "400 context length": ([context_too_long()] * 3, "too long for the model"),
    "no first byte in time": (Reply(latency=3.0), "took too long to answer"),
    "stall mid-stream": (Reply(text="abcdefgh", chunk_size=2, stall_after=2), "took too long"),
    "cut stream": (Reply(text="abcdefgh", chunk_size=2, cut_after=2), "was cut off"),
    "malformed chunk": (Reply(text="abcdefgh", chunk_size=2, malformed_after=1), "was cut off"),
    "empty answer": (Reply(text=""), "returned an empty answer"),
}


@pytest.fixture(params=["httpx", "aiohttp"])
async def quick_client(llm_server, request):
    # Client read timeout 0.5 s, whole-answer deadline 0.5 s: faults end fast. On both HTTP backends
    # (HTTP_BACKEND): every fault must be told the same.
    async with open_client(
        api_key="sk-test",
        base_url=llm_server.base_url,
        max_retries=0,
        timeout=0.5,
        http_backend=request.param,
    ) as client:
        yield client


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_model_fault_is_explained_and_changes_nothing(
    store, quick_client, llm_server, fault
):
    service = ChatService(store, OpenAIChatModel(quick_client, answer_deadline=0.5), make_config())
    replies, sentence = FAULTS[fault]
    for n in range(2):
        await ask(service, 1, f"before {n}")
    llm_server.then(*(replies if isinstance(replies, list) else [replies]))

    with pytest.raises(Exception) as caught:
        await ask(service, 1, "the faulty one")
    other_channel = asyncio.create_task(ask(service, 2, "meanwhile elsewhere"))

    assert sentence in explain(caught.value)
    assert [r.question.content for r in await service.history(1, 10)] == ["before 0", "before 1"]
    assert (await other_channel).text
    llm_server.script.clear()
    assert (await ask(service, 1, "after")).text  # the next question in that channel works


async def test_a_stalled_channel_does_not_hold_up_the_others(store, quick_client, llm_server):
    service = ChatService(store, OpenAIChatModel(quick_client, answer_deadline=0.5), make_config())
    llm_server.then(Reply(text="abcdefgh", chunk_size=2, stall_after=1))
    stalled = asyncio.create_task(ask(service, 1, "this one stalls"))
    await llm_server.wait_for_requests(1)

    others = await asyncio.gather(*(ask(service, c, f"q{c}") for c in range(2, 12)))

    assert not stalled.done()  # the others were answered while it was still waiting
    assert all(a.text for a in others)
    with pytest.raises(Exception) as caught:
        await stalled
    assert "took too long" in explain(caught.value)


async def test_a_100000_character_answer_within_the_reply_limit_is_stored_whole(
    store, chat_model, llm_server
):
    # 100,000 characters fit the cap of a 8,192-token reply (16 characters a token).
    service = ChatService(store, chat_model, make_config(max_tokens=8192, context_window=32768))
    text = ("All work and no play makes a long answer. " * 2400)[:100_000]
    llm_server.then(Reply(text=text, chunk_size=500))

    answer = await ask(service, 1, "write a lot")

    (stored,) = await service.history(1, 1)
    assert answer.text == stored.answer.content == text


async def test_a_full_disk_is_reported_corrupts_nothing_and_recovers(
    db_path, chat_model, llm_server
):
    async with SQLiteStore.open(db_path) as store:
        service = ChatService(store, chat_model, make_config())
        await ask(service, 1, "fits")
        (pages,) = await store._db.execute_fetchall("PRAGMA page_count")
        await store._db.execute(f"PRAGMA max_page_count = {pages[0]}")  # the disk is now full
        llm_server.default = Reply(text="x" * 20_000)  # needs new pages

        with pytest.raises(StorageFull) as caught:
            await ask(service, 1, "does not fit")

        assert "disk is full" in explain(caught.value)
        assert [r.question.content for r in await service.history(1, 10)] == ["fits"]
        await store._db.execute("PRAGMA max_page_count = 1073741823")  # space returns
        assert (await ask(service, 1, "fits again")).text
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        questions = [r[0] for r in raw.execute("SELECT content FROM messages WHERE role='user'")]
    assert questions == ["fits", "fits again"]


async def test_load_with_random_model_failures_loses_and_interleaves_nothing(store):
    """A small version of the soak in benchmarks/soak.py: 1,200 turns over 30 channels, 5% of
    model calls failing at random (500, 429, cut stream)."""
    async with (
        FakeOpenAI(Reply(echo=True), failure_rate=0.05, seed=7) as llm_server,
        openai.AsyncOpenAI(
            api_key="sk-test", base_url=llm_server.base_url, max_retries=0, timeout=5
        ) as client,
    ):
        service = ChatService(store, OpenAIChatModel(client, answer_deadline=5), make_config())
        answered: dict[int, list[str]] = {c: [] for c in range(30)}
        explained = 0

        async def member(channel: int) -> None:
            nonlocal explained
            for n in range(20):
                text = f"c{channel} n{n}"
                try:
                    answer = await ask(service, channel, text)
                except Exception as exc:
                    assert not explain(exc).startswith("Something went wrong"), repr(exc)
                    explained += 1
                    continue
                assert answer.text == "echo: " + said("Ann", 1, text)
                answered[channel].append(text)

        await asyncio.gather(*(member(c) for c in range(30)), *(member(c) for c in range(30)))

    assert explained == llm_server.failures > 0
    for channel, texts in answered.items():
        stored = await service.history(channel, 100)
        # Every answered turn is stored, whole, in the order it was answered, and no other.
        assert [r.question.content for r in stored] == texts
        assert all(
            r.answer.content == f"echo: {said('Ann', 1, r.question.content)}" for r in stored
        )
    assert service.busy_channels == 0
