"""The OpenAI adapter, through the real openai client and real HTTP to the loopback stand-in."""

from __future__ import annotations

import time

import openai
import pytest

from bot.errors import (
    AuthenticationFailed,
    ContextTooLong,
    Interrupted,
    ModelNotFound,
    ModelServerError,
    ModelTimedOut,
    ModelUnreachable,
    QuotaExhausted,
    RateLimited,
    Refused,
)
from bot.llm import Finished, OpenAIChatModel
from tests.fake_openai import (
    FakeOpenAI,
    Reply,
    context_too_long,
    rate_limited,
    server_error,
    unauthorized,
)

MESSAGES = [{"role": "system", "content": "s"}, {"role": "user", "content": "[Ann]: hi"}]


async def collect(model: OpenAIChatModel) -> tuple[list[str], Finished]:
    deltas: list[str] = []
    finished = None
    async for event in model.stream(MESSAGES, model="m", max_tokens=50, temperature=0, top_p=1):
        if isinstance(event, Finished):
            finished = event
        else:
            deltas.append(event)
    assert finished is not None
    return deltas, finished


async def test_streams_deltas_then_finish_reason_and_usage(llm_server, chat_model):
    llm_server.then(Reply(text="The quick brown fox jumps.", chunk_size=5, prompt_tokens=42))

    deltas, finished = await collect(chat_model)

    assert deltas == ["The q", "uick ", "brown", " fox ", "jumps", "."]
    assert finished == Finished("stop", prompt_tokens=42, completion_tokens=6)
    sent = llm_server.requests[0]
    assert sent["stream"] is True and sent["messages"] == MESSAGES
    assert sent["max_tokens"] == 50 and sent["stream_options"] == {"include_usage": True}


async def test_a_server_that_sends_no_usage_still_answers(llm_server, chat_model):
    llm_server.then(Reply(text="fine", usage=False))

    deltas, finished = await collect(chat_model)

    assert "".join(deltas) == "fine"
    assert finished == Finished("stop", None, None)


async def test_length_finish_reason_is_reported(llm_server, chat_model):
    llm_server.then(Reply(text="cut at max tok", finish_reason="length"))

    _, finished = await collect(chat_model)

    assert finished.finish_reason == "length"


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (rate_limited("7"), RateLimited),
        (context_too_long(), ContextTooLong),
        (unauthorized(), AuthenticationFailed),
        (server_error(), ModelServerError),
        (Reply(status=404, error_code="model_not_found", error_message="no"), ModelNotFound),
        (Reply(status=400, error_message="Invalid 'messages'"), Refused),
        (
            Reply(status=429, error_code="insufficient_quota", error_message="quota"),
            QuotaExhausted,
        ),
        (Reply(status=403, error_message="forbidden"), AuthenticationFailed),
    ],
)
async def test_http_errors_become_the_taxonomy(llm_server, chat_model, reply, error):
    llm_server.then(reply)

    with pytest.raises(error):
        await collect(chat_model)


async def test_rate_limit_carries_retry_after(llm_server, chat_model):
    llm_server.then(rate_limited("7"))

    with pytest.raises(RateLimited) as caught:
        await collect(chat_model)

    assert caught.value.retry_after == 7.0


async def test_vllm_style_context_message_without_code_is_context_too_long(llm_server, chat_model):
    llm_server.then(
        Reply(status=400, error_message="This model's maximum context length is 4096 tokens.")
    )

    with pytest.raises(ContextTooLong):
        await collect(chat_model)


async def test_stream_cut_without_finish_reason_is_interrupted(llm_server, chat_model):
    llm_server.then(Reply(text="partial answer that never ends", chunk_size=4, cut_after=3))

    with pytest.raises(Interrupted):
        await collect(chat_model)


async def test_stream_ending_cleanly_without_finish_reason_is_interrupted(llm_server, chat_model):
    llm_server.then(Reply(text="no finish", finish_reason=None))

    with pytest.raises(Interrupted):
        await collect(chat_model)


async def test_malformed_chunk_is_interrupted(llm_server, chat_model):
    llm_server.then(Reply(text="abcdefghijkl", chunk_size=4, malformed_after=1))

    with pytest.raises(Interrupted):
        await collect(chat_model)


async def test_overall_deadline_bounds_a_slowly_dripping_answer(llm_server, openai_client):
    # Each chunk arrives well within any per-read timeout, but the whole answer takes too long.
    llm_server.then(Reply(text="x" * 40, chunk_size=1, pace=0.05))
    model = OpenAIChatModel(openai_client, answer_deadline=0.5)

    started = time.monotonic()
    with pytest.raises(ModelTimedOut):
        await collect(model)

    assert time.monotonic() - started < 1.5


async def test_stall_mid_stream_times_out(llm_server, openai_client):
    llm_server.then(Reply(text="abcdefgh", chunk_size=2, stall_after=2))
    model = OpenAIChatModel(openai_client, answer_deadline=0.3)

    with pytest.raises(ModelTimedOut):
        await collect(model)


async def test_slow_first_byte_hits_the_client_read_timeout(llm_server):
    llm_server.then(Reply(latency=2.0))
    async with openai.AsyncOpenAI(
        api_key="sk-test", base_url=llm_server.base_url, max_retries=0, timeout=0.2
    ) as client:
        with pytest.raises(ModelTimedOut):
            await collect(OpenAIChatModel(client, answer_deadline=30))


async def test_connection_refused_is_unreachable():
    async with FakeOpenAI() as server:
        url = server.base_url  # the port is closed once the server stops
    async with openai.AsyncOpenAI(api_key="sk-test", base_url=url, max_retries=0) as client:
        with pytest.raises(ModelUnreachable):
            await collect(OpenAIChatModel(client, answer_deadline=5))


async def test_a_server_that_rejects_stream_options_is_asked_without_them_from_then_on(
    llm_server, chat_model
):
    llm_server.then(
        Reply(status=400, error_message="Unrecognized request argument supplied: stream_options"),
        Reply(text="works without usage"),
        Reply(text="and again"),
    )

    deltas, finished = await collect(chat_model)
    again, _ = await collect(chat_model)

    assert "".join(deltas) == "works without usage" and "".join(again) == "and again"
    assert finished.prompt_tokens is None
    assert "stream_options" in llm_server.requests[0]
    assert all("stream_options" not in r for r in llm_server.requests[1:])


# -- a broken or hostile server: whatever it sends, str deltas and one Finished, or an LLMError --


def chunk(delta: object = None, **fields: object) -> dict[str, object]:
    """A chat.completion.chunk as a server would send it (`fields` replace its own)."""
    payload: dict[str, object] = {
        "id": "chatcmpl-odd",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {} if delta is None else delta}],
    }
    payload.update(fields)
    return payload


async def test_content_parts_yield_only_their_text(llm_server, chat_model):
    parts = [
        {"type": "text", "text": "Hello, "},
        {"type": "image_url", "image_url": {"url": "data:,"}},
        {"type": "text", "text": 7},
        "stray",
        {"type": "text", "text": "world"},
    ]
    llm_server.then(Reply(text="", raw_chunks=[chunk({"content": parts})]))

    deltas, finished = await collect(chat_model)

    assert deltas == ["Hello, ", "world"]
    assert finished.finish_reason == "stop"


@pytest.mark.parametrize("content", [42, 1.5, True, {"text": "x"}, ["x", 1]])
async def test_content_that_is_not_text_is_skipped(llm_server, chat_model, content):
    llm_server.then(
        Reply(text="", raw_chunks=[chunk({"content": content}), chunk({"content": "fine"})])
    )

    deltas, finished = await collect(chat_model)

    assert deltas == ["fine"]
    assert finished.finish_reason == "stop"


async def test_a_lone_surrogate_becomes_a_replacement_character(llm_server, chat_model):
    # JSON may escape half of a surrogate pair; such a str cannot be stored or sent on.
    raw = '{"choices": [{"index": 0, "delta": {"content": "a\\ud83d b"}}]}'
    llm_server.then(Reply(text="", raw_chunks=[raw]))

    deltas, _ = await collect(chat_model)

    assert deltas == ["a\ufffd b"]
    assert "".join(deltas).encode("utf-8")


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": 1.5, "completion_tokens": "7"},
        {"prompt_tokens": -1, "completion_tokens": 10**30},
        {"prompt_tokens": True, "completion_tokens": [3]},
        {"prompt_tokens": 2**53, "completion_tokens": {"n": 1}},
        "lots",
        [1, 2],
        7,
    ],
)
async def test_absurd_usage_figures_are_treated_as_unreported(llm_server, chat_model, usage):
    llm_server.then(Reply(text="fine", usage_override=usage))

    deltas, finished = await collect(chat_model)

    assert "".join(deltas) == "fine"
    assert finished == Finished("stop", None, None)


async def test_sane_usage_figures_next_to_absurd_ones_are_kept(llm_server, chat_model):
    llm_server.then(
        Reply(text="fine", usage_override={"prompt_tokens": 2**53 - 1, "completion_tokens": -5})
    )

    _, finished = await collect(chat_model)

    assert finished == Finished("stop", 2**53 - 1, None)


async def test_a_finish_reason_that_is_not_a_string_still_finishes(llm_server, chat_model):
    odd_finish = {"choices": [{"index": 0, "delta": {}, "finish_reason": 5}]}
    llm_server.then(
        Reply(text="", finish_reason=None, raw_chunks=[chunk({"content": "done"}), odd_finish])
    )

    deltas, finished = await collect(chat_model)

    assert deltas == ["done"]
    assert isinstance(finished.finish_reason, str)


@pytest.mark.parametrize(
    "raw",
    [
        chunk(choices="abc"),
        chunk(choices=[[1, 2]]),
        chunk(choices={"0": {"delta": {"content": "x"}}}),
        chunk("a delta that is a string"),
        chunk([{"content": "x"}]),
        "[1, 2]",
        "5",
        '"just a string"',
        "null",
    ],
)
async def test_a_chunk_of_another_shape_is_interrupted(llm_server, chat_model, raw):
    llm_server.then(Reply(text="", raw_chunks=[chunk({"content": "Part"}), raw]))

    with pytest.raises(Interrupted, match="cannot read"):
        await collect(chat_model)


async def test_choices_null_in_a_usage_chunk_is_no_choices(llm_server, chat_model):
    llm_server.then(
        Reply(
            text="",
            raw_chunks=[chunk({"content": "ok"}), chunk(choices=None)],
        )
    )

    deltas, finished = await collect(chat_model)

    assert deltas == ["ok"] and finished.finish_reason == "stop"
