"""The adapter's own SSE reading and deadline, against a server that writes exact bytes.

The adapter reads the body as bytes (the SDK's documented `iter_bytes()`) and splits events
itself; each `write` below is one HTTP chunk, so one read or more on the client's side.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import openai
import pytest
from aiohttp import web

from bot.errors import Interrupted, ModelTimedOut
from bot.llm import Finished, OpenAIChatModel, Reasoning, StreamEvent, open_client

MESSAGES = [{"role": "user", "content": "hi"}]


def event(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> dict[str, Any]:
    choices = [{"index": 0, "delta": delta, "finish_reason": finish}] if delta or finish else []
    return {"id": "c", "object": "chat.completion.chunk", "choices": choices, "usage": usage}


USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
EVENTS = [
    event({"role": "assistant", "content": ""}),
    event({"content": "Caf"}),
    event({"content": "é → ok"}),
    event({"content": " done"}),
    event({}, "stop"),
    event({}, usage=USAGE),
]
EXPECTED: list[StreamEvent] = ["Caf", "é → ok", " done", Finished("stop", 7, 3)]


def sse(events: list[dict[str, Any]], newline: bytes = b"\n") -> bytes:
    lines = [b"data: " + json.dumps(e, ensure_ascii=False).encode() for e in events]
    return b"".join(line + newline + newline for line in [*lines, b"data: [DONE]"])


def pieces_of(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


Writer = Callable[[web.StreamResponse], Any]


@pytest.fixture(params=["httpx", "aiohttp"])
async def wire(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Callable[[Writer], OpenAIChatModel]]:
    """A model over a server whose answer is written by the test's `writer`, on each HTTP backend
    (HTTP_BACKEND: the SDK's httpx transport or its aiohttp one read the body in other pieces)."""
    writers: list[Writer] = []

    async def completions(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await writers.pop(0)(response)
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    clients: list[openai.AsyncOpenAI] = []

    def model(writer: Writer, deadline: float = 5) -> OpenAIChatModel:
        writers.append(writer)
        client = open_client(
            api_key="sk-test",
            base_url=f"http://127.0.0.1:{port}/v1",
            max_retries=0,
            timeout=5,
            http_backend=request.param,
        )
        clients.append(client)
        return OpenAIChatModel(client, answer_deadline=deadline)

    yield model
    for client in clients:
        await client.close()
    await runner.cleanup()


def writing(*pieces: bytes, hold: asyncio.Event | None = None, after: int = 0) -> Writer:
    async def write(response: web.StreamResponse) -> None:
        for number, piece in enumerate(pieces):
            if hold is not None and number == after:
                await hold.wait()
            await response.write(piece)
        await response.write_eof()

    return write


async def answer(model: OpenAIChatModel) -> list[StreamEvent]:
    stream = model.stream(MESSAGES, model="m", max_tokens=9, temperature=0, top_p=1)
    return [event async for event in stream]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, 10_000])
async def test_events_split_anywhere_or_sent_together_read_the_same(wire, size):
    assert await answer(wire(writing(*pieces_of(sse(EVENTS), size)))) == EXPECTED


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
@pytest.mark.parametrize("size", [1, 4, 10_000])
async def test_crlf_and_cr_line_ends_read_the_same(wire, newline, size):
    body = sse(EVENTS, newline)
    assert await answer(wire(writing(*pieces_of(body, size)))) == EXPECTED


async def test_a_crlf_split_between_its_cr_and_lf_is_one_line_end(wire):
    # "data: {...,\r" | "\ndata:  ...}\r\n\r\n": two data lines of one event, not two events.
    first, second = json.dumps(event({"content": "x"})), json.dumps(event({}, "stop"))
    cut = first.index(", ") + 1
    body = f"data: {first[:cut]}\r", f"\ndata: {first[cut:]}\r\n\r\ndata: {second}\r\n"
    assert await answer(wire(writing(*(part.encode() for part in body)))) == ["x", Finished("stop")]


async def test_a_cr_that_ends_the_stream_ends_its_last_line(wire):
    body = b"data: " + json.dumps(event({"content": "x"}, "stop")).encode()
    assert await answer(wire(writing(body, b"\r"))) == ["x", Finished("stop")]


async def test_comments_other_fields_and_multi_line_data_are_read_as_sse(wire):
    text = json.dumps(event({"content": "two lines"}), indent=1).split("\n")
    body = (
        b": keep-alive\n\n"
        b"event: message\nid: 1\nretry: 10\n"
        + b"".join(b"data:" + line.encode() + b"\n" for line in text)
        + b"\n\n\n"
        + b"data:"
        + json.dumps(event({}, "stop")).encode()
        # the last event may lack its blank line, and the stream its [DONE]
    )
    assert await answer(wire(writing(body))) == ["two lines", Finished("stop")]


async def test_bytes_that_are_not_utf8_become_replacement_characters(wire):
    body = b'data: {"choices": [{"delta": {"content": "a\xffb"}, "finish_reason": "stop"}]}\n\n'
    assert await answer(wire(writing(body))) == ["a\ufffdb", Finished("stop")]


@pytest.mark.parametrize("data", [b" {}", b"{} ", b"{}\t", b"{} x", b"", b"[DONE"])
async def test_json_with_space_around_it_reads_and_anything_else_is_malformed(wire, data):
    body = b"data: " + data + b"\n\n" + sse([event({}, "stop")])
    if data.strip() == b"{}":
        assert await answer(wire(writing(body))) == [Finished("stop")]
    else:
        with pytest.raises(Interrupted):
            await answer(wire(writing(body)))


async def test_thinking_and_answer_in_the_same_read_keep_their_order(wire):
    events = [
        event({"reasoning_content": "hmm"}),
        event({"content": "yes"}),
        event({"content": [{"type": "text", "text": "!"}]}, "stop"),
    ]
    assert await answer(wire(writing(sse(events)))) == [
        Reasoning("hmm"),
        "yes",
        "!",
        Finished("stop"),
    ]


# -- the deadline ------------------------------------------------------------------------------


async def test_a_stalled_read_times_out_and_leaves_the_task_uncancelled(wire):
    hold = asyncio.Event()
    model = wire(writing(*pieces_of(sse(EVENTS), 40), hold=hold, after=2), deadline=0.2)

    with pytest.raises(ModelTimedOut):
        await answer(model)

    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.01)  # no cancellation left pending for this task
    hold.set()


async def test_the_deadline_passing_during_the_consumers_work_stops_the_next_read(wire):
    hold = asyncio.Event()
    body = sse(EVENTS)
    cut = body.index(b"\n\n", body.index(b"Caf")) + 2
    stream = wire(writing(body[:cut], body[cut:], hold=hold, after=1), deadline=0.1).stream(
        MESSAGES, model="m", max_tokens=9, temperature=0, top_p=1
    )
    assert await anext(stream) == "Caf"
    await asyncio.sleep(0.15)  # the consumer's work outlasts the deadline: the timer fires now
    started = asyncio.get_running_loop().time()
    with pytest.raises(ModelTimedOut):
        async for _ in stream:
            pass
    assert asyncio.get_running_loop().time() - started < 0.05
    hold.set()


async def test_cancelling_the_reader_mid_read_is_a_cancellation_not_a_timeout(wire):
    hold = asyncio.Event()
    model = wire(writing(*pieces_of(sse(EVENTS), 40), hold=hold, after=2), deadline=0.2)
    task = asyncio.create_task(answer(model))
    await asyncio.sleep(0.05)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    hold.set()


async def test_no_timer_is_scheduled_per_event(wire, monkeypatch):
    # 200 events in one write: the deadline is one timer per answer, not one per read or event.
    events = [event({"content": "tok "}) for _ in range(200)] + [event({}, "stop")]
    model = wire(writing(sse(events)))
    loop = asyncio.get_running_loop()
    real_call_at = loop.call_at
    timers = 0

    def call_at(*args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        nonlocal timers
        timers += 1
        return real_call_at(*args, **kwargs)

    monkeypatch.setattr(loop, "call_at", call_at)
    got = await answer(model)

    assert "".join(e for e in got if isinstance(e, str)) == "tok " * 200
    assert timers < 20
