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
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

import discord

from bot.chat import Answer
from bot.messages import text
from cogs._discord import NO_PINGS
from cogs._text import DISCORD_LIMIT, closing_fence, split_message, utf16_len

log = logging.getLogger(__name__)

FINAL_RETRY_DELAY = 2.0  # seconds, then twice that: the final render is worth a second try

IN_PROGRESS = " ⏳"
EDIT_INTERVAL = 1.0
# An answer longer than this many messages is not posted in full: a channel is not a file.
MAX_MESSAGES = 8

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
        locale: str | None = None,
    ) -> None:
        self._sink = sink
        self._locale = locale  # the language of the notes under the answer
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
        self._thinking_since: float | None = None  # the model thinks before it answers

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

    async def thinking(self, since: float) -> None:
        """Show that the model is thinking ("Thinking… 12 s"), updated at the usual edit pace,
        until its answer replaces it."""
        self._thinking_since = since
        if self._pacer is None:
            self._pacer = asyncio.create_task(self._pace(), name="chatlab-reply-pacer")
            await self._render(final=False)

    async def finish(self, answer: str, footer: str = "") -> None:
        """Render the complete answer (authoritative over what was streamed), marker removed."""
        await self._stop_pacer()
        self._head, self._more = answer[: self._keep], len(answer) > self._keep
        await self._render(final=True, footer=footer)

    async def fail(self, sentence: str) -> None:
        """End the reply with an explanation instead of an answer.

        Words already shown stay, marked as not kept: the conversation does not hold them.
        """
        await self._stop_pacer()
        await self._render_ended(self._note("reply.cut_off"), f"⚠️ {sentence}")

    async def stopped(self, note: str) -> None:
        """End the reply because a member stopped it: what was shown stays, marked with `note`."""
        await self._stop_pacer()
        await self._render_ended(self._note("reply.stopped", note=note), "")

    async def notice(self, line: str) -> None:
        """Show a status line (e.g. waiting in the queue) before any answer has arrived."""
        if not self._head:
            async with self._write_lock:
                await self._write([self._header + line])

    async def _render_ended(self, mark: str, sentence: str) -> None:
        """The final render of an answer that was not kept: `mark` under any words shown."""
        if self._head.strip():
            footer = f"\n{mark}" + (f"\n\n{sentence}" if sentence else "")
        else:
            self._head, self._more = "", False
            footer = sentence or mark
        await self._render(final=True, footer=footer, too_long="reply.shown_in_part")

    def _note(self, key: str, **params: object) -> str:
        """A small-text line (Discord's `-# `) from the catalogue, in the reply's language."""
        return "-# " + text(self._locale, key, **params)

    async def _pace(self) -> None:
        while True:  # one timer per streaming reply; it renders only when the text grew
            await asyncio.sleep(self._interval)
            if self._dirty or (self._thinking_since is not None and not self._head):
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
        self, *, final: bool, footer: str = "", too_long: str = "reply.too_long"
    ) -> None:
        marker = "" if final else IN_PROGRESS
        room = self._limit - utf16_len(marker)
        body = self._header + self._head
        if not final and not self._head and self._thinking_since is not None:
            elapsed = round(asyncio.get_running_loop().time() - self._thinking_since)
            body += self._note("reply.thinking", seconds=elapsed)
        chunks: list[str] = []
        if not self._more:
            if footer:  # a footer under an answer cut inside a code block goes below the block
                body += closing_fence(body)
            chunks = split_message(body + footer, room, max_chunks=self._max_messages + 1)
        if self._more or len(chunks) > self._max_messages:
            chunks = split_message(body, room, max_chunks=self._max_messages)
            tail = "\n" + self._note(too_long) + footer
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


def queue_notice(ahead: int, locale: str | None) -> str:
    return text(locale, "ask.queue_notice", count=ahead)


def answer_footer(answer: Answer, max_tokens: int, locale: str | None) -> str:
    """Notes under a complete answer, when there is something the member should know."""
    notes = []
    if answer.truncated:
        notes.append(text(locale, "reply.truncated", max_tokens=max_tokens))
    if answer.rounds_dropped:
        notes.append(text(locale, "reply.rounds_dropped", count=answer.rounds_dropped))
    if answer.cut:
        notes.append(text(locale, "reply.cut", chars=len(answer.text)))
    if answer.thought_seconds is not None:
        seconds = max(1, round(answer.thought_seconds))
        if answer.reasoning_tokens:
            tokens = answer.reasoning_tokens
            notes.append(text(locale, "reply.thought_tokens", seconds=seconds, tokens=tokens))
        else:
            notes.append(text(locale, "reply.thought", seconds=seconds))
    return "\n" + "".join(f"\n-# {note}" for note in notes) if notes else ""


class ChannelSink:
    """Writes a reply into a channel: the first message replies to the question."""

    def __init__(self, question: discord.Message) -> None:
        self._question = question
        self._channel = question.channel

    async def send(self, text: str) -> discord.Message:
        if self._question is not None:
            question, self._question = self._question, None
            try:
                return await question.reply(text, mention_author=False, allowed_mentions=NO_PINGS)
            except discord.HTTPException:  # the question was deleted meanwhile
                pass
        return await self._channel.send(text, allowed_mentions=NO_PINGS)

    async def edit(self, handle: discord.Message, text: str) -> discord.Message:
        try:
            return await handle.edit(content=text, allowed_mentions=NO_PINGS)
        except discord.NotFound:
            log.info("A reply message was deleted while streaming; sending it again")
            return await self._channel.send(text, allowed_mentions=NO_PINGS)


class InteractionSink:
    """Writes a reply into a deferred interaction: the original response, then follow-ups.

    An interaction's token lasts 15 minutes; past that (or if a message was deleted) the reply
    continues as ordinary channel messages.
    """

    def __init__(self, interaction: discord.Interaction) -> None:
        self._interaction = interaction
        self._original_used = False

    async def send(self, text: str) -> discord.abc.Snowflake:
        try:
            if not self._original_used:
                self._original_used = True
                return await self._interaction.edit_original_response(
                    content=text, allowed_mentions=NO_PINGS
                )
            return await self._interaction.followup.send(text, wait=True, allowed_mentions=NO_PINGS)
        except (discord.NotFound, discord.Forbidden, discord.HTTPException) as exc:
            return await self._fallback(text, exc)

    async def edit(self, handle: discord.abc.Snowflake, text: str) -> discord.abc.Snowflake:
        try:
            return await handle.edit(content=text, allowed_mentions=NO_PINGS)  # type: ignore[attr-defined]
        except discord.HTTPException as exc:
            return await self._fallback(text, exc)

    async def _fallback(self, text: str, exc: discord.HTTPException) -> discord.Message:
        channel = self._interaction.channel
        if exc.status >= 500 or not isinstance(channel, discord.abc.Messageable):
            raise exc
        log.info("Interaction reply unavailable (%s); continuing in the channel", exc.status)
        return await channel.send(text, allowed_mentions=NO_PINGS)


class AnswerDisplay:
    """Runs the Discord writes of one answer. A failure never stops the conversation: the answer
    is still completed and stored. Without permission to write, it stops trying; after another
    failure (a rate limit, a Discord error) later writes — the final render rewrites every
    message — try again. One log line either way."""

    def __init__(self, channel_id: int) -> None:
        self._channel_id = channel_id
        self._logged = False
        self._forbidden = False

    async def __call__(
        self, write: Callable[[], Awaitable[object]], *, courtesy: bool = False, tries: int = 1
    ) -> None:
        for attempt in range(1, tries + 1):
            if self._forbidden:
                return
            try:
                await write()
                return
            except discord.HTTPException as exc:
                if courtesy:  # typing, reactions: nice to have
                    log.debug("Skipped a courtesy in channel %s: %s", self._channel_id, exc)
                    return
                self._failed(exc)
            if attempt < tries:
                await asyncio.sleep(FINAL_RETRY_DELAY * attempt)

    def _failed(self, exc: discord.HTTPException) -> None:
        self._forbidden = isinstance(exc, discord.Forbidden)
        if not self._logged:
            self._logged = True
            log.warning(
                "Discord refused a write of the answer in channel %s (HTTP %s, code %s); "
                "the answer is stored either way",
                self._channel_id,
                exc.status,
                exc.code,
            )
