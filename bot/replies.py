"""How an answer reaches the member: streamed, paced, split, and every failure as one sentence.

`StreamedReply` knows nothing of Discord: it writes through a `ReplySink` (send a new message,
edit one) that the edge provides. The first words go out as soon as they arrive; after that each
reply is re-rendered at most once per `interval` seconds (a timer per reply, not a global one),
so each of its messages is edited at most that often. Past the message limit the answer
continues in a new message, split by `split_message` (code fences closed and reopened). While
the answer grows the last message carries an in-progress marker; the final render removes it.

At most `max_messages` messages are shown, and a render splits only what they can hold, so an
answer of any length (a server that ignores max_tokens) costs each render the same bounded work.
An answer that ends without being kept (`fail`, `stopped`) leaves its shown words on screen,
marked as not kept, above the reason.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Generic, Protocol, TypeVar

from bot.chat import Answer
from bot.errors import (
    AuthenticationFailed,
    ChatError,
    ContextTooLong,
    DatabaseMissing,
    EmptyAnswer,
    EmptyQuestion,
    Interrupted,
    InvalidModel,
    LLMError,
    ModelNotFound,
    ModelServerError,
    ModelTimedOut,
    ModelUnreachable,
    PromptTooLong,
    QuestionTooLong,
    QuotaExhausted,
    RateLimited,
    Refused,
    ShuttingDown,
    StorageFull,
    StoreError,
)
from bot.text import DISCORD_LIMIT, closing_fence, split_message, utf16_len

log = logging.getLogger(__name__)

IN_PROGRESS = " ⏳"
EDIT_INTERVAL = 1.0
# An answer longer than this many messages is not posted in full: a channel is not a file.
MAX_MESSAGES = 8
TOO_LONG_NOTE = "\n-# The answer is too long to show here in full; /export has all of it."
SHOWN_IN_PART_NOTE = "\n-# The answer is too long to show here in full."
CUT_OFF_NOTE = "-# ✂️ Cut off — these words were not kept in the conversation."
STOPPED_MARK = "⏹️"
CUT_NOTE = (
    "The model server kept writing past the reply limit; I cut the answer at {chars:,} characters."
)


Handle = TypeVar("Handle")


class ReplySink(Protocol[Handle]):
    async def send(self, text: str) -> Handle:
        """Post a new message."""
        ...

    async def edit(self, handle: Handle, text: str) -> Handle:
        """Change a message; returns its handle (a new one if it had to be re-sent)."""
        ...


class StreamedReply(Generic[Handle]):
    """One answer on screen, however long the model makes it.

    A render shows at most `max_messages` messages, so only the answer's beginning is kept here
    (enough to fill them, and one more to know there is more): an answer of any length costs a
    render the same bounded work, and an append costs no more than that beginning.
    """

    def __init__(
        self,
        sink: ReplySink[Handle],
        *,
        header: str = "",
        interval: float = EDIT_INTERVAL,
        limit: int = DISCORD_LIMIT,
        max_messages: int = MAX_MESSAGES,
    ) -> None:
        self._sink = sink
        self._header = header
        self._interval = interval
        self._limit = limit
        self._max_messages = max_messages
        # Each message holds at most `limit` characters of the answer: a render never needs more.
        self._keep = (max_messages + 1) * limit
        self._head = ""  # the answer's first `_keep` characters
        self._more = False  # the answer is longer than `_head`
        self._sent: list[tuple[Handle, str]] = []
        self._pacer: asyncio.Task[None] | None = None
        self._dirty = False
        self._write_lock = asyncio.Lock()

    async def add(self, delta: str) -> None:
        """Append a piece of the answer; the first piece is sent at once, later ones paced."""
        if self._more:
            return  # nothing more could be shown
        room = self._keep - len(self._head)
        self._head += delta[:room]
        self._more = len(delta) > room
        if self._pacer is None:
            # Paced from here on, even if this first write fails.
            self._pacer = asyncio.create_task(self._pace(), name="chatlab-reply-pacer")
            await self._render(final=False)
        else:
            self._dirty = True

    async def finish(self, text: str, footer: str = "") -> None:
        """Render the complete answer (authoritative over what was streamed), marker removed."""
        await self._stop_pacer()
        self._head, self._more = text[: self._keep], len(text) > self._keep
        await self._render(final=True, footer=footer)

    async def fail(self, sentence: str) -> None:
        """End the reply with an explanation instead of an answer.

        Words already shown stay, marked as not kept: the conversation does not hold them.
        """
        await self._stop_pacer()
        await self._render_ended(CUT_OFF_NOTE, f"⚠️ {sentence}")

    async def stopped(self, note: str) -> None:
        """End the reply because a member stopped it: what was shown stays, marked with `note`."""
        await self._stop_pacer()
        await self._render_ended(f"-# {STOPPED_MARK} {note}", "")

    async def notice(self, text: str) -> None:
        """Show a status line (e.g. waiting in the queue) before any answer has arrived."""
        if not self._head:
            async with self._write_lock:
                await self._write([self._header + text])

    async def _render_ended(self, mark: str, sentence: str) -> None:
        """The final render of an answer that was not kept: `mark` under any words shown."""
        if self._head.strip():
            footer = f"\n{mark}" + (f"\n\n{sentence}" if sentence else "")
        else:
            self._head, self._more = "", False
            footer = sentence or mark
        await self._render(final=True, footer=footer, too_long=SHOWN_IN_PART_NOTE)

    async def _pace(self) -> None:
        while True:  # one timer per streaming reply; it renders only when the text grew
            await asyncio.sleep(self._interval)
            if self._dirty:
                self._dirty = False
                await self._render(final=False)

    async def _stop_pacer(self) -> None:
        if self._pacer is not None:
            self._pacer.cancel()
            try:
                await self._pacer
            except asyncio.CancelledError:
                pass
            except Exception:  # the final render writes everything again, and reports failure
                log.warning("A streaming update failed; the final render will retry", exc_info=True)
            self._pacer = None

    async def _render(
        self, *, final: bool, footer: str = "", too_long: str = TOO_LONG_NOTE
    ) -> None:
        marker = "" if final else IN_PROGRESS
        room = self._limit - utf16_len(marker)
        text = self._header + self._head
        chunks: list[str] = []
        if not self._more:
            if footer:  # a footer under an answer cut inside a code block goes below the block
                text += closing_fence(text)
            chunks = split_message(text + footer, room, max_chunks=self._max_messages + 1)
        if self._more or len(chunks) > self._max_messages:
            chunks = split_message(text, room, max_chunks=self._max_messages)
            tail = too_long + footer
            chunks[-1] = split_message(chunks[-1], room - utf16_len(tail), max_chunks=1)[0] + tail
        if not chunks:
            if final:
                return
            chunks = [""]
        if marker:
            chunks[-1] += marker
        async with self._write_lock:
            await self._write(chunks)

    async def _write(self, chunks: list[str]) -> None:
        for index, chunk in enumerate(chunks):
            if index < len(self._sent):
                handle, shown = self._sent[index]
                if chunk != shown:
                    self._sent[index] = (await self._sink.edit(handle, chunk), chunk)
            else:
                self._sent.append((await self._sink.send(chunk), chunk))


def queue_notice(ahead: int) -> str:
    questions = "question" if ahead == 1 else "questions"
    return f"⏳ Waiting for {ahead} earlier {questions} in this channel to be answered…"


def answer_footer(answer: Answer, max_tokens: int) -> str:
    """Notes under a complete answer, when there is something the member should know."""
    notes = []
    if answer.truncated:
        notes.append(f"The answer hit the reply limit ({max_tokens} tokens); ask me to go on.")
    if answer.rounds_dropped:
        rounds = "round" if answer.rounds_dropped == 1 else "rounds"
        notes.append(
            f"I left out the {answer.rounds_dropped} oldest {rounds} to fit the model's context."
        )
    return "\n" + "".join(f"\n-# {note}" for note in notes) if notes else ""


def cut_note(chars: int) -> str:
    """The line under an answer chatlab cut at `chars` characters (`-# `, like answer_footer's)."""
    return "\n-# " + CUT_NOTE.format(chars=chars)


def explain(error: BaseException) -> str:
    """One friendly sentence: what happened and what to do."""
    match error:
        case RateLimited(retry_after=seconds) if seconds and seconds <= 120:
            return f"The model is rate-limited; try again in about {round(seconds)} seconds."
        case RateLimited():
            return "The model is rate-limited right now; try again in a minute."
        case QuotaExhausted():
            return "The model account has run out of quota; the bot's owner needs to check billing."
        case ContextTooLong():
            return (
                "This conversation is too long for the model even after dropping old rounds; "
                "ask a shorter question or use /reset."
            )
        case QuestionTooLong(needed=needed, available=available):
            return (
                f"That question is too long for the model ({needed} tokens, {available} "
                "available); please shorten it."
            )
        case ModelTimedOut():
            return "The model took too long to answer; please try again."
        case ModelUnreachable():
            return "I can't reach the model server right now; please try again in a few minutes."
        case AuthenticationFailed():
            return "The model server rejected the bot's API key; the bot's owner needs to fix it."
        case ModelNotFound(model=model):
            name = f" `{model}`" if model else ""
            return (
                f"The model{name} isn't available on the server; a moderator can pick another "
                "with /model."
            )
        case Refused():
            return "The model refused this request; try rephrasing it."
        case ModelServerError():
            return "The model server had an error; please try again in a moment."
        case Interrupted():
            return "The answer was cut off before it finished and was not saved; please ask again."
        case EmptyAnswer():
            return "The model returned an empty answer; please try again or rephrase."
        case LLMError():
            return "The model could not answer; please try again."
        case EmptyQuestion():
            return "There's no question there — write it after the mention or in /ask."
        case PromptTooLong(limit=limit):
            return f"That system prompt is too long; keep it under {limit} characters."
        case InvalidModel(choices=choices):
            return f"Unknown model; choose one of: {', '.join(choices)}."
        case ShuttingDown():
            return "I'm restarting; please ask again in a minute."
        case ChatError():
            return str(error).capitalize() + "."
        case StorageFull():
            return (
                "I couldn't save this conversation because the bot's disk is full; "
                "nothing was lost, please try again later."
            )
        case DatabaseMissing():
            return (
                "I can't save conversations right now (my database file is gone); "
                "the bot's owner needs to restart me."
            )
        case StoreError():
            return "I couldn't save this conversation (a database error); please try again later."
    return "Something went wrong on my side; please try again."
