"""ChatService: the whole product, without Discord.

Every channel (thread, DM) has one conversation. `ask` takes a member's question and streams the
answer: it waits its turn behind questions already in the channel, picks the window of history
that fits the model, streams the model's answer, and — only when the answer is complete — writes
question, answer and usage in one transaction, then reports the `Answer`. A failed, interrupted
or stopped answer writes nothing.

Work per channel and per member is bounded: a channel holds at most `max_waiting_per_channel`
questions behind the one being answered, a member at most `max_waiting_per_member` in a channel,
and an answer at most `answer_cap` characters (a server that ignores `max_tokens` is cut off, and
the cut answer is stored with `Answer.cut` set). `stop` ends the answer being written (by its
asker or a moderator); `reset` drops the waiting questions, stops the answer in progress and
forgets the history at once, without waiting its turn.

Each turn uses the channel's own settings (bot/channels.py: temperature, reply length, history
rounds, reasoning effort), a thread's inherited from its parent, the bot's settings by default;
the window of history is chosen with the same round count the store's query read.

A question may come with files (bot/attachments.py) and a message it asks about: text files and
the quoted message are framed into the stored question by the bot (bot/conversation.py), images
are stored with the turn (their bytes once per digest) and sent as image parts to a model that
takes images — the window's read back from the store, in one more trip only when the window holds
any. A model that takes none (TEXT_ONLY_MODELS, or a server that refused images once: asked again
at once without them, and remembered) reads the images' names, and `Answer.images_left_out` says
so.

The edge (cogs/) renders what `ask` yields; it passes plain ids and strings, never discord objects.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field, replace

from bot.attachments import Files, Limits, VisionPolicy
from bot.channels import (
    BY_NAME,
    CHARS_PER_TOKEN_CAP,
    MODE,
    QUESTION_ROOM,
    REASONING_EFFORT,
    ChannelValues,
    Mode,
    ModeBook,
    history_rounds,
    resolve,
)
from bot.conversation import (
    SPEAKER_NOTE,
    Attachment,
    Message,
    Quote,
    Round,
    byte_bound,
    compose,
    fit_window,
    image_digests,
    prompt_messages,
    prompt_tokens,
)
from bot.errors import (
    ContextTooLong,
    Dropped,
    EmptyAnswer,
    EmptyPrompt,
    EmptyQuestion,
    ImagesNotSupported,
    InvalidModel,
    ModeUnavailable,
    PromptTooLong,
    QueueFull,
    Reason,
    Refused,
    ShuttingDown,
    Stopped,
    StoreError,
    ThinkingExhausted,
)
from bot.families import Family, family_of
from bot.llm import ChatModel, Finished, Reasoning
from bot.settings import Settings
from bot.storage import (
    PromptChange,
    Store,
    StoredMessage,
    SystemPrompt,
    TurnRecord,
    Usage,
)
from bot.tokens import TokenCounter, counter_for, image_tokens, loaded_counter

log = logging.getLogger(__name__)

MAX_SYSTEM_PROMPT_CHARS = 4000
# When the server says the context is too long despite our count, drop the oldest round and
# retry, at most this many times.
CONTEXT_RETRIES = 3

__all__ = [
    "Answer",
    "ChannelInfo",
    "ChannelValues",
    "ChatConfig",
    "ChatService",
    "Delta",
    "Mode",
    "PromptChange",
    "Question",
    "Queued",
    "ResetOutcome",
    "StopOutcome",
    "StoredMessage",
    "Thinking",
    "Usage",
]


@dataclass(frozen=True, slots=True)
class ChatConfig:
    model: str
    models: tuple[str, ...]
    max_tokens: int
    context_window: int
    max_rounds: int
    temperature: float
    top_p: float
    system_prompt: str
    tokenizer: str | None = None
    max_waiting_per_channel: int = 10
    max_waiting_per_member: int = 2
    reasoning_effort: str | None = None  # None: the server's default
    model_families: tuple[tuple[str, str], ...] = ()  # (model or glob, family) overrides
    message_content: str = "auto"  # MESSAGE_CONTENT: "off" refuses the chat and thread modes
    chat_ignore_prefix: str = "//"  # a chat channel's messages starting with it are not for me
    attachments: Limits = field(
        default_factory=Limits
    )  # per file, per question, text file characters
    text_only_models: tuple[str, ...] = ()  # models (or globs) that take no images

    @classmethod
    def from_settings(cls, settings: Settings) -> ChatConfig:
        return cls(
            model=settings.model,
            models=settings.selectable_models,
            max_tokens=settings.max_tokens,
            context_window=settings.context_window,
            max_rounds=settings.max_rounds,
            temperature=settings.temperature,
            top_p=settings.top_p,
            system_prompt=settings.system_prompt,
            tokenizer=settings.tokenizer,
            max_waiting_per_channel=settings.max_waiting_per_channel,
            max_waiting_per_member=settings.max_waiting_per_member,
            reasoning_effort=settings.reasoning_effort,
            model_families=settings.model_families,
            message_content=settings.message_content,
            chat_ignore_prefix=settings.chat_ignore_prefix,
            attachments=Limits(
                settings.attachment_max_bytes,
                settings.turn_attachment_max_bytes,
                settings.text_file_max_chars,
            ),
            text_only_models=settings.text_only_models,
        )

    @property
    def answer_cap(self) -> int:
        """The most characters an answer may have before it is cut, by default (a channel's
        own reply length sets its own: `ChannelValues.answer_cap`)."""
        return self.max_tokens * CHARS_PER_TOKEN_CAP


@dataclass(frozen=True, slots=True)
class Question:
    channel_id: int
    author_id: int
    author_name: str
    text: str
    parent_id: int | None = None  # a thread's parent channel, whose settings it inherits
    message_id: int | None = None  # the Discord message (or interaction) that asked it
    guild_id: int | None = None  # None in DMs
    files: Files = field(
        default_factory=Files
    )  # images and text files that came with it (bot/attachments.py)
    about: Quote | None = None  # the message it asks about ("Ask chatlab")


@dataclass(frozen=True, slots=True)
class Queued:
    """The channel is busy: `ahead` questions will be answered before this one."""

    ahead: int


@dataclass(frozen=True, slots=True)
class Delta:
    text: str


@dataclass(frozen=True, slots=True)
class Thinking:
    """The model started thinking (at `since`, on the event loop's clock); its thoughts stay
    private."""

    since: float


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    model: str
    finish_reason: str
    prompt_tokens: int | None
    completion_tokens: int | None
    rounds_used: int
    rounds_dropped: int  # rounds left out after the server said the context was too long
    cut: bool = False  # the server wrote past `answer_cap`; `text` is the first `answer_cap`
    thought_seconds: float | None = None  # how long the model thought before answering
    reasoning_tokens: int | None = None  # as the server reported them
    max_tokens: int | None = None  # the reply length it was asked with (the channel's)
    images_left_out: bool = False  # the model takes no images: it answered from the text

    @property
    def truncated(self) -> bool:
        """The answer hit `max_tokens` and stops mid-thought."""
        return self.finish_reason == "length" and not self.cut


@dataclass(frozen=True, slots=True)
class ChannelPrompt:
    text: str
    source: str  # "channel", "parent" or "default"
    record: SystemPrompt | None = None


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """What /info shows: the model, the settings and the prompt in force, and their sources."""

    model: str
    model_source: str  # "channel", "parent" or "default"
    values: ChannelValues
    prompt: ChannelPrompt


@dataclass(frozen=True, slots=True)
class ResetOutcome:
    rounds: int  # rounds of history forgotten
    dropped: int  # waiting questions dropped
    stopped: bool  # an answer in progress was stopped (and not kept)


class StopOutcome(enum.Enum):
    STOPPED = "stopped"
    NOTHING = "nothing"  # no answer is being written in the channel
    NOT_YOURS = "not_yours"  # someone else's answer, and the caller is not a moderator


@dataclass(eq=False)
class _Ticket:
    """One question in a channel's queue, from joining until it is answered or given up."""

    asker_id: int
    message_id: int | None
    dropped: Reason | None = None
    # While its answer is written: the task writing it, whether it is waiting on the model, and
    # why it was stopped.
    task: asyncio.Task[object] | None = None
    reading: bool = False
    stopped: Stopped | None = None
    committed: bool = False  # the whole answer is being (or has been) stored: too late to stop

    @property
    def stoppable(self) -> bool:
        return self.stopped is None and not self.committed

    def stop(self, reason: Reason, by_id: int | None = None) -> None:
        """Stop the answer: at once if the model is being waited on, else at the next piece."""
        if not self.stoppable:
            return
        self.stopped = Stopped(reason, by_id)
        if self.reading and self.task is not None:
            self.task.cancel()


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tickets: list[_Ticket] = field(default_factory=list)  # in arrival order
    active: _Ticket | None = None  # the question being answered

    @property
    def waiting(self) -> list[_Ticket]:
        return [t for t in self.tickets if t is not self.active and t.dropped is None]


class ChannelQueue:
    """One FIFO lock per channel; a channel's slot exists only while someone holds or awaits it."""

    def __init__(self) -> None:
        self._slots: dict[int, _Slot] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self._slots)

    def slot(self, channel_id: int) -> _Slot | None:
        return self._slots.get(channel_id)

    def waiting(self, channel_id: int) -> int:
        slot = self._slots.get(channel_id)
        return len(slot.tickets) if slot else 0

    @contextmanager
    def join(self, channel_id: int, ticket: _Ticket) -> Iterator[_Slot]:
        slot = self._slots.setdefault(channel_id, _Slot())
        slot.tickets.append(ticket)
        self._idle.clear()
        try:
            yield slot
        finally:
            slot.tickets.remove(ticket)
            if not slot.tickets:
                del self._slots[channel_id]
                if not self._slots:
                    self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()


class ChatService:
    def __init__(self, store: Store, model: ChatModel, config: ChatConfig) -> None:
        self._store = store
        self._model = model
        self._config = config
        self._queue = ChannelQueue()
        self._vision = VisionPolicy(config.text_only_models)
        self._accepting = True
        self._modes = ModeBook()
        self._modes_filling = asyncio.Lock()
        # No vocabulary is loaded here: counts are bounded by byte length until a window needs
        # exact ones (bot/conversation.py `fit_window`), and then the vocabulary is kept.

    @property
    def config(self) -> ChatConfig:
        return self._config

    # -- asking ---------------------------------------------------------------------------

    def queue_refusal(self, channel_id: int, asker_id: int) -> QueueFull | None:
        """Why a question from `asker_id` would not be taken in the channel now, if it would not."""
        slot = self._queue.slot(channel_id)
        if slot is None:
            return None
        live = [t for t in slot.tickets if t.dropped is None]
        per_member = self._config.max_waiting_per_member
        if sum(t.asker_id == asker_id for t in live) >= per_member:
            return QueueFull(per_member, per_member=True)
        per_channel = self._config.max_waiting_per_channel
        if len(slot.waiting) >= per_channel:
            return QueueFull(per_channel, per_member=False)
        return None

    async def claim(self, question_id: int) -> bool:
        """Whether this Discord message or interaction is new: False for a duplicate delivery
        (a gateway replay, or two processes during a rolling deploy), which is not answered.

        If the store cannot tell, the question is answered (a duplicate is rare; a question
        dropped in silence would be a worse failure, and writing its turn will report the store).
        """
        try:
            return await self._store.claim_question(question_id)
        except StoreError as exc:
            log.warning("Could not claim question %s: %s", question_id, exc)
            return True

    async def ask(
        self, question: Question, on_joined: Callable[[], object] | None = None
    ) -> AsyncGenerator[Queued | Thinking | Delta | Answer, None]:
        """Answer `question` in its channel's conversation, streaming.

        `on_joined` is called once the question has its place in the channel's queue (the edge
        keeps its channel's questions in the order they came until then).

        Yields `Queued` first if the channel is busy, `Thinking` once if the model thinks before
        answering (its thoughts are never yielded, stored or sent back), then `Delta`s as the
        model writes, then one `Answer` once the turn is stored. Raises a `ChatlabError`
        (bot/errors.py); then nothing was stored. Use with `contextlib.aclosing`.
        """
        text = clean_text(question.text)
        if not text and not question.files and question.about is None:
            raise EmptyQuestion("the question is empty")
        if not self._accepting:
            raise ShuttingDown("the bot is shutting down")
        refusal = self.queue_refusal(question.channel_id, question.author_id)
        if refusal is not None:
            raise refusal
        ticket = _Ticket(question.author_id, question.message_id)
        with self._queue.join(question.channel_id, ticket) as slot:
            if on_joined is not None:
                on_joined()
            ahead = sum(t.dropped is None for t in slot.tickets) - 1
            if ahead:
                yield Queued(ahead=ahead)
            async with slot.lock:
                if ticket.dropped is not None:
                    raise Dropped(ticket.dropped)
                slot.active = ticket
                ticket.task = asyncio.current_task()
                try:
                    async for event in self._answer(question, text, ticket):
                        yield event
                finally:
                    slot.active = None
                    ticket.task = None

    async def _answer(
        self, question: Question, text: str, ticket: _Ticket
    ) -> AsyncGenerator[Thinking | Delta | Answer, None]:
        channel, parent = question.channel_id, question.parent_id
        # One trip to the database for what the turn reads, one for what it writes.
        settings, history = await self._store.turn_context(channel, parent, self._config.max_rounds)
        values = resolve(settings, self._config, in_thread=parent is not None)
        # The store's query read this many rounds: the window is chosen among as many.
        rounds = history_rounds(settings, self._config)
        model = self._model_in_force(settings.model)
        effort = values.reasoning_effort
        tokenizer = self._config.tokenizer
        prompt = self._prompt_in_force(settings.prompt)
        system_text = f"{prompt.text}\n\n{SPEAKER_NOTE}" if prompt.text else SPEAKER_NOTE
        content = compose(text, question.files.texts, question.about)
        attached = question.files.attachments(model)
        who = (question.author_id, question.author_name)
        counter = loaded_counter(model, tokenizer)
        if counter is not None:  # counting loads nothing: count exactly
            system = Message("system", system_text, _count(counter, system_text))
            asked = Message.counted("user", content, counter.count, *who, attachments=attached)
        else:
            system = Message.bounded("system", system_text)
            asked = Message.bounded("user", content, *who, attachments=attached)

        def count(content: str) -> int:  # loads the vocabulary once, when a count must be exact
            return counter_for(model, tokenizer).count(content)

        # Images cost what the model in force charges for them (a stored record was charged
        # at the rate of the model of its day); a model that takes no images is sent their
        # names only, and their cost is not counted. The stored records keep theirs.
        sees = self._vision.sees_images(model)
        system, fitted, window = fit_window(
            [_charged(r, model, sees) for r in history],
            context_window=self._config.context_window,
            max_tokens=values.max_tokens,
            max_rounds=rounds,
            system=system,
            question=asked if sees else _charged_message(asked, model, sees),
            count=count,
        )
        asked = replace(fitted, attachments=asked.attachments)

        # Images go to a model that takes them: the window's from the store (one more trip, only
        # when it holds any), the question's as they came.
        images: dict[str, bytes] | None = None
        if sees:
            images = question.files.blobs
            stored = image_digests(window) - images.keys()
            if stored:
                images |= await self._store.blobs(stored)
        left_out = images is None and bool(image_digests(window, asked))

        dropped = 0
        cap = values.answer_cap
        while True:
            parts: list[str] = []
            length = 0
            cut = False
            thinking: float | None = None  # when the model started thinking
            answering: float | None = None  # when its answer started
            finished: Finished | None = None
            stream = self._model.stream(
                prompt_messages(system, window, asked, images),
                model=model,
                max_tokens=values.max_tokens,
                temperature=values.temperature,
                top_p=self._config.top_p,
                reasoning_effort=effort,
            )
            try:
                async with aclosing(stream):
                    while finished is None:
                        if ticket.stopped is not None:
                            raise ticket.stopped
                        ticket.reading = True
                        try:
                            event = await anext(stream)
                        finally:
                            ticket.reading = False
                        if isinstance(event, Finished):
                            finished = event
                            continue
                        if isinstance(event, Reasoning):
                            if thinking is None and answering is None:
                                thinking = asyncio.get_running_loop().time()
                                yield Thinking(thinking)
                            continue
                        if answering is None:
                            answering = asyncio.get_running_loop().time()
                        if length + len(event) > cap:  # a server that ignores max_tokens
                            event = event[: cap - length]
                            cut, finished = True, Finished("length")
                            log.warning(
                                "The model server wrote past %d characters in channel %s; "
                                "the answer is cut there",
                                cap,
                                channel,
                            )
                        length += len(event)
                        parts.append(event)
                        yield Delta(event)
            except ImagesNotSupported:
                if parts or not images:  # no image was sent: the refusal is not about them
                    raise
                self._vision.learn(model)  # once per model: its next turns send text alone
                log.info("Model %r takes no images; asking again without them", model)
                images, left_out = None, True
                continue
            except ContextTooLong:
                if parts or not window or dropped >= CONTEXT_RETRIES:
                    raise
                dropped += 1
                window = window[1:]
                log.info("Context too long in channel %s; retrying with one round fewer", channel)
                continue
            except asyncio.CancelledError:
                # `stop` cancels the task only while it waits on the model (see _Ticket.stop).
                task = ticket.task
                if ticket.stopped is not None and task is not None and task.uncancel() == 0:
                    raise ticket.stopped from None
                raise
            break

        if ticket.stopped is not None:
            raise ticket.stopped
        if finished.finish_reason == "content_filter":
            raise Refused("the answer was stopped by the server's content filter")
        answer_text = "".join(parts)
        if not answer_text.strip():
            if thinking is not None and finished.finish_reason == "length":
                raise ThinkingExhausted(values.max_tokens)
            raise EmptyAnswer("the model finished without writing anything")
        # Stored counts are exact when that loads nothing, else bounds (flagged as such).
        counter = loaded_counter(model, tokenizer)
        if counter is not None:
            asked = asked.exactly(counter.count)
            answer = Message.counted("assistant", answer_text, counter.count)
        else:
            answer = Message.bounded("assistant", answer_text)
        # Commit first, then report: an answer the member sees as complete is always stored.
        ticket.committed = True  # from here on /stop and /reset find nothing to stop
        await self._store.add_turn(
            TurnRecord(
                channel_id=channel,
                model=model,
                question=asked,
                answer=answer,
                prompt_tokens=finished.prompt_tokens,
                completion_tokens=finished.completion_tokens,
                question_message_id=question.message_id,
                guild_id=question.guild_id,
                blobs=question.files.blobs,
            )
        )
        if log.isEnabledFor(logging.DEBUG):
            size = prompt_tokens(system, window, asked)
            log.debug("Answered in channel %s: %d rounds, ~%d tokens", channel, len(window), size)
        yield Answer(
            text=answer_text,
            model=model,
            finish_reason=finished.finish_reason,
            prompt_tokens=finished.prompt_tokens,
            completion_tokens=finished.completion_tokens,
            images_left_out=left_out,
            rounds_used=len(window),
            rounds_dropped=dropped,
            cut=cut,
            thought_seconds=None if thinking is None else (answering or thinking) - thinking,
            reasoning_tokens=finished.reasoning_tokens,
            max_tokens=values.max_tokens,
        )

    def waiting(self, channel_id: int) -> int:
        """How many questions the channel is answering or has waiting."""
        return self._queue.waiting(channel_id)

    @property
    def busy_channels(self) -> int:
        return len(self._queue)

    def stop(self, channel_id: int, *, by_id: int, moderator: bool) -> StopOutcome:
        """Stop the answer being written in the channel: its asker or a moderator may."""
        slot = self._queue.slot(channel_id)
        active = slot.active if slot else None
        if active is None or not active.stoppable:
            return StopOutcome.NOTHING
        if active.asker_id != by_id and not moderator:
            return StopOutcome.NOT_YOURS
        active.stop(Reason.STOP, by_id)
        return StopOutcome.STOPPED

    async def shutdown(self, grace: float) -> bool:
        """Stop taking questions and wait up to `grace` seconds for answers in flight.

        Returns True when every answer finished in time.
        """
        self._accepting = False
        try:
            async with asyncio.timeout(grace):
                await self._queue.wait_idle()
        except TimeoutError:
            log.warning("%d channel(s) still answering after %gs", len(self._queue), grace)
            return False
        return True

    # -- managing a channel ---------------------------------------------------------------

    async def system_prompt(self, channel_id: int, parent_id: int | None = None) -> ChannelPrompt:
        settings = await self._store.channel_settings(channel_id, parent_id)
        return self._prompt_in_force(settings.prompt)

    def _prompt_in_force(self, record: SystemPrompt | None) -> ChannelPrompt:
        if record is None:
            return ChannelPrompt(self._config.system_prompt, "default")
        return ChannelPrompt(record.text, "parent" if record.inherited else "channel", record)

    async def set_system_prompt(
        self,
        channel_id: int,
        text: str,
        *,
        by_id: int,
        by_name: str,
        parent_id: int | None = None,
    ) -> None:
        text = clean_text(text)
        if not text:
            raise EmptyPrompt("the system prompt is empty")
        if len(text) > MAX_SYSTEM_PROMPT_CHARS:
            raise PromptTooLong(MAX_SYSTEM_PROMPT_CHARS)
        # It must leave room for a reply (the channel's length) and a short question.
        settings = await self._store.channel_settings(channel_id, parent_id)
        values = resolve(settings, self._config, in_thread=parent_id is not None)
        room = self._config.context_window - values.max_tokens - QUESTION_ROOM
        if byte_bound(text) > room:  # the bound does not settle it: count exactly
            counter = counter_for(self._config.model, self._config.tokenizer)
            tokens = _count(counter, text)
            if tokens > room:  # the limit that bites is the model's, in tokens
                raise PromptTooLong(MAX_SYSTEM_PROMPT_CHARS, tokens=tokens, room=room)
        await self._store.set_system_prompt(channel_id, text, by_id=by_id, by_name=by_name)

    async def clear_system_prompt(self, channel_id: int, *, by_id: int, by_name: str) -> None:
        await self._store.set_system_prompt(channel_id, None, by_id=by_id, by_name=by_name)

    async def prompt_changes(self, channel_id: int, limit: int = 10) -> list[PromptChange]:
        return await self._store.prompt_changes(channel_id, limit)

    async def reset(self, channel_id: int) -> ResetOutcome:
        """Forget the channel's history, at once: waiting questions are dropped and the answer
        in progress is stopped (neither is kept), so nothing of the old conversation lands in
        the new one. The system prompt stays."""
        dropped, stopped = 0, False
        slot = self._queue.slot(channel_id)
        if slot is not None:
            for ticket in slot.waiting:
                ticket.dropped = Reason.RESET
                dropped += 1
            if slot.active is not None and slot.active.stoppable:
                slot.active.stop(Reason.RESET)
                stopped = True
        # An answer already committing is ahead of this in the store's queue: it is forgotten too.
        rounds = await self._store.reset(channel_id)
        return ResetOutcome(rounds, dropped, stopped)

    async def forget_question(self, channel_id: int, message_id: int) -> bool:
        """A member deleted their question: forget its turn, or never store it.

        Returns True if something was forgotten, dropped or stopped.
        """
        slot = self._queue.slot(channel_id)
        if slot is not None:
            for ticket in slot.tickets:
                if ticket.message_id != message_id:
                    continue
                if ticket is not slot.active:
                    ticket.dropped = Reason.DELETED
                    return True
                ticket.stop(Reason.DELETED, ticket.asker_id)
                # It may be committing, or stored and still being shown: the store runs its
                # statements in order, so this lands after that turn's write.
                await self._store.forget_question(channel_id, message_id)
                return True
        return await self._store.forget_question(channel_id, message_id)

    async def history(self, channel_id: int, rounds: int) -> list[Round]:
        return await self._store.history(channel_id, rounds)

    def export_pages(
        self, channel_id: int, *, page_size: int = 500, newest_first: bool = False
    ) -> AsyncGenerator[list[StoredMessage], None]:
        """The channel's stored messages, a page at a time (memory stays flat)."""
        return self._store.export_pages(channel_id, page_size=page_size, newest_first=newest_first)

    async def count_rounds(self, channel_id: int) -> int:
        return await self._store.count_rounds(channel_id)

    async def usage(self, channel_id: int) -> Usage:
        return await self._store.usage(channel_id)

    async def channel_model(self, channel_id: int, parent_id: int | None = None) -> str:
        settings = await self._store.channel_settings(channel_id, parent_id)
        return self._model_in_force(settings.model)

    async def channel_effort(self, channel_id: int, parent_id: int | None = None) -> str | None:
        """The reasoning effort in force in the channel (None: the server's default)."""
        settings = await self._store.channel_settings(channel_id, parent_id)
        return settings.reasoning_effort or self._config.reasoning_effort

    async def set_channel_effort(self, channel_id: int, effort: str | None) -> None:
        """Set the channel's reasoning effort (None: back to the bot's default)."""
        await self._store.set_channel_effort(channel_id, effort)

    async def channel_values(self, channel_id: int, parent_id: int | None = None) -> ChannelValues:
        """The channel's settings in force (bot/channels.py), and where each comes from."""
        settings = await self._store.channel_settings(channel_id, parent_id)
        return resolve(settings, self._config, in_thread=parent_id is not None)

    async def channel_info(self, channel_id: int, parent_id: int | None = None) -> ChannelInfo:
        """Everything /info shows, in one read."""
        settings = await self._store.channel_settings(channel_id, parent_id)
        model = self._model_in_force(settings.model)
        if settings.model is None or model != settings.model:
            model_source = "default"
        else:
            model_source = "parent" if "model" in settings.inherited else "channel"
        return ChannelInfo(
            model=model,
            model_source=model_source,
            values=resolve(settings, self._config, in_thread=parent_id is not None),
            prompt=self._prompt_in_force(settings.prompt),
        )

    async def set_channel_setting(
        self,
        channel_id: int,
        name: str,
        typed: str | None,
        *,
        parent_id: int | None = None,
        guild_id: int | None = None,
    ) -> ChannelValues:
        """Set one of the channel's settings from what a moderator typed (None: unset it, so the
        parent's or the default is in force again); returns the values in force after.

        Raises `InvalidSetting` (the value is out of bounds, or not one of the choices), and
        for a mode `ModeUnavailable`: in a DM (every message is answered there already), a
        thread opening threads, or chat and thread modes switched off by MESSAGE_CONTENT=off.
        """
        setting = BY_NAME[name]
        value = None if typed is None else setting.parse(typed, self._config)
        if setting is MODE and value is not None:
            if guild_id is None:
                raise ModeUnavailable("dm")
            if value == Mode.THREADS and parent_id is not None:
                raise ModeUnavailable("thread")
            if value != Mode.MENTION and self._config.message_content == "off":
                raise ModeUnavailable("off")
        stored = None if value is None else setting.text(value)
        if setting is REASONING_EFFORT:
            await self._store.set_channel_effort(channel_id, stored)
        else:
            await self._store.set_channel_option(channel_id, name, stored, guild_id=guild_id)
        if setting is MODE:
            self._modes.set(channel_id, None if stored is None else Mode(stored))
        return await self.channel_values(channel_id, parent_id)

    async def reset_channel_settings(
        self, channel_id: int, parent_id: int | None = None
    ) -> ChannelValues:
        """Every setting of the channel (model, reasoning effort, options, mode) back to the
        parent's or the default; the prompt and the history stay. Returns the values after."""
        await self._store.reset_channel_settings(channel_id)
        self._modes.set(channel_id, None)
        return await self.channel_values(channel_id, parent_id)

    async def load_modes(self) -> bool:
        """Read every channel's mode once (the edge calls this before the first message); True
        if they are known. Until they are, each `channel_mode` tries again."""
        if self._modes.filled:
            return True
        async with self._modes_filling:
            if not self._modes.filled:
                try:
                    found = {
                        channel: mode
                        for mode in Mode
                        for channel in await self._store.channels_with_option(
                            MODE.name, [mode.value]
                        )
                    }
                except StoreError as exc:
                    log.warning("Could not read the channels' modes: %s", exc)
                    return False
                self._modes.fill(found)
        return True

    async def channel_mode(self, channel_id: int, parent_id: int | None = None) -> Mode:
        """The channel's mode, from memory (no trip to the database once `load_modes` has read
        them). A thread has its parent's until it has its own."""
        if not self._modes.filled and not await self.load_modes():
            return Mode.MENTION  # the database is failing: mentions still work
        return self._modes.mode(channel_id, parent_id)

    async def chat_channels(self) -> list[int]:
        """The channels whose own mode answers messages without a mention (chat, threads)."""
        await self.load_modes()
        return self._modes.channels()

    def family(self, model: str) -> Family:
        """How chatlab talks to `model` (which parameters it takes)."""
        return family_of(model, dict(self._config.model_families))

    def _model_in_force(self, chosen: str | None) -> str:
        # A model since removed from MODELS falls back to the default.
        return chosen if chosen in self._config.models else self._config.model

    async def set_channel_model(
        self, channel_id: int, model: str | None, parent_id: int | None = None
    ) -> str:
        """Choose the channel's model (None: back to the parent's or the default); returns the
        model in force."""
        if model is not None and model not in self._config.models:
            raise InvalidModel(model, self._config.models)
        await self._store.set_channel_model(channel_id, model)
        return model or await self.channel_model(channel_id, parent_id)


def _charged_message(message: Message, model: str, sees: bool) -> Message:
    """The message as `model` is charged for it: each image at its rate (nothing when the
    model takes no images)."""
    if not message.attachments:
        return message
    kept = tuple(
        replace(a, tokens=_image_cost(model, a, sees)) if a.kind == "image" else a
        for a in message.attachments
    )
    return message if kept == message.attachments else replace(message, attachments=kept)


def _charged(item: Round, model: str, sees: bool) -> Round:
    question = _charged_message(item.question, model, sees)
    return item if question is item.question else Round(question, item.answer)


def _image_cost(model: str, image: Attachment, sees: bool) -> int:
    if not sees:
        return 0
    if image.width is None or image.height is None:  # no size recorded: as it was charged
        return image.tokens
    return _image_tokens(model, image.width, image.height)


_image_tokens = functools.lru_cache(maxsize=1024)(image_tokens)


def clean_text(text: str) -> str:
    """A member's text as it is sent and stored: NUL characters removed, edges trimmed."""
    return text.replace("\x00", "").strip()


@functools.lru_cache(maxsize=1024)
def _count(counter: TokenCounter, text: str) -> int:
    """Counts of system prompts, which repeat on every turn, are memoised."""
    return counter.count(text)
