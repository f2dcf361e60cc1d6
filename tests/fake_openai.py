"""A loopback stand-in for an OpenAI-compatible chat-completions server.

Real HTTP on 127.0.0.1, spoken to by the real `openai` client. Each request takes the next
scripted `Reply` (or the default one): streamed SSE chunks with an optional usage chunk, latency
before the first byte and between chunks, HTTP errors with OpenAI-shaped bodies, a stall, a cut
stream (no finish reason), a malformed chunk. Every request body is recorded.

Like the real API, it checks parameters per model family before any scripted reply is taken:
OpenAI's reasoning models (gpt-5.x, o1, o3, o4; `reasoning_models`) refuse `max_tokens` and a
`temperature`/`top_p` other than 1, and the o-series refuses `reasoning_effort` "minimal"; the
older chat models (`effortless_models`: gpt-4.x, gpt-3.5) refuse `reasoning_effort` — each with
OpenAI's own 400 body. Other names (local servers) take everything. A reply may think first:
`reasoning` streamed as `delta.reasoning_content`, `delta.reasoning`, or inside the content as
`<think>…</think>` (`"think"`) or without the opening tag (`"think_no_open"`), which the content's
chunking splits anywhere; usage then reports `completion_tokens_details.reasoning_tokens`.

Images: a user message's content may be a list of parts (text and `image_url`); the image parts of
every request are recorded (`image_parts`, `images`), and models matching `text_only_models` refuse
them with OpenAI's 400 (as gpt-3.5-turbo does), before any scripted reply is taken.

In tests: `async with FakeOpenAI() as server: ... server.base_url`.
As a separate process (benchmarks): `python -m tests.fake_openai --latency 1.0`, which prints
`PORT <n>` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web


@dataclass
class Reply:
    text: str = "Hello from the stand-in."
    echo: bool = False  # answer "echo: <the last user message>" instead of `text`
    chunk_size: int = 8  # characters per streamed chunk
    latency: float = 0.0  # seconds before the response starts
    pace: float = 0.0  # seconds between chunks
    usage: bool = True
    finish_reason: str | None = "stop"
    status: int = 200
    error_type: str = "invalid_request_error"
    error_code: str | None = None
    error_message: str = "error"
    headers: dict[str, str] = field(default_factory=dict)
    stall_after: int | None = None  # send this many chunks, then hang
    cut_after: int | None = None  # send this many chunks, then drop the connection
    malformed_after: int | None = None  # send this many chunks, then one that is not JSON
    prompt_tokens: int = 11
    # A broken or hostile server: `data:` lines sent in place of the text's chunks (a str as it
    # is, anything else JSON-encoded); and a usage object sent as given, whatever its shape.
    raw_chunks: list[Any] | None = None
    usage_override: Any = None
    # Thinking before the answer, and where it is streamed.
    reasoning: str = ""
    reasoning_field: Literal["reasoning_content", "reasoning", "think", "think_no_open"] = (
        "reasoning_content"
    )
    hold_after_done: bool = False  # keep the body open after `data: [DONE]`


def rate_limited(retry_after: str = "1") -> Reply:
    return Reply(
        status=429,
        error_type="rate_limit_exceeded",
        error_code="rate_limit_exceeded",
        error_message="Rate limit reached. Please try again in 1s.",
        headers={"Retry-After": retry_after},
    )


def context_too_long() -> Reply:
    return Reply(
        status=400,
        error_code="context_length_exceeded",
        error_message="This model's maximum context length is 4096 tokens. However, your "
        "messages resulted in 5000 tokens. Please reduce the length of the messages.",
    )


def unauthorized() -> Reply:
    return Reply(
        status=401,
        error_type="invalid_request_error",
        error_code="invalid_api_key",
        error_message="Incorrect API key provided.",
    )


def unsupported_parameter(param: str, instead: str | None = None) -> dict[str, Any]:
    """OpenAI's 400 body for a parameter the model does not take."""
    message = f"Unsupported parameter: '{param}' is not supported with this model."
    if instead:
        message += f" Use '{instead}' instead."
    return {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": "unsupported_parameter",
    }


def unsupported_value(param: str, value: Any, only: str | None = None) -> dict[str, Any]:
    """OpenAI's 400 body for a value the model does not take."""
    shown = f"'{value}'" if isinstance(value, str) else json.dumps(value)
    message = f"Unsupported value: '{param}' does not support {shown} with this model."
    if only:
        message += f" Only the default ({only}) value is supported."
    return {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": "unsupported_value",
    }


# Names as OpenAI (or a provider prefixing them) spells them.
REASONING_MODELS = r"(?:.*/)?(?:gpt-5|o[134])(?:$|[-._:])"
O_SERIES = r"(?:.*/)?o[134](?:$|[-._:])"
EFFORTLESS_MODELS = r"(?:.*/)?(?:gpt-4|gpt-3\.5|gpt-35|chatgpt-4o)"


def refusal(body: dict[str, Any], reasoning_models: str, effortless_models: str) -> Any:
    """The error the real API would answer `body` with, or None when it takes it."""
    model = str(body.get("model", ""))
    if re.match(reasoning_models, model):
        if "max_tokens" in body:
            return unsupported_parameter("max_tokens", "max_completion_tokens")
        for name in ("temperature", "top_p"):
            if name in body and body[name] != 1:
                return unsupported_value(name, body[name], only="1")
        if re.match(O_SERIES, model) and body.get("reasoning_effort") == "minimal":
            return unsupported_value("reasoning_effort", "minimal")
    elif re.match(effortless_models, model) and "reasoning_effort" in body:
        return unsupported_parameter("reasoning_effort")
    return None


def image_parts(body: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The image parts of a request body: (message index, the part), in order."""
    found = []
    for index, message in enumerate(body.get("messages") or []):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            found += [
                (index, part)
                for part in content
                if isinstance(part, dict) and part.get("type") == "image_url"
            ]
    return found


def text_of(content: Any) -> str:
    """A message's text, whether its content is a string or a list of parts."""
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return str(content)


def images_refused(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's 400 body for an image sent to a model that takes none."""
    index, _ = image_parts(body)[0]
    content = body["messages"][index]["content"]
    position = next(i for i, p in enumerate(content) if p.get("type") == "image_url")
    return {
        "message": "Invalid content type. image_url is only supported by certain models.",
        "type": "invalid_request_error",
        "param": f"messages.[{index}].content.[{position}].type",
        "code": None,
    }


def server_error() -> Reply:
    return Reply(status=500, error_type="server_error", error_message="The server had an error.")


class FakeOpenAI:
    def __init__(
        self,
        default: Reply | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        failure_rate: float = 0.0,
        seed: int = 0,
        reasoning_models: str = REASONING_MODELS,
        effortless_models: str = EFFORTLESS_MODELS,
        text_only_models: str | None = None,
    ):
        self.default = default or Reply()
        # Regular expressions (matched from the start of the model's name) choosing what the
        # server refuses, like OpenAI; a proxy renaming models can be played by changing them.
        self.reasoning_models = reasoning_models
        self.effortless_models = effortless_models
        # A regular expression (from the start of the model's name): models that take no images.
        self.text_only_models = text_only_models
        # With failure_rate, that share of unscripted requests fail at random (seeded): a 500,
        # a 429, or a stream cut after its first words.
        self.failure_rate = failure_rate
        self._random = random.Random(seed)
        self.failures = 0
        self.script: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.client_ports: list[int] = []  # per request: which connection it came on
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._hang = asyncio.Event()  # never set: what a stall waits on
        self.gate = asyncio.Event()  # responses wait for it; clear it to hold them
        self.gate.set()
        self.arrived = asyncio.Condition()
        self.port = 0

    def then(self, *replies: Reply) -> FakeOpenAI:
        """Queue replies for the next requests, in order."""
        self.script.extend(replies)
        return self

    def _unscripted(self) -> Reply:
        if self.failure_rate and self._random.random() < self.failure_rate:
            self.failures += 1
            fault = self._random.choice(
                [server_error(), rate_limited("1"), Reply(echo=True, chunk_size=4, cut_after=1)]
            )
            return fault
        return self.default

    @property
    def images(self) -> list[list[dict[str, Any]]]:
        """Per request: its image parts, in order."""
        return [[part for _, part in image_parts(body)] for body in self.requests]

    async def wait_for_requests(self, count: int) -> None:
        """Wait until `count` requests have arrived in all."""
        async with self.arrived:
            await self.arrived.wait_for(lambda: len(self.requests) >= count)

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}/v1"

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=0.1,
            handler_cancellation=True,
        )
        await self._runner.setup()
        # A deep listen queue: the fan-out benchmark opens 1,000 connections at once.
        site = web.TCPSite(self._runner, self._host, self._port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.client_ports.append(peer[1] if peer else 0)
        async with self.arrived:
            self.arrived.notify_all()
        refused = refusal(body, self.reasoning_models, self.effortless_models)
        if (
            refused is None
            and self.text_only_models is not None
            and re.match(self.text_only_models, str(body.get("model", "")))
            and image_parts(body)
        ):
            refused = images_refused(body)
        if refused is not None:
            return web.json_response({"error": refused}, status=400)
        reply = self.script.popleft() if self.script else self._unscripted()
        await self.gate.wait()
        if reply.latency:
            await asyncio.sleep(reply.latency)
        if reply.status != 200:
            error = {
                "message": reply.error_message,
                "type": reply.error_type,
                "param": None,
                "code": reply.error_code,
            }
            return web.json_response({"error": error}, status=reply.status, headers=reply.headers)

        text = reply.text
        if reply.echo:
            users = [text_of(m["content"]) for m in body["messages"] if m["role"] == "user"]
            text = f"echo: {users[-1] if users else ''}"
        thinking: list[dict[str, Any]] = []
        content = text
        if reply.reasoning and reply.reasoning_field == "think":
            content = f"<think>\n{reply.reasoning}\n</think>\n\n{text}"
        elif reply.reasoning and reply.reasoning_field == "think_no_open":
            content = f"{reply.reasoning}\n</think>\n\n{text}"
        elif reply.reasoning:
            size = reply.chunk_size
            thinking = [
                {reply.reasoning_field: reply.reasoning[i : i + size], "content": None}
                for i in range(0, len(reply.reasoning), size)
            ]
        chunks: list[str | dict[str, Any]] = [*thinking]
        chunks += [
            content[i : i + reply.chunk_size] for i in range(0, len(content), reply.chunk_size)
        ]

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        created = int(time.time())

        def event(choices: list[dict[str, Any]], usage: Any = None) -> bytes:
            payload = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.get("model", "fake"),
                "choices": choices,
                "usage": usage,
            }
            return f"data: {json.dumps(payload)}\n\n".encode()

        await response.write(event([{"index": 0, "delta": {"role": "assistant", "content": ""}}]))
        for raw in reply.raw_chunks or []:
            data = raw if isinstance(raw, str) else json.dumps(raw)
            await response.write(f"data: {data}\n\n".encode())
        if reply.raw_chunks is not None:
            chunks = []
        for number, piece in enumerate(chunks):
            if number == reply.stall_after:
                await self._hang.wait()
            if number == reply.cut_after:
                assert request.transport is not None
                request.transport.close()
                return response
            if number == reply.malformed_after:
                await response.write(b"data: {this is not json\n\n")
                continue
            if reply.pace and number:
                await asyncio.sleep(reply.pace)
            delta = piece if isinstance(piece, dict) else {"content": piece}
            await response.write(event([{"index": 0, "delta": delta}]))
        if reply.stall_after is not None and reply.stall_after >= len(chunks):
            await self._hang.wait()
        if reply.cut_after is not None and reply.cut_after >= len(chunks):
            assert request.transport is not None
            request.transport.close()
            return response
        if reply.finish_reason is not None:
            await response.write(
                event([{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}])
            )
        include_usage = (body.get("stream_options") or {}).get("include_usage")
        if reply.usage and include_usage:
            thought = len(reply.reasoning) // 4
            completion = max(1, len(text) // 4 + thought)
            usage: dict[str, Any] = {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": reply.prompt_tokens + completion,
            }
            if reply.reasoning:
                usage["completion_tokens_details"] = {"reasoning_tokens": thought}
            await response.write(
                event([], usage if reply.usage_override is None else reply.usage_override)
            )
        await response.write(b"data: [DONE]\n\n")
        if reply.hold_after_done:
            await self._hang.wait()
        await response.write_eof()
        return response


async def _serve(args: argparse.Namespace) -> None:
    default = Reply(
        text=args.text, echo=args.echo, latency=args.latency, pace=args.pace, chunk_size=args.chunk
    )
    async with FakeOpenAI(
        default, port=args.port, failure_rate=args.failure_rate, seed=args.seed
    ) as server:
        print(f"PORT {server.port}", flush=True)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--pace", type=float, default=0.0)
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--text", default="Hello from the stand-in.")
    parser.add_argument("--echo", action="store_true")
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
