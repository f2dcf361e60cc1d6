"""ChatService: the whole product, without Discord.

Every channel (thread, DM) has one conversation. `ask` takes a member's question and streams the
answer: it waits its turn behind questions already in the channel, picks the window of history
that fits the model, streams the model's answer, and — only when the answer is complete — writes
question, answer and usage in one transaction, then reports the `Answer`. A failed or
interrupted answer writes nothing.

The edge (cogs/) renders what `ask` yields; it passes plain ids and strings, never discord objects.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from bot.conversation import (
    SPEAKER_NOTE,
    Message,
    QuestionTooLong,
    Round,
    choose_window,
    history_budget,
    prompt_messages,
    prompt_tokens,
)
from bot.llm import ChatModel, ContextTooLong, EmptyAnswer, Finished, Refused
from bot.settings import Settings
from bot.store import (
    ConversationStore,
    PromptChange,
    StoredMessage,
    SystemPrompt,
    TurnRecord,
    Usage,
)
from bot.tokens import TokenCounter, counter_for

log = logging.getLogger(__name__)

MAX_SYSTEM_PROMPT_CHARS = 4000
# When the server says the context is too long despite our count, drop the oldest round and
# retry, at most this many times.
CONTEXT_RETRIES = 3

__all__ = [
    "Answer",
    "ChatConfig",
    "ChatError",
    "ChatService",
    "Delta",
    "EmptyQuestion",
    "InvalidModel",
    "PromptTooLong",
    "Question",
    "QuestionTooLong",
    "Queued",
    "ShuttingDown",
]


class ChatError(Exception):
    """A request the service will not carry out, for a reason the member can fix."""


class EmptyQuestion(ChatError):
    pass


class PromptTooLong(ChatError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the system prompt is longer than {limit}")
        self.limit = limit


class InvalidModel(ChatError):
    def __init__(self, model: str, choices: tuple[str, ...]) -> None:
        super().__init__(f"{model!r} is not one of {', '.join(choices)}")
        self.choices = choices


class ShuttingDown(ChatError):
    pass


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
        )


@dataclass(frozen=True, slots=True)
class Question:
    channel_id: int
    author_id: int
    author_name: str
    text: str
    parent_id: int | None = None  # a thread's parent channel, whose settings it inherits


@dataclass(frozen=True, slots=True)
class Queued:
    """The channel is busy: `ahead` questions will be answered before this one."""

    ahead: int


@dataclass(frozen=True, slots=True)
class Delta:
    text: str


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    model: str
    finish_reason: str
    prompt_tokens: int | None
    completion_tokens: int | None
    rounds_used: int
    rounds_dropped: int  # rounds left out after the server said the context was too long

    @property
    def truncated(self) -> bool:
        """The answer hit `max_tokens` and stops mid-thought."""
        return self.finish_reason == "length"


@dataclass(frozen=True, slots=True)
class ChannelPrompt:
    text: str
    source: str  # "channel", "parent" or "default"
    record: SystemPrompt | None = None


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class ChannelQueue:
    """One FIFO lock per channel; a channel's slot exists only while someone holds or awaits it."""

    def __init__(self) -> None:
        self._slots: dict[int, _Slot] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self._slots)

    def waiting(self, channel_id: int) -> int:
        slot = self._slots.get(channel_id)
        return slot.users if slot else 0

    @contextmanager
    def join(self, channel_id: int) -> Iterator[_Slot]:
        slot = self._slots.setdefault(channel_id, _Slot())
        slot.users += 1
        self._idle.clear()
        try:
            yield slot
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._slots[channel_id]
                if not self._slots:
                    self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()


class ChatService:
    def __init__(self, store: ConversationStore, model: ChatModel, config: ChatConfig) -> None:
        self._store = store
        self._model = model
        self._config = config
        self._queue = ChannelQueue()
        self._accepting = True
        for model_name in config.models:  # load tokenizers now, not on the first question
            counter_for(model_name, config.tokenizer)

    @property
    def config(self) -> ChatConfig:
        return self._config

    # -- asking ---------------------------------------------------------------------------

    async def ask(self, question: Question) -> AsyncIterator[Queued | Delta | Answer]:
        """Answer `question` in its channel's conversation, streaming.

        Yields `Queued` first if the channel is busy, then `Delta`s as the model writes, then
        one `Answer` once the turn is stored. Raises `ChatError`, `LLMError` or `StoreError`;
        then nothing was stored. Use with `contextlib.aclosing`.
        """
        text = question.text.strip()
        if not text:
            raise EmptyQuestion("the question is empty")
        if not self._accepting:
            raise ShuttingDown("the bot is shutting down")
        with self._queue.join(question.channel_id) as slot:
            if slot.users > 1:
                yield Queued(ahead=slot.users - 1)
            async with slot.lock:
                async for event in self._answer(question, text):
                    yield event

    async def _answer(self, question: Question, text: str) -> AsyncIterator[Delta | Answer]:
        channel, parent = question.channel_id, question.parent_id
        settings = await self._store.channel_settings(channel, parent)
        model = self._model_in_force(settings.model)
        counter = counter_for(model, self._config.tokenizer)
        prompt = self._prompt_in_force(settings.prompt)
        system_text = f"{prompt.text}\n\n{SPEAKER_NOTE}" if prompt.text else SPEAKER_NOTE
        system = Message("system", system_text, _count(counter, system_text))
        asked = Message.counted(
            "user", text, counter.count, question.author_id, question.author_name
        )

        budget = history_budget(
            context_window=self._config.context_window,
            max_tokens=self._config.max_tokens,
            system=system,
            question=asked,
        )
        history = await self._store.history(channel, self._config.max_rounds)
        window = choose_window(history, budget=budget, max_rounds=self._config.max_rounds)

        dropped = 0
        while True:
            parts: list[str] = []
            finished: Finished | None = None
            try:
                async for event in self._model.stream(
                    prompt_messages(system, window, asked),
                    model=model,
                    max_tokens=self._config.max_tokens,
                    temperature=self._config.temperature,
                    top_p=self._config.top_p,
                ):
                    if isinstance(event, Finished):
                        finished = event
                    else:
                        parts.append(event)
                        yield Delta(event)
            except ContextTooLong:
                if parts or not window or dropped >= CONTEXT_RETRIES:
                    raise
                dropped += 1
                window = window[1:]
                log.info("Context too long in channel %s; retrying with one round fewer", channel)
                continue
            break

        assert finished is not None  # the ChatModel contract: deltas, then exactly one Finished
        if finished.finish_reason == "content_filter":
            raise Refused("the answer was stopped by the server's content filter")
        answer_text = "".join(parts)
        if not answer_text.strip():
            raise EmptyAnswer("the model finished without writing anything")
        answer = Message.counted("assistant", answer_text, counter.count)
        # Commit first, then report: an answer the member sees as complete is always stored.
        await self._store.add_turn(
            TurnRecord(
                channel_id=channel,
                model=model,
                question=asked,
                answer=answer,
                prompt_tokens=finished.prompt_tokens,
                completion_tokens=finished.completion_tokens,
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
            rounds_used=len(window),
            rounds_dropped=dropped,
        )

    def waiting(self, channel_id: int) -> int:
        """How many questions the channel is answering or has waiting."""
        return self._queue.waiting(channel_id)

    @property
    def busy_channels(self) -> int:
        return len(self._queue)

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
        self, channel_id: int, text: str, *, by_id: int, by_name: str
    ) -> None:
        text = text.strip()
        if not text:
            raise EmptyQuestion("the system prompt is empty")
        if len(text) > MAX_SYSTEM_PROMPT_CHARS:
            raise PromptTooLong(MAX_SYSTEM_PROMPT_CHARS)
        # It must leave room for a reply and a short question.
        counter = counter_for(self._config.model, self._config.tokenizer)
        room = self._config.context_window - self._config.max_tokens - 256
        if _count(counter, text) > room:
            raise PromptTooLong(MAX_SYSTEM_PROMPT_CHARS)
        await self._store.set_system_prompt(channel_id, text, by_id=by_id, by_name=by_name)

    async def clear_system_prompt(self, channel_id: int, *, by_id: int, by_name: str) -> None:
        await self._store.set_system_prompt(channel_id, None, by_id=by_id, by_name=by_name)

    async def prompt_changes(self, channel_id: int, limit: int = 10) -> list[PromptChange]:
        return await self._store.prompt_changes(channel_id, limit)

    async def reset(self, channel_id: int) -> int:
        """Forget the channel's history; returns the number of rounds forgotten.

        Waits for an answer in progress in the channel, so a turn is never half-forgotten.
        """
        with self._queue.join(channel_id) as slot:
            async with slot.lock:
                return await self._store.reset(channel_id)

    async def history(self, channel_id: int, rounds: int) -> list[Round]:
        return await self._store.history(channel_id, rounds)

    async def export(self, channel_id: int) -> list[StoredMessage]:
        return await self._store.export(channel_id)

    async def usage(self, channel_id: int) -> Usage:
        return await self._store.usage(channel_id)

    async def channel_model(self, channel_id: int, parent_id: int | None = None) -> str:
        settings = await self._store.channel_settings(channel_id, parent_id)
        return self._model_in_force(settings.model)

    def _model_in_force(self, chosen: str | None) -> str:
        # A model since removed from MODELS falls back to the default.
        return chosen if chosen in self._config.models else self._config.model

    async def set_channel_model(self, channel_id: int, model: str | None) -> str:
        """Choose the channel's model (None: back to the default); returns the model in force."""
        if model is not None and model not in self._config.models:
            raise InvalidModel(model, self._config.models)
        await self._store.set_channel_model(channel_id, model)
        return model or self._config.model


@functools.lru_cache(maxsize=1024)
def _count(counter: TokenCounter, text: str) -> int:
    """Counts of system prompts, which repeat on every turn, are memoised."""
    return counter.count(text)
