"""The OpenAI adapter, through the real openai client and real HTTP to the loopback stand-in."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import httpx2
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
from bot.llm import Finished, OpenAIChatModel, open_client
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


# -- documented SDK surfaces: the same body and events as the SDK's typed path --


async def typed_path(client: openai.AsyncOpenAI, **fields: object) -> tuple[list[str], object]:
    """What `chat.completions.create` (the SDK's typed, pydantic path) sends and parses."""
    stream = await client.chat.completions.create(**fields)  # type: ignore[call-overload]
    deltas: list[str] = []
    usage = None
    async with stream:
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    deltas.append(choice.delta.content)
            usage = chunk.usage or usage
    return deltas, usage


async def stream_all(model: OpenAIChatModel, name: str, **options: object) -> list[object]:
    fields: dict[str, object] = {"max_tokens": 50, "temperature": 0.7, "top_p": 1.0}
    fields.update(options)
    return [event async for event in model.stream(MESSAGES, model=name, **fields)]  # type: ignore[arg-type]


async def test_the_body_and_events_are_what_the_typed_sdk_path_gives(
    llm_server, chat_model, openai_client
):
    reply = Reply(text="The quick brown fox jumps.", chunk_size=3, prompt_tokens=9)
    llm_server.then(reply, reply)

    events = await stream_all(chat_model, "gpt-4o-mini")
    deltas, usage = await typed_path(
        openai_client,
        model="gpt-4o-mini",
        messages=MESSAGES,
        max_tokens=50,
        temperature=0.7,
        top_p=1.0,
        stream=True,
        stream_options={"include_usage": True},
    )

    ours, typed = llm_server.requests
    assert (
        ours
        == typed
        == {
            "model": "gpt-4o-mini",
            "messages": MESSAGES,
            "max_tokens": 50,
            "temperature": 0.7,
            "top_p": 1.0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    assert events[:-1] == deltas
    assert events[-1] == Finished(
        "stop",
        usage.prompt_tokens,
        usage.completion_tokens,  # type: ignore[attr-defined]
    )


async def test_a_reasoning_models_body_is_what_the_typed_sdk_path_gives(
    llm_server, chat_model, openai_client
):
    await stream_all(chat_model, "gpt-5-mini", reasoning_effort="low")
    await typed_path(
        openai_client,
        model="gpt-5-mini",
        messages=MESSAGES,
        max_completion_tokens=50,
        reasoning_effort="low",
        stream=True,
        stream_options={"include_usage": True},
    )

    ours, typed = llm_server.requests
    assert ours == typed
    assert "temperature" not in ours and "top_p" not in ours and "max_tokens" not in ours


async def test_no_undocumented_sdk_surface_is_used(llm_server, chat_model, monkeypatch):
    # `client.post(..., stream_cls=...)` is the SDK's own plumbing: only its methods may call it.
    real_post = openai.AsyncOpenAI.post
    callers: list[str] = []

    def post(self: openai.AsyncOpenAI, *args: object, **kwargs: object) -> object:
        callers.append(sys._getframe(1).f_globals["__name__"])
        return real_post(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(openai.AsyncOpenAI, "post", post)

    deltas, finished = await collect(chat_model)

    assert "".join(deltas) == "Hello from the stand-in." and finished.finish_reason == "stop"
    assert callers and all(caller.startswith("openai.") for caller in callers)


async def test_a_read_timeout_mid_answer_is_a_timeout(llm_server):
    llm_server.then(Reply(text="abcdefgh", chunk_size=2, stall_after=2))
    async with openai.AsyncOpenAI(
        api_key="sk-test", base_url=llm_server.base_url, max_retries=0, timeout=0.2
    ) as client:
        with pytest.raises(ModelTimedOut):
            await collect(OpenAIChatModel(client, answer_deadline=30))


async def test_an_error_reported_mid_stream_is_interrupted(llm_server, chat_model):
    error = {"error": {"message": "overloaded", "type": "server_error", "code": None}}
    llm_server.then(Reply(text="", raw_chunks=[chunk({"content": "Par"}), error]))

    with pytest.raises(Interrupted):
        await collect(chat_model)


async def test_answers_reuse_one_connection(llm_server, chat_model):
    await collect(chat_model)
    await collect(chat_model)

    assert len(set(llm_server.client_ports)) == 1


async def test_a_server_holding_the_body_open_after_done_still_answers(llm_server, chat_model):
    llm_server.then(Reply(text="done", hold_after_done=True))

    started = time.monotonic()
    deltas, finished = await collect(chat_model)

    assert "".join(deltas) == "done" and finished.finish_reason == "stop"
    assert time.monotonic() - started < 1


# -- parameters by model family, and a server that refuses one --


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refuses" in r.getMessage()]


@pytest.mark.parametrize("name", ["gpt-5-mini", "gpt-5.1", "o3", "o4-mini", "openai/o3"])
async def test_reasoning_models_get_max_completion_tokens_and_no_sampling(
    llm_server, chat_model, name
):
    events = await stream_all(chat_model, name, reasoning_effort="high")

    (sent,) = llm_server.requests
    assert sent["max_completion_tokens"] == 50 and sent["reasoning_effort"] == "high"
    assert not {"max_tokens", "temperature", "top_p"} & sent.keys()
    assert isinstance(events[-1], Finished)


async def test_chat_models_get_max_tokens_and_sampling_and_never_an_effort(llm_server, chat_model):
    await stream_all(chat_model, "llama3.1:8b")
    await stream_all(chat_model, "gpt-4o-mini", reasoning_effort="low")

    plain, with_effort = llm_server.requests
    assert (plain["max_tokens"], plain["temperature"], plain["top_p"]) == (50, 0.7, 1.0)
    assert "reasoning_effort" not in plain and "max_completion_tokens" not in plain
    assert "reasoning_effort" not in with_effort  # sent only where the family takes it


async def test_an_effort_value_a_model_refuses_is_dropped_and_the_other_levels_stay(
    llm_server, chat_model, caplog
):
    caplog.set_level(logging.INFO, logger="bot.llm")

    events = await stream_all(chat_model, "o3", reasoning_effort="minimal")
    await stream_all(chat_model, "o3", reasoning_effort="high")  # another channel's level
    await stream_all(chat_model, "o3", reasoning_effort="minimal")

    assert isinstance(events[-1], Finished)
    sent = [r.get("reasoning_effort") for r in llm_server.requests]
    assert sent == ["minimal", None, "high", None]
    assert len(refusals(caplog)) == 1


async def test_a_proxy_with_unknown_names_is_asked_again_per_refused_parameter(
    caplog, openai_client
):
    caplog.set_level(logging.INFO, logger="bot.llm")
    async with (
        FakeOpenAI(reasoning_models="my-proxy-") as server,
        openai.AsyncOpenAI(api_key="sk-test", base_url=server.base_url, max_retries=0) as client,
    ):
        model = OpenAIChatModel(client, answer_deadline=5)

        events = await stream_all(model, "my-proxy-gpt5")
        again = await stream_all(model, "my-proxy-gpt5")

    assert "".join(e for e in events if isinstance(e, str)) == "Hello from the stand-in."
    assert isinstance(again[-1], Finished)
    first, second, third, remembered = server.requests
    assert first["max_tokens"] == 50
    assert second["max_completion_tokens"] == 50 and second["temperature"] == 0.7
    assert "temperature" not in third and third["top_p"] == 1.0
    assert remembered == third
    assert refusals(caplog) == [
        "The model server refuses max_tokens for model 'my-proxy-gpt5': sending "
        "max_completion_tokens instead from now on",
        "The model server refuses temperature=0.7 for model 'my-proxy-gpt5': asking without it "
        "from now on",
    ]


async def test_an_override_sends_a_proxy_the_reasoning_parameters_at_once():
    async with (
        FakeOpenAI(reasoning_models="my-proxy-") as server,
        openai.AsyncOpenAI(api_key="sk-test", base_url=server.base_url, max_retries=0) as client,
    ):
        model = OpenAIChatModel(client, answer_deadline=5, families={"my-proxy-*": "reasoning"})

        await stream_all(model, "my-proxy-gpt5")

    (sent,) = server.requests
    assert sent["max_completion_tokens"] == 50 and "temperature" not in sent


async def test_a_refusal_named_only_in_the_message_is_understood(llm_server, chat_model):
    llm_server.then(
        Reply(status=400, error_message="Unrecognized request argument supplied: top_p")
    )

    events = await stream_all(chat_model, "some-azure-deployment")

    assert isinstance(events[-1], Finished)
    refused, retried = llm_server.requests
    assert "top_p" in refused and "top_p" not in retried and retried["temperature"] == 0.7


async def test_a_parameter_is_asked_without_once_then_the_refusal_stands(llm_server, chat_model):
    refused = Reply(
        status=400,
        error_code="unsupported_value",
        error_message="Unsupported value: 'temperature' does not support 0.7 with this model.",
    )
    llm_server.then(refused, refused)

    with pytest.raises(Refused):
        await stream_all(chat_model, "m")

    assert len(llm_server.requests) == 2


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (
            "This model's maximum context length is 4096 tokens. However, you requested 5000 "
            "tokens (4000 in the messages, 1000 in max_tokens). Please reduce the length.",
            ContextTooLong,
        ),
        ("max_tokens is too large: 99999. This model supports at most 4096 tokens.", Refused),
    ],
)
async def test_a_400_about_sizes_is_not_a_refused_parameter(llm_server, chat_model, message, error):
    llm_server.then(Reply(status=400, error_message=message))

    with pytest.raises(error):
        await stream_all(chat_model, "m")

    assert len(llm_server.requests) == 1


async def test_the_stand_in_refuses_like_the_real_api(llm_server, openai_client):
    with pytest.raises(openai.BadRequestError) as tokens:
        await openai_client.chat.completions.create(
            model="gpt-5-mini",
            messages=MESSAGES,
            max_tokens=5,  # type: ignore[arg-type]
        )
    with pytest.raises(openai.BadRequestError) as sampling:
        await openai_client.chat.completions.create(
            model="o4-mini",
            messages=MESSAGES,
            temperature=0.7,  # type: ignore[arg-type]
        )

    assert tokens.value.body == {
        "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens' instead.",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "unsupported_parameter",
    }
    assert sampling.value.body == {
        "message": "Unsupported value: 'temperature' does not support 0.7 with this model. "
        "Only the default (1) value is supported.",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": "unsupported_value",
    }


# -- both HTTP backends: every fault maps the same -----------------------------------------------
#
# HTTP_BACKEND=aiohttp is the SDK's documented aiohttp transport, which (openai 3.57) reports
# every aiohttp connection error as a timeout. The adapter reads the error's cause instead.

BACKENDS = ["httpx", "aiohttp"]
# One SSE event of answer text, as the stand-in writes it.
TEXT_EVENT = b'data: {"choices":[{"index":0,"delta":{"content":"ab"}}]}\n\n'

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    """A loopback server that reads the request and answers with whatever `handler` does."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the headers; the body is never looked at
        await handler(reader, writer)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (SO_LINGER 0) instead of a FIN."""
    writer.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
    )
    writer.close()


async def reset_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    reset(writer)


async def hang_up_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    await writer.drain()
    writer.close()


async def reset_mid_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n" % (len(TEXT_EVENT) * 2, TEXT_EVENT * 2)
    )
    await writer.drain()
    await asyncio.sleep(0.02)  # the client has read the first events
    reset(writer)


async def ask_over(
    backend: str, url: str, *, timeout: float = 5, deadline: float = 5
) -> tuple[list[str], Finished]:
    async with open_client(
        api_key="sk-test", base_url=url, max_retries=0, timeout=timeout, http_backend=backend
    ) as client:
        return await collect(OpenAIChatModel(client, answer_deadline=deadline))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (reset_at_once, ModelUnreachable),
        (hang_up_at_once, ModelUnreachable),
        (not_http, ModelUnreachable),
        (reset_mid_answer, Interrupted),
    ],
    ids=["reset before the reply", "hung up before the reply", "not HTTP", "reset mid-answer"],
)
async def test_a_broken_connection_maps_alike_on_both_backends(backend, handler, error):
    async with raw_server(handler) as url:
        with pytest.raises(error) as caught:
            await ask_over(backend, url)

    assert type(caught.value) is error


async def test_connection_refused_is_unreachable_on_both_backends(backend):
    async with FakeOpenAI() as server:
        url = server.base_url  # the port is closed once the server stops

    with pytest.raises(ModelUnreachable):
        await ask_over(backend, url)


async def test_a_dns_failure_is_unreachable_on_both_backends(backend, monkeypatch):
    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    with pytest.raises(ModelUnreachable):
        await ask_over(backend, "http://model-server.invalid/v1")


async def test_a_tls_failure_is_unreachable_on_both_backends(backend, llm_server):
    # TLS spoken to a plain HTTP server: the handshake fails.
    with pytest.raises(ModelUnreachable):
        await ask_over(backend, llm_server.base_url.replace("http://", "https://"))


@pytest.mark.parametrize(
    ("reply", "timeout", "deadline"),
    [
        (Reply(latency=2.0), 0.2, 30),  # the client's read timeout, before the first byte
        (Reply(text="abcdefgh", chunk_size=2, stall_after=2), 0.2, 30),  # ... mid-answer
        (Reply(text="x" * 40, chunk_size=1, pace=0.02), 5, 0.2),  # the answer's deadline
    ],
    ids=["no first byte", "stall mid-answer", "answer deadline"],
)
async def test_a_timeout_is_a_timeout_on_both_backends(
    backend, llm_server, reply, timeout, deadline
):
    llm_server.then(reply)

    with pytest.raises(ModelTimedOut):
        await ask_over(backend, llm_server.base_url, timeout=timeout, deadline=deadline)


async def test_a_connection_pool_timeout_stays_a_timeout_on_both_backends(backend, llm_server):
    # A real timeout before the request is sent (no connection free in time): not "unreachable".
    llm_server.then(Reply(text="abcdefgh", chunk_size=2, stall_after=1))
    http = openai.DefaultAioHttpClient if backend == "aiohttp" else openai.DefaultAsyncHttpxClient
    async with openai.AsyncOpenAI(
        api_key="sk-test",
        base_url=llm_server.base_url,
        max_retries=0,
        timeout=httpx2.Timeout(5, pool=0.1),
        http_client=http(limits=httpx2.Limits(max_connections=1)),
    ) as client:
        model = OpenAIChatModel(client, answer_deadline=5)
        stalled = model.stream(MESSAGES, model="m", max_tokens=50, temperature=0, top_p=1)
        await anext(stalled)  # holds the only connection
        try:
            with pytest.raises(ModelTimedOut):
                await collect(model)
        finally:
            await stalled.aclose()


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (rate_limited("7"), RateLimited),
        (context_too_long(), ContextTooLong),
        (unauthorized(), AuthenticationFailed),
        (server_error(), ModelServerError),
        (Reply(status=404, error_code="model_not_found", error_message="no"), ModelNotFound),
        (Reply(text="partial answer", chunk_size=4, cut_after=2), Interrupted),
    ],
    ids=["429", "400 context", "401", "500", "404", "cut stream"],
)
async def test_http_errors_map_alike_on_both_backends(backend, llm_server, reply, error):
    llm_server.then(reply)

    with pytest.raises(error) as caught:
        await ask_over(backend, llm_server.base_url)

    if error is RateLimited:
        assert caught.value.retry_after == 7.0


async def test_both_backends_answer_and_reuse_one_connection(backend, llm_server):
    async with open_client(
        api_key="sk-test",
        base_url=llm_server.base_url,
        max_retries=0,
        timeout=5,
        http_backend=backend,
    ) as client:
        model = OpenAIChatModel(client, answer_deadline=5)
        first, second = await collect(model), await collect(model)

    assert first == second and "".join(first[0]) == "Hello from the stand-in."
    assert len(set(llm_server.client_ports)) == 1


class _DisconnectedMidAnswer(httpx2.AsyncByteStream):
    """A body that breaks after one event the way the SDK's aiohttp transport reports it."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield TEXT_EVENT
        try:
            raise aiohttp.ServerDisconnectedError()
        except aiohttp.ClientError as exc:
            raise httpx2.ConnectTimeout(str(exc)) from exc  # its mapping of any connection error


async def test_a_connection_lost_mid_answer_reported_as_a_timeout_is_interrupted():
    def answer(request: httpx2.Request) -> httpx2.Response:
        headers = {"Content-Type": "text/event-stream"}
        return httpx2.Response(200, headers=headers, stream=_DisconnectedMidAnswer())

    async with openai.AsyncOpenAI(
        api_key="sk-test",
        base_url="http://model.test/v1",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(answer)),
    ) as client:
        model = OpenAIChatModel(client, answer_deadline=5)
        with pytest.raises(Interrupted):
            await collect(model)


async def test_stopping_mid_answer_lets_go_at_once_on_both_backends(backend, llm_server):
    # /stop, a cap or shutdown closes the stream while the server is still writing.
    llm_server.then(Reply(text="abcdefgh", chunk_size=2, stall_after=1))
    async with open_client(
        api_key="sk-test",
        base_url=llm_server.base_url,
        max_retries=0,
        timeout=5,
        http_backend=backend,
    ) as client:
        model = OpenAIChatModel(client, answer_deadline=5)
        stream = model.stream(MESSAGES, model="m", max_tokens=50, temperature=0, top_p=1)
        assert await anext(stream) == "ab"
        async with asyncio.timeout(1):
            await stream.aclose()
        deltas, finished = await collect(model)

    assert "".join(deltas) == "Hello from the stand-in." and finished.finish_reason == "stop"
