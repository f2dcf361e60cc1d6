"""The model: the `ChatModel` protocol, the OpenAI adapter, and the errors it can raise.

`OpenAIChatModel` streams from any OpenAI-compatible server (OpenAI, Azure, Ollama, vLLM,
LM Studio) through one shared `AsyncOpenAI` client. It yields text deltas, then one `Finished`
with the finish reason and the usage the server reported (or None when it reports none).

Every failure is one of the `LLMError` subclasses below, which the Discord edge turns into one
sentence. A stream that ends without a finish reason is `Interrupted`: the SDK raises nothing for
that. An overall deadline bounds a whole answer, not only each read.

Whatever a broken or hostile server sends, the stream yields only `str` deltas and one `Finished`,
or raises an `LLMError`: content that is not text is skipped (the text parts of a list of content
parts are kept), a usage figure that is not a plausible token count is unreported (None), and a
chunk of any other shape is `Interrupted`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Protocol

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from bot.errors import (
    AuthenticationFailed,
    ContextTooLong,
    Interrupted,
    LLMError,
    ModelNotFound,
    ModelServerError,
    ModelTimedOut,
    ModelUnreachable,
    QuotaExhausted,
    RateLimited,
    Refused,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Finished:
    finish_reason: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


StreamEvent = str | Finished


class ChatModel(Protocol):
    def stream(
        self,
        messages: Sequence[dict[str, str]],
        *,
        model: str,
        max_tokens: int,
        temperature: float,
        top_p: float,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Yield the answer's text deltas, then exactly one `Finished`; or raise an LLMError.

        An async generator, not any async iterator: the service may stop reading early (/stop, a
        cap, shutdown) and then calls `aclose()` so the model releases its HTTP stream at once.
        """
        ...


class OpenAIChatModel:
    """A `ChatModel` over an `AsyncOpenAI` client that the composition root owns and closes."""

    def __init__(self, client: openai.AsyncOpenAI, *, answer_deadline: float) -> None:
        self._client = client
        self._deadline = answer_deadline
        self._ask_usage = True  # until the server turns out to reject `stream_options`

    async def _open(
        self, body: dict[str, object], deadline: float
    ) -> openai.AsyncStream[ChatCompletionChunk]:
        """Start the streamed completion.

        This is the SDK's documented way to send a body as it is. `chat.completions.create`
        would first walk every message through its TypedDict transforms, a no-op for plain text
        messages that costs more CPU than all of chatlab's own work on a turn
        (benchmarks/README.md). Transport, retries, SSE parsing, typed chunks and errors are the
        SDK's own either way. Some OpenAI-compatible servers (older Azure API versions, some
        proxies) reject `stream_options`; then it is dropped, for good, and usage goes unreported.
        """
        while True:
            if self._ask_usage:
                body["stream_options"] = {"include_usage": True}
            try:
                async with asyncio.timeout_at(deadline):
                    return await self._client.post(
                        "/chat/completions",
                        body=body,
                        cast_to=ChatCompletion,
                        stream=True,
                        stream_cls=openai.AsyncStream[ChatCompletionChunk],
                    )
            except openai.BadRequestError as exc:
                if not (self._ask_usage and "stream_options" in str(exc)):
                    raise
                self._ask_usage = False
                body.pop("stream_options")
                log.warning("The model server rejects stream_options: usage will be unreported")

    async def stream(
        self,
        messages: Sequence[dict[str, str]],
        *,
        model: str,
        max_tokens: int,
        temperature: float,
        top_p: float,
    ) -> AsyncGenerator[StreamEvent, None]:
        deadline = asyncio.get_running_loop().time() + self._deadline
        started = False
        try:
            response = await self._open(
                {
                    "model": model,
                    "messages": list(messages),
                    "max_tokens": max_tokens,
                    "temperature": temperature,
                    "top_p": top_p,
                    "stream": True,
                },
                deadline,
            )
            started = True
            async with response as chunks:
                finish_reason: str | None = None
                usage: object = None
                iterator = aiter(chunks)
                while True:
                    # The deadline is checked around each read (not across the yield, where the
                    # consumer's own work runs), so it bounds the time the model is waited on.
                    async with asyncio.timeout_at(deadline):
                        chunk = await anext(iterator, _END)
                    if chunk is _END:
                        break
                    texts, finished, chunk_usage = _read_chunk(chunk)
                    for text in texts:
                        yield text
                    finish_reason = finished or finish_reason
                    usage = usage if chunk_usage is None else chunk_usage
        except TimeoutError as exc:
            raise ModelTimedOut(f"no complete answer within {self._deadline:g}s") from exc
        except openai.APIConnectionError as exc:
            if started and not isinstance(exc, openai.APITimeoutError):
                raise Interrupted("the connection dropped mid-answer") from exc
            raise _translate(exc, model) from exc
        except openai.OpenAIError as exc:
            raise _translate(exc, model) from exc
        except ValueError as exc:  # a chunk that is not JSON
            raise Interrupted("the server sent a malformed chunk") from exc
        if finish_reason is None:
            raise Interrupted("the stream ended without a finish reason")
        yield Finished(
            finish_reason,
            prompt_tokens=_usage_figure(usage, "prompt_tokens"),
            completion_tokens=_usage_figure(usage, "completion_tokens"),
        )


_END = object()  # the stream's end (a chunk may itself be JSON null)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_FIGURE = 2**53  # a token count beyond this is not a count (nor exact as a JSON number)


def _read_chunk(chunk: object) -> tuple[list[str], str | None, object]:
    """The text pieces, finish reason and usage of one chunk, whatever its shape.

    The SDK builds chunks without validating them, so any field may hold any JSON value.
    Content that is not text is skipped; a chunk whose structure is not a chunk's is Interrupted.
    """
    try:
        if not isinstance(chunk, ChatCompletionChunk):
            raise TypeError(f"a chunk that is a JSON {type(chunk).__name__}")
        texts: list[str] = []
        finish_reason: str | None = None
        for choice in chunk.choices or ():
            if choice.delta is not None:
                texts.extend(_texts(choice.delta.content))
            if choice.finish_reason:
                finish_reason = _finish_reason(choice.finish_reason)
        return texts, finish_reason, chunk.usage
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
        log.debug("An unreadable chunk from the model server: %.300r", chunk, exc_info=True)
        raise Interrupted("the server sent a chunk chatlab cannot read") from exc


def _texts(content: object) -> list[str]:
    """The text in a delta's content: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        pieces = [content]
    elif content is None:
        return []
    elif isinstance(content, list):
        pieces = [
            part["text"]
            for part in content
            if isinstance(part, dict)
            and part.get("type") == "text"
            and isinstance(part.get("text"), str)
        ]
        if len(pieces) < len(content):
            log.debug("Skipped %d content parts that are not text", len(content) - len(pieces))
    else:
        log.debug("Skipped a delta whose content is a JSON %s", type(content).__name__)
        return []
    # A lone surrogate (JSON allows "\\ud800") is no character: no store or Discord would take it.
    return [
        piece if piece.isascii() else _LONE_SURROGATE.sub("\ufffd", piece)
        for piece in pieces
        if piece
    ]


def _finish_reason(value: object) -> str:
    if isinstance(value, str):
        return value
    log.debug("A finish reason that is a JSON %s; taken as finished", type(value).__name__)
    return "unknown"


def _usage_figure(usage: object, name: str) -> int | None:
    """A token count the server reported, or None when it reported none worth believing."""
    value = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
    if value is None:
        return None
    if type(value) is int and 0 <= value < _MAX_FIGURE:
        return value
    log.debug("Ignored the usage figure %s=%.40r: not a token count", name, value)
    return None


def _translate(exc: openai.OpenAIError, model: str) -> LLMError:
    """Map the SDK's exceptions onto chatlab's taxonomy (order matters: subclasses first)."""
    if isinstance(exc, openai.APITimeoutError):
        return ModelTimedOut("the model server timed out")
    if isinstance(exc, openai.APIConnectionError):
        return ModelUnreachable("cannot reach the model server")
    if isinstance(exc, openai.RateLimitError):
        if _error_code(exc) == "insufficient_quota":
            return QuotaExhausted("the API account has no quota left")
        return RateLimited("rate-limited by the model server", _retry_after(exc))
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return AuthenticationFailed("the model server rejected the API key")
    if isinstance(exc, openai.NotFoundError):
        return ModelNotFound(f"the model {model!r} was not found on the server", model)
    if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        if _is_context_length(exc):
            return ContextTooLong("the prompt is longer than the model's context window")
        return Refused("the model server refused the request")
    if isinstance(exc, openai.APIStatusError):
        return ModelServerError(f"the model server failed with HTTP {exc.status_code}")
    # A chunk the SDK could not parse, or another fault mid-stream.
    return Interrupted(f"the answer was cut short ({type(exc).__name__})")


def _error_code(exc: openai.APIStatusError) -> str | None:
    code = getattr(exc, "code", None)
    if code:
        return str(code)
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    return error.get("code") if isinstance(error, dict) else None


def _is_context_length(exc: openai.APIStatusError) -> bool:
    if _error_code(exc) == "context_length_exceeded":
        return True
    text = str(exc).lower()
    return "context length" in text or "context window" in text or "too many tokens" in text


def _retry_after(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
