"""The model: the `ChatModel` protocol, the OpenAI adapter, and the errors it can raise.

`OpenAIChatModel` streams from any OpenAI-compatible server (OpenAI, Azure, Ollama, vLLM,
LM Studio) through one shared `AsyncOpenAI` client. It yields the answer's text deltas (`str`),
pieces of the model's thinking (`Reasoning`), then one `Finished` with the finish reason and the
usage the server reported (or None when it reports none).

Parameters follow the model's family (bot/families.py): reasoning models get
`max_completion_tokens` and no `temperature`/`top_p`; chat models get `max_tokens`, `temperature`
and `top_p`; `reasoning_effort` is sent whenever one is set. A server that answers 400 naming a
parameter or value it does not support is asked again without it (`max_tokens` becomes
`max_completion_tokens` and back; `temperature`, `top_p`, `reasoning_effort` are dropped), once per
parameter, and that is remembered for the model. `stream_options` (usage reporting), which some
servers reject, is dropped the same way, for the whole server.

Thinking is never answer text: `delta.reasoning_content` (DeepSeek, vLLM), `delta.reasoning`
(Ollama, OpenRouter) and a leading `<think>…</think>` block in the content (`ThinkSplitter`) are
yielded as `Reasoning`.

Every failure is one of the `LLMError` subclasses (bot/errors.py), which the Discord edge turns into
one sentence. A stream that ends without a finish reason is `Interrupted`. An overall deadline
bounds a whole answer, not only each read.

Whatever a broken or hostile server sends, the stream yields only `str`, `Reasoning` and one
`Finished`, or raises an `LLMError`: content that is not text is skipped (the text parts of a list
of content parts are kept), a usage figure that is not a plausible token count is unreported
(None), and a chunk of any other shape is `Interrupted`.

The request goes through documented SDK surfaces only: `chat.completions.with_streaming_response
.create(...)` with the body's fields in `extra_body`, and the raw response's `iter_bytes()`, split
into SSE events here (any line end; several events per read or one event over many reads) and
parsed with one JSON decode per event, no typed object per chunk. The SDK still owns transport,
auth, retries and the HTTP error classes. The overall deadline is one timer per answer that
cancels a read in progress, not a timeout context per read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

import aiohttp
import anyio
import httpx2
import openai

from bot.attachments import refuses_images
from bot.errors import (
    AuthenticationFailed,
    ContextTooLong,
    ImagesNotSupported,
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
from bot.families import Family, family_of

log = logging.getLogger(__name__)


def open_client(
    *,
    api_key: str,
    base_url: str | None,
    max_retries: int,
    timeout: float,
    http_backend: str = "httpx",
) -> openai.AsyncOpenAI:
    """The openai client chatlab talks to the model server with (close it: `async with`).

    `http_backend` "aiohttp" gives the SDK's documented aiohttp transport
    (`openai.DefaultAioHttpClient`, the `aiohttp` extra) instead of its own httpx one.
    """
    http_client = openai.DefaultAioHttpClient() if http_backend == "aiohttp" else None
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        max_retries=max_retries,
        timeout=timeout,
        http_client=http_client,
    )


@dataclass(frozen=True, slots=True)
class Reasoning:
    """A piece of the model's thinking: shown as "thinking", never stored nor sent back."""

    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    finish_reason: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # usage.completion_tokens_details.reasoning_tokens: the part of completion_tokens spent thinking
    reasoning_tokens: int | None = None


StreamEvent = str | Reasoning | Finished


class ChatModel(Protocol):
    def stream(
        self,
        messages: Sequence[dict[str, str]],
        *,
        model: str,
        max_tokens: int,
        temperature: float,
        top_p: float,
        reasoning_effort: str | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Yield the answer's text deltas and thinking, then exactly one `Finished`; or raise.

        An async generator, not any async iterator: the service may stop reading early (/stop, a
        cap, shutdown) and then calls `aclose()` so the model releases its HTTP stream at once.
        """
        ...


_NO_OVERRIDES: Mapping[str, str] = MappingProxyType({})
_TOKEN_PARAMETERS = {"max_tokens": "max_completion_tokens", "max_completion_tokens": "max_tokens"}
# What a server may refuse and chatlab can do without (the token limit is renamed instead).
_DROPPABLE = ("max_tokens", "max_completion_tokens", "temperature", "top_p", "reasoning_effort")
_UNSUPPORTED = re.compile(
    r"unsupported|unrecognized|not supported|does not support|unknown (?:parameter|field|argument)"
    r"|not permitted|not allowed",
    re.IGNORECASE,
)
_UNSUPPORTED_CODES = ("unsupported_parameter", "unsupported_value")
# Local reasoning models whose chat template opens the <think> block itself, so that the content
# starts with thinking and only `</think>` marks where the answer begins.
_TAGLESS_THINKERS = re.compile(r"deepseek-r1|(?:^|[-_/:.])r1(?:$|[-_:.])|qwq|thinking", re.I)
# The errors the SDK itself maps to APIConnectionError / APITimeoutError (openai._streaming), and
# what the SDK's aiohttp transport lets through unmapped (a reply that is not HTTP, for one).
_TRANSPORT_ERRORS = (httpx2.RequestError, ssl.SSLError, anyio.EndOfStream, aiohttp.ClientError)
# json.loads less its whitespace scans: a chunk's JSON from an index, and where it ends.
_decode_json = json.JSONDecoder().raw_decode
_DRAIN_SECONDS = 0.1  # the SDK's own bound on reading past [DONE]


class OpenAIChatModel:
    """A `ChatModel` over an `AsyncOpenAI` client that the composition root owns and closes.

    `families` maps a model name or fnmatch glob to "reasoning" or "chat" (MODEL_FAMILIES).
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        answer_deadline: float,
        families: Mapping[str, str] = _NO_OVERRIDES,
    ) -> None:
        self._client = client
        self._deadline = answer_deadline
        self._families = dict(families)
        self._ask_usage = True  # until the server turns out to reject `stream_options`
        self._refused: dict[str, frozenset[str]] = {}  # per model: parameters the server refused
        self._tagless: dict[str, bool] = {}  # per model: thinks without an opening <think>
        self._tagless_seen: dict[str, int] = {}  # answers in a row that suggested it

    def family(self, model: str) -> Family:
        return family_of(model, self._families)

    def _body(
        self,
        messages: Sequence[dict[str, str]],
        model: str,
        max_tokens: int,
        temperature: float,
        top_p: float,
        reasoning_effort: str | None,
    ) -> dict[str, object]:
        """The request's fields besides `model` and `stream`, as this model takes them."""
        family = self.family(model)
        refused = self._refused.get(model, frozenset())
        body: dict[str, object] = {"messages": list(messages)}
        token_parameter: str = family.token_parameter
        if token_parameter in refused:
            token_parameter = _TOKEN_PARAMETERS[token_parameter]
        body[token_parameter] = max_tokens
        if family.sampling:
            if "temperature" not in refused:
                body["temperature"] = temperature
            if "top_p" not in refused:
                body["top_p"] = top_p
        if (
            reasoning_effort is not None
            and family.effort
            and "reasoning_effort" not in refused
            and f"reasoning_effort={reasoning_effort}" not in refused
        ):
            body["reasoning_effort"] = reasoning_effort
        return body

    async def _open(
        self, stack: contextlib.AsyncExitStack, model: str, body: dict[str, object], deadline: float
    ) -> AsyncIterator[bytes]:
        """Send the request; the response's body as it arrives, closed with `stack`.

        `messages=[]` with the real messages in `extra_body` sends them as they are:
        `create(messages=...)` would first walk every message through the SDK's TypedDict
        transforms, a no-op for plain text that costs more CPU than chatlab's own work on a turn.
        """
        asked: set[str] = set()
        while True:
            if self._ask_usage:
                body["stream_options"] = {"include_usage": True}
            try:
                async with asyncio.timeout_at(deadline):
                    response = await stack.enter_async_context(
                        self._client.chat.completions.with_streaming_response.create(
                            model=model, messages=[], stream=True, extra_body=body
                        )
                    )
                return response.iter_bytes()
            except openai.BadRequestError as exc:
                if self._ask_usage and "stream_options" in str(exc):
                    self._ask_usage = False
                    body.pop("stream_options")
                    log.warning("The model server rejects stream_options: usage will be unreported")
                    continue
                parameter = None if _is_context_length(exc) else _refused_parameter(exc, body)
                if parameter is None or parameter in asked:
                    raise
                asked.add(parameter)
                self._do_without(model, parameter, body)

    def _do_without(self, model: str, parameter: str, body: dict[str, object]) -> None:
        value = body.pop(parameter)
        # An effort level is refused as a value: the model may take the others (one channel's
        # "minimal" must not turn effort off for every channel on that model).
        remembered = f"{parameter}={value}" if parameter == "reasoning_effort" else parameter
        self._refused[model] = self._refused.get(model, frozenset()) | {remembered}
        instead = _TOKEN_PARAMETERS.get(parameter)
        if instead is not None:
            body[instead] = value
            log.info(
                "The model server refuses %s for model %r: sending %s instead from now on",
                parameter,
                model,
                instead,
            )
        else:
            log.info(
                "The model server refuses %s=%r for model %r: asking without it from now on",
                parameter,
                value,
                model,
            )

    async def stream(
        self,
        messages: Sequence[dict[str, str]],
        *,
        model: str,
        max_tokens: int,
        temperature: float,
        top_p: float,
        reasoning_effort: str | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        deadline = asyncio.get_running_loop().time() + self._deadline
        body = self._body(messages, model, max_tokens, temperature, top_p, reasoning_effort)
        tagless = self._tagless.get(model)
        splitter = ThinkSplitter(
            tagless=bool(_TAGLESS_THINKERS.search(model)) if tagless is None else tagless
        )
        started = False
        finish_reason: str | None = None
        usage: object = None
        # One timer for the whole answer; it bites only while a read is awaited (not across a
        # yield, where the consumer's own work runs), so it bounds the time the model is waited on.
        limit = _Deadline(deadline)
        # The task reading the answer: an async generator is driven by its consumer's task (a
        # close from elsewhere reads nothing under the deadline). Looked up once: per read, that
        # lookup alone would cost ~5% of an event's CPU.
        reader = asyncio.current_task()
        try:
            async with contextlib.AsyncExitStack() as stack:
                stack.callback(limit.close)
                chunks = await self._open(stack, model, body, deadline)
                started = True
                read = chunks.__anext__
                buffer: bytes | bytearray = b""
                at = 0  # where the unread part of `buffer` starts
                seek = 0  # where a blank line may start in it (what is before was searched)
                held_cr = False  # a CR that ended a read: a line end, with the LF that may follow
                ended = False
                while True:
                    # An event ends at a blank line; several may come in one read, or one in many.
                    end = buffer.find(b"\n\n", seek)
                    if end >= 0:
                        block = buffer[at:end]
                        at = seek = end + 2
                    elif not ended:
                        if limit.expired:
                            raise TimeoutError
                        limit.task = reader
                        try:
                            received = await read()
                        except StopAsyncIteration:
                            received = b""
                            ended = True
                        except asyncio.CancelledError:
                            if limit.fired and limit.caught():
                                raise TimeoutError from None
                            raise
                        finally:
                            limit.task = None
                        if limit.fired and limit.caught():
                            raise TimeoutError
                        if held_cr or b"\r" in received:  # SSE's other line ends, CRLF and CR
                            if held_cr:
                                received = b"\r" + received
                            held_cr = received.endswith(b"\r") and not ended
                            if held_cr:
                                received = received[:-1]
                            received = received.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                        rest = len(buffer) - at
                        if rest:  # an event spread over reads: linear time however many
                            if isinstance(buffer, bytearray):
                                del buffer[:at]
                            else:
                                buffer = bytearray(buffer[at:])
                            buffer += received
                            at, seek = 0, rest - 1
                        else:
                            buffer = received
                            at = seek = 0
                        continue
                    elif at < len(buffer):
                        # The end of the stream: a last event may lack its blank line.
                        block = buffer[at:]
                        at = len(buffer)
                    else:
                        break
                    # One `data: ` line per event in practice; fields other than data (event, id,
                    # retry, comments) mean nothing here.
                    if block.startswith(b"data: ") and b"\n" not in block:
                        text, start = block.decode("utf-8", "replace"), 6
                    else:
                        pieces = [
                            line[6:] if line[5:6] == b" " else line[5:]
                            for line in block.split(b"\n")
                            if line.startswith(b"data:")
                        ]
                        if not pieces:
                            continue
                        text, start = b"\n".join(pieces).decode("utf-8", "replace"), 0
                    if text.startswith("[DONE]", start):
                        # Read the body to its end (at once, in practice) so that the HTTP/1.1
                        # connection goes back to the pool instead of being closed.
                        if not ended:
                            with contextlib.suppress(TimeoutError, *_TRANSPORT_ERRORS):
                                async with asyncio.timeout(_DRAIN_SECONDS):
                                    async for _ in chunks:
                                        pass
                        break
                    try:
                        chunk, end = _decode_json(text, start)
                    except ValueError:
                        end = -1
                    if end != len(text):  # whitespace around it, or not JSON (which raises)
                        chunk = json.loads(text[start:])
                    piece = _plain_text(chunk)
                    if piece is not None:  # the usual chunk: some answer text, nothing else
                        if not piece:
                            pass
                        elif splitter.takes(piece):
                            yield piece
                        else:
                            for event in splitter.feed(piece):
                                yield event
                        chunk_usage = chunk.get("usage")
                        if chunk_usage is not None:
                            usage = chunk_usage
                        continue
                    texts, thoughts, finished, chunk_usage = _read_chunk(chunk)
                    for thought in thoughts:
                        splitter.separately_reasoned()
                        yield Reasoning(thought)
                    for piece in texts:
                        if splitter.takes(piece):
                            yield piece
                        else:
                            for event in splitter.feed(piece):
                                yield event
                    finish_reason = finished or finish_reason
                    usage = usage if chunk_usage is None else chunk_usage
        except TimeoutError as exc:
            raise ModelTimedOut(f"no complete answer within {self._deadline:g}s") from exc
        except httpx2.TimeoutException as exc:  # a read timeout mid-answer
            if _misreported_timeout(exc):
                raise Interrupted("the connection dropped mid-answer") from exc
            raise ModelTimedOut("the model server timed out") from exc
        except _TRANSPORT_ERRORS as exc:
            if not started:  # only the aiohttp transport's unmapped errors get here unwrapped
                raise ModelUnreachable("cannot reach the model server") from exc
            raise Interrupted("the connection dropped mid-answer") from exc
        except openai.APIConnectionError as exc:
            timed_out = isinstance(exc, openai.APITimeoutError) and not _misreported_timeout(exc)
            if timed_out:
                raise ModelTimedOut("the model server timed out") from exc
            if started:
                raise Interrupted("the connection dropped mid-answer") from exc
            raise ModelUnreachable("cannot reach the model server") from exc
        except openai.OpenAIError as exc:
            raise _translate(exc, model) from exc
        except ValueError as exc:  # a chunk that is not JSON
            raise Interrupted("the server sent a malformed chunk") from exc
        if finish_reason is None:
            raise Interrupted("the stream ended without a finish reason")
        for event in splitter.end(finish_reason):
            yield event
        self._learn_thinking(model, splitter)
        yield Finished(
            finish_reason,
            prompt_tokens=_usage_figure(usage, "prompt_tokens"),
            completion_tokens=_usage_figure(usage, "completion_tokens"),
            reasoning_tokens=_usage_figure(
                _field(usage, "completion_tokens_details"), "reasoning_tokens"
            ),
        )

    def _learn_thinking(self, model: str, splitter: ThinkSplitter) -> None:
        """Remember whether `model` writes its thinking without an opening <think> tag."""
        learned = splitter.learned_tagless
        if learned is None or self._tagless.get(model) == learned:
            return
        if learned:  # one answer that talks about the tag is not enough: two in a row
            seen = self._tagless_seen[model] = self._tagless_seen.get(model, 0) + 1
            if seen < TAGLESS_EVIDENCE:
                return
        self._tagless_seen.pop(model, None)
        self._tagless[model] = learned
        if learned:
            log.info(
                "Model %r writes its thinking without an opening <think> tag; from now on it is "
                "told apart from the answer",
                model,
            )
        else:
            log.info("Model %r wrote no tagless thinking; its answers stream at once again", model)


class _Deadline:
    """An answer's overall deadline: one timer that cancels a read it catches in progress.

    Cheaper than a timeout context per read: arming and disarming is setting `task`. Past the
    deadline, the next read raises TimeoutError at once; a read in progress is cancelled and its
    CancelledError becomes TimeoutError (`caught`), unless the task is also cancelled otherwise.
    """

    __slots__ = ("_cancelling", "_handle", "expired", "fired", "task")

    def __init__(self, when: float) -> None:
        self.expired = False  # the deadline has passed
        self.fired = False  # ... and cancelled `task` during a read
        self.task: asyncio.Task[object] | None = None  # reading now, in this task
        self._cancelling = 0
        self._handle = asyncio.get_running_loop().call_at(when, self._expire)

    def _expire(self) -> None:
        self.expired = True
        task = self.task
        if task is not None and not self.fired:
            self.fired = True
            self._cancelling = task.cancelling()
            task.cancel()

    def caught(self) -> bool:
        """After a read the timer cancelled: True unless the task was also cancelled otherwise."""
        self.fired = False
        task = asyncio.current_task()
        return task is None or task.uncancel() <= self._cancelling

    def close(self) -> None:
        self._handle.cancel()


# -- thinking inside the content -----------------------------------------------------------------

_OPEN = "<think>"
_CLOSE = "</think>"
_START, _THINK, _TAGLESS, _TRIM, _ANSWER = range(5)
# A tagless thinker ends its thinking with `</think>` on a line of its own; an answer that talks
# about the tag writes it inline (`like this`). Two such answers in a row make the rule.
_STRAY_CLOSE = re.compile(r"\n[ \t]*</think>")
_STRAY_CARRY = len(_CLOSE) + 8  # enough of a piece's end to find a tag split across pieces
TAGLESS_EVIDENCE = 2


class ThinkSplitter:
    """Separates a leading `<think>…</think>` block from the answer in streamed content.

    Tags may be split across pieces at any character. Only a block at the start of the content
    counts (after whitespace): a `<think>` later on is answer text (code, or prose about tags).
    The whitespace after `</think>` is trimmed.

    With `tagless`, for models whose template opens the block itself, content before a `</think>`
    is thinking even without `<think>`; if the content ends with no `</think>` after a normal stop,
    it was the answer after all and is yielded as such at the end (a cut answer, finish reason
    "length", stays thinking: the budget went on it). Without `tagless`, a `</think>` in an answer
    that had no `<think>` before it is noted (`learned_tagless`) so the adapter can switch the model
    over for its next answers.
    """

    __slots__ = ("_held", "_scan", "_state", "_tagless", "_tagless_text", "learned_tagless")

    def __init__(self, *, tagless: bool = False) -> None:
        self._state = _START
        self._held = ""
        self._tagless = tagless
        self._tagless_text: list[str] = []
        # The answer's last characters while looking for a stray </think>; None: not looking.
        self._scan: str | None = "\n"  # the content's start counts as a line start
        self.learned_tagless: bool | None = None

    @property
    def passes(self) -> bool:
        """True once every further piece is answer text as it is (no scan left to do)."""
        return self._state == _ANSWER and self._scan is None

    def takes(self, text: str) -> bool:
        """True if `text` is answer text as it is (noted as such); else call `feed` with it."""
        if self._state != _ANSWER:
            return False
        if self._scan is not None:
            self._look_for_stray_close(text)
        return True

    def separately_reasoned(self) -> None:
        """The server sends thinking in its own field: the content is not thinking."""
        if self._state == _START:
            self._tagless = False

    def feed(self, text: str) -> list[str | Reasoning]:
        state = self._state
        if state == _ANSWER:
            self._look_for_stray_close(text)
            return [text]
        if state == _START:
            held = self._held + text
            stripped = held.lstrip()
            if stripped.startswith(_OPEN):
                self._state, self._held = _THINK, ""
                return self.feed(stripped[len(_OPEN) :])
            if not stripped or _OPEN.startswith(stripped):
                self._held = held  # whitespace, or the start of a tag: wait for more
                return []
            self._held = ""
            if self._tagless:
                self._state = _TAGLESS
                return self.feed(held)
            self._state = _ANSWER
            self._look_for_stray_close(held)
            return [held]
        if state == _TRIM:
            answer = text.lstrip()
            if not answer:
                return []
            self._state, self._scan = _ANSWER, None
            return [answer]
        # Thinking (_THINK, _TAGLESS): up to </think>, holding back what may begin the tag.
        if state == _TAGLESS:
            self._tagless_text.append(text)
        buffer = self._held + text
        end = buffer.find(_CLOSE)
        if end >= 0:
            thought = buffer[:end]
            self._held = ""
            self._state = _TRIM
            if state == _TAGLESS:
                self.learned_tagless = True
                self._tagless_text.clear()
            rest = self.feed(buffer[end + len(_CLOSE) :])
            return [Reasoning(thought), *rest] if thought else rest
        keep = _partial_tag(buffer, _CLOSE)
        self._held = buffer[len(buffer) - keep :] if keep else ""
        thought = buffer[: len(buffer) - keep]
        return [Reasoning(thought)] if thought else []

    def end(self, finish_reason: str) -> list[str | Reasoning]:
        """What is still held when the stream has finished with `finish_reason`."""
        held, self._held = self._held, ""
        if self._state == _TAGLESS:
            if finish_reason == "length":
                return [Reasoning(held)] if held else []
            self.learned_tagless = False
            return ["".join(self._tagless_text)]
        if not held:
            return []
        return [Reasoning(held)] if self._state == _THINK else [held]

    def _look_for_stray_close(self, text: str) -> None:
        """While the answer shows no `<think>`, a `</think>` says the model thinks tagless."""
        scan = self._scan
        if scan is None:
            return
        window = scan + text
        if "<" not in window:  # no tag in it (the usual case)
            self._scan = window[-_STRAY_CARRY:]
        elif _OPEN in window:
            self._scan = None
        elif _STRAY_CLOSE.search(window):
            self.learned_tagless = True
            self._scan = None
        else:
            self._scan = window[-_STRAY_CARRY:]


def _partial_tag(text: str, tag: str) -> int:
    """The length of the longest end of `text` that is a proper beginning of `tag`."""
    for length in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:length]):
            return length
    return 0


# -- reading chunks ----------------------------------------------------------------------------

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_FIGURE = 2**53  # a token count beyond this is not a count (nor exact as a JSON number)


def _plain_text(chunk: object) -> str | None:
    """The text of the usual chunk: one choice, not finished, whose delta is only plain text.

    None for any other chunk, which `_read_chunk` then reads (the same result, only slower).
    """
    if type(chunk) is dict and not chunk.get("error"):
        choices = chunk.get("choices")
        if type(choices) is list and len(choices) == 1:
            choice = choices[0]
            if type(choice) is dict and not choice.get("finish_reason"):
                delta = choice.get("delta")
                if (
                    type(delta) is dict
                    and not delta.get("reasoning_content")
                    and not delta.get("reasoning")
                ):
                    content = delta.get("content")
                    if type(content) is str and content.isascii():
                        return content
    return None


def _read_chunk(chunk: object) -> tuple[list[str], list[str], str | None, object]:
    """The answer text, thinking, finish reason and usage of one chunk, whatever its shape.

    Any field may hold any JSON value. Content that is not text is skipped; a chunk whose
    structure is not a chunk's, or that carries an error, is Interrupted.
    """
    try:
        if type(chunk) is not dict:
            raise TypeError(f"a chunk that is a JSON {type(chunk).__name__}")
        if chunk.get("error"):
            log.warning("The model server reported an error mid-answer: %.300r", chunk["error"])
            raise Interrupted("the model server reported an error mid-answer")
        texts: list[str] = []
        thoughts: list[str] = []
        finish_reason: str | None = None
        choices = chunk.get("choices")
        if choices:
            if type(choices) is not list:
                raise TypeError(f"choices that are a JSON {type(choices).__name__}")
            for choice in choices:
                if type(choice) is not dict:
                    raise TypeError(f"a choice that is a JSON {type(choice).__name__}")
                delta = choice.get("delta")
                if delta is not None:
                    if type(delta) is not dict:
                        raise TypeError(f"a delta that is a JSON {type(delta).__name__}")
                    content = delta.get("content")
                    if content is not None:
                        texts.extend(_texts(content))
                    # DeepSeek and vLLM say reasoning_content, Ollama and OpenRouter reasoning;
                    # a server sending both sends the same text twice.
                    thinking = delta.get("reasoning_content") or delta.get("reasoning")
                    if thinking:
                        thoughts.extend(_texts(thinking))
                reason = choice.get("finish_reason")
                if reason:
                    finish_reason = _finish_reason(reason)
        return texts, thoughts, finish_reason, chunk.get("usage")
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


def _field(value: object, name: str) -> object:
    return value.get(name) if isinstance(value, dict) else None


def _usage_figure(usage: object, name: str) -> int | None:
    """A token count the server reported, or None when it reported none worth believing."""
    value = _field(usage, name)
    if value is None:
        return None
    if type(value) is int and 0 <= value < _MAX_FIGURE:
        return value
    log.debug("Ignored the usage figure %s=%.40r: not a token count", name, value)
    return None


# -- errors ------------------------------------------------------------------------------------


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
        message = _error(exc).get("message")
        if refuses_images(
            message if isinstance(message, str) else str(exc), _error(exc).get("param")
        ):
            return ImagesNotSupported(f"the model {model!r} takes no images", model)
        return Refused("the model server refused the request")
    if isinstance(exc, openai.APIStatusError):
        return ModelServerError(f"the model server failed with HTTP {exc.status_code}")
    # Another fault mid-stream.
    return Interrupted(f"the answer was cut short ({type(exc).__name__})")


def _misreported_timeout(exc: BaseException) -> bool:
    """True if `exc` is a timeout only by the SDK's aiohttp transport's mistake.

    That transport (openai 3.57, `openai.DefaultAioHttpClient`) maps every aiohttp connection
    error to httpx's ConnectTimeout: a refused or reset connection, a DNS or TLS failure, a
    server that hung up. Its own cause tells: an aiohttp connection error that is no timeout.
    """
    cause = exc.__cause__
    for _ in range(4):  # APITimeoutError <- httpx2.ConnectTimeout <- the aiohttp error
        if cause is None:
            return False
        if isinstance(cause, aiohttp.ClientConnectionError):
            return not isinstance(cause, aiohttp.ServerTimeoutError)
        cause = cause.__cause__
    return False


def _error(exc: openai.APIStatusError) -> dict[str, object]:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    return error if isinstance(error, dict) else {}


def _error_code(exc: openai.APIStatusError) -> str | None:
    code = getattr(exc, "code", None)
    if code:
        return str(code)
    code = _error(exc).get("code")
    return code if isinstance(code, str) else None


def _refused_parameter(exc: openai.APIStatusError, body: Mapping[str, object]) -> str | None:
    """The parameter of `body` that a 400 says the model does not support, if it names one.

    OpenAI names it in `param` with the code unsupported_parameter or unsupported_value; other
    servers only in the message ("Unrecognized request argument supplied: top_p").
    """
    error = _error(exc)
    message = error.get("message")
    text = message if isinstance(message, str) else str(exc)
    param = error.get("param")
    code = _error_code(exc)
    named_in_param = param in body and param in _DROPPABLE
    if named_in_param and (code in _UNSUPPORTED_CODES or _UNSUPPORTED.search(text)):
        return str(param)
    if not _UNSUPPORTED.search(text):
        return None
    named = [
        (match.start(), name)
        for name in _DROPPABLE
        if name in body and (match := re.search(rf"\b{name}\b", text))
    ]
    return min(named)[1] if named else None


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
