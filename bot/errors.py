"""Every error a member can be told about, in one tree.

    ChatlabError                      key, params: what the member reads (bot/messages)
    ├── ChatError                     a request the service will not carry out
    │   ├── EmptyQuestion
    │   ├── QuestionTooLong           needed, available (tokens)
    │   ├── QueueFull                 limit, per_member
    │   ├── Stopped                   reason, by_id: the answer being written was stopped
    │   ├── Dropped                   reason: a waiting question was dropped
    │   ├── ShuttingDown
    │   ├── EmptyPrompt
    │   ├── PromptTooLong             limit (characters) or tokens, room (tokens)
    │   ├── InvalidModel              model, choices
    │   ├── InvalidSetting            setting, value, low/high or choices: a channel setting
    │   └── ModeUnavailable           reason: a chat/thread mode cannot be used here
    ├── LLMError                      the model could not give an answer (bot/llm.py maps the SDK's)
    │   ├── RateLimited               retry_after (seconds, or None)
    │   ├── QuotaExhausted
    │   ├── ContextTooLong
    │   ├── ModelTimedOut
    │   ├── ModelUnreachable
    │   ├── AuthenticationFailed
    │   ├── ModelNotFound             model
    │   ├── Refused
    │   ├── ModelServerError
    │   ├── Interrupted
    │   ├── EmptyAnswer
    │   ├── ThinkingExhausted         max_tokens: the whole reply budget went on thinking
    │   └── ImagesNotSupported        model: the model takes no images (the service retries)
    └── StoreError                    the database could not do what was asked (bot/storage/)
        ├── StorageFull
        ├── DatabaseMissing
        ├── DatabaseInUse             (start-up only)
        └── ShardsInUse               another process runs one of these shards (start-up only)

Each error carries a catalogue key (`key`) and the arguments its sentence needs (`params`); the
edge renders them in the member's language, in one place for commands and one for messages. The
exception text itself (`str(error)`) is for logs, in English, and never shown to members.
"""

from __future__ import annotations

import enum
from typing import ClassVar


class ChatlabError(Exception):
    """Something a member can be told about in one sentence."""

    key: ClassVar[str] = "error.unexpected"

    @property
    def message_key(self) -> str:
        """The catalogue key of the sentence for this error (some choose by their arguments)."""
        return self.key

    @property
    def params(self) -> dict[str, object]:
        """The arguments of the sentence."""
        return {}


# -- requests the service will not carry out ------------------------------------------------


class ChatError(ChatlabError):
    """A request the service will not carry out, for a reason the member can fix."""

    key = "error.request"


class EmptyQuestion(ChatError):
    key = "error.empty_question"


class QuestionTooLong(ChatError):
    """The question cannot fit in the model's context even with no history at all."""

    key = "error.question_too_long"

    def __init__(self, needed: int, available: int) -> None:
        super().__init__(f"the question needs {needed} tokens but only {available} are available")
        self.needed = needed
        self.available = available

    @property
    def params(self) -> dict[str, object]:
        return {"needed": self.needed, "available": self.available}


class QueueFull(ChatError):
    """Too many questions are waiting: in the channel, or from this member in it."""

    def __init__(self, limit: int, *, per_member: bool) -> None:
        whose = "from this member" if per_member else "in this channel"
        super().__init__(f"{limit} questions are already waiting {whose}")
        self.limit = limit
        self.per_member = per_member

    @property
    def message_key(self) -> str:
        return "error.queue_full_member" if self.per_member else "error.queue_full_channel"

    @property
    def params(self) -> dict[str, object]:
        return {"limit": self.limit}


class Reason(enum.StrEnum):
    STOP = "stop"  # /stop, by the asker or a moderator
    RESET = "reset"  # /reset dropped the channel's questions
    DELETED = "deleted"  # the member deleted their question


class Stopped(ChatError):
    """The answer being written was stopped; what was written is not kept."""

    def __init__(self, reason: Reason, by_id: int | None = None) -> None:
        super().__init__(f"the answer was stopped ({reason})")
        self.reason = reason
        self.by_id = by_id

    @property
    def message_key(self) -> str:
        return f"error.stopped_{self.reason}"

    @property
    def params(self) -> dict[str, object]:
        return {"by": f"<@{self.by_id}>"}


class Dropped(ChatError):
    """A waiting question was dropped before its turn came."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(f"the question was dropped ({reason})")
        self.reason = reason

    @property
    def message_key(self) -> str:
        return f"error.dropped_{self.reason}"


class ShuttingDown(ChatError):
    key = "error.shutting_down"


class EmptyPrompt(ChatError):
    """A system prompt with nothing in it (/system clear goes back to the default)."""

    key = "error.empty_prompt"


class PromptTooLong(ChatError):
    """Longer than `limit` characters, or (`tokens` set) more tokens than the model has `room`."""

    def __init__(self, limit: int, *, tokens: int | None = None, room: int | None = None) -> None:
        what = f"{tokens} tokens, {room} fit" if tokens is not None else f"over {limit} characters"
        super().__init__(f"the system prompt is too long ({what})")
        self.limit = limit
        self.tokens = tokens
        self.room = room

    @property
    def message_key(self) -> str:
        return "error.prompt_too_long" if self.tokens is None else "error.prompt_too_many_tokens"

    @property
    def params(self) -> dict[str, object]:
        return {"limit": self.limit, "tokens": self.tokens, "room": self.room}


class InvalidModel(ChatError):
    key = "error.invalid_model"

    def __init__(self, model: str, choices: tuple[str, ...]) -> None:
        super().__init__(f"{model!r} is not one of {', '.join(choices)}")
        self.model = model
        self.choices = choices

    @property
    def params(self) -> dict[str, object]:
        return {"model": self.model, "choices": ", ".join(self.choices)}


class InvalidSetting(ChatError):
    """A value a channel setting cannot take (bot/channels.py declares the bounds)."""

    SETTINGS: ClassVar[frozenset[str]] = frozenset(
        {"temperature", "max_tokens", "history_rounds", "reasoning_effort", "mode"}
    )

    def __init__(
        self,
        setting: str,
        value: str = "",
        *,
        low: float | None = None,
        high: float | None = None,
        choices: tuple[str, ...] = (),
    ) -> None:
        super().__init__(f"{value!r} is not a value of the {setting} setting")
        self.setting = setting
        self.value = value
        self.low = low
        self.high = high
        self.choices = choices

    @property
    def message_key(self) -> str:
        if self.setting in self.SETTINGS:
            return f"channel_setting.invalid.{self.setting}"
        return "channel_setting.invalid.any"

    @property
    def params(self) -> dict[str, object]:
        return {
            "value": self.value[:100],
            "low": _plain(self.low),
            "high": _plain(self.high),
            "choices": ", ".join(self.choices),
        }


class ModeUnavailable(ChatError):
    """A chat or thread mode cannot be used here: `reason` is "off" (MESSAGE_CONTENT=off),
    "dm" (DMs answer every message already), "thread" (a thread cannot open threads) or
    "channel" (no thread opens from a message in this kind of channel: voice, stage)."""

    REASONS: ClassVar[frozenset[str]] = frozenset({"off", "dm", "thread", "channel"})

    def __init__(self, reason: str) -> None:
        super().__init__(f"the mode is not available here ({reason})")
        self.reason = reason if reason in self.REASONS else "off"

    @property
    def message_key(self) -> str:
        return f"channel_setting.unavailable.{self.reason}"


def _plain(number: float | None) -> str:
    """A bound as a member reads it: 2, 0.5, 7,936 (never 2.0)."""
    if number is None:
        return ""
    if float(number).is_integer():
        return f"{int(number):,}"
    return f"{number:g}"


# -- the model ----------------------------------------------------------------------------


class LLMError(ChatlabError):
    """The model could not give an answer."""

    key = "error.model"


class RateLimited(LLMError):
    key = "error.rate_limited"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def message_key(self) -> str:
        if self.retry_after and self.retry_after <= 120:
            return "error.rate_limited_for"
        return self.key

    @property
    def params(self) -> dict[str, object]:
        return {"seconds": round(self.retry_after or 0)}


class QuotaExhausted(LLMError):
    """The account behind the API key has no credit or quota left."""

    key = "error.quota_exhausted"


class ContextTooLong(LLMError):
    """The server says the prompt does not fit the model's context window."""

    key = "error.context_too_long"


class ModelTimedOut(LLMError):
    key = "error.model_timed_out"


class ModelUnreachable(LLMError):
    key = "error.model_unreachable"


class AuthenticationFailed(LLMError):
    key = "error.authentication_failed"


class _AboutAModel(LLMError):
    """An error about one model, which the sentence names."""

    def __init__(self, message: str, model: str | None = None) -> None:
        super().__init__(message)
        self.model = model

    @property
    def params(self) -> dict[str, object]:
        return {"model": self.model or "?"}


class ModelNotFound(_AboutAModel):
    key = "error.model_not_found"


class Refused(LLMError):
    """The server rejected the request (bad request, content filter)."""

    key = "error.refused"


class ModelServerError(LLMError):
    """The server failed (5xx) and kept failing through the SDK's retries."""

    key = "error.model_server"


class Interrupted(LLMError):
    """The answer stopped before the server said it was finished."""

    key = "error.interrupted"


class EmptyAnswer(LLMError):
    """The server finished without writing anything."""

    key = "error.empty_answer"


class ThinkingExhausted(LLMError):
    """A reasoning model spent the whole reply budget (`max_tokens`) thinking, and wrote nothing."""

    key = "error.thinking_exhausted"

    def __init__(self, max_tokens: int) -> None:
        super().__init__(f"the model used all {max_tokens} tokens thinking and wrote no answer")
        self.max_tokens = max_tokens

    @property
    def params(self) -> dict[str, object]:
        return {"max_tokens": self.max_tokens}


class ImagesNotSupported(_AboutAModel):
    """The server said the model takes no images (HTTP 400); the service asks again without
    them, once, and remembers the model (bot/attachments.py `VisionPolicy`)."""

    key = "attachment.images_not_supported"


# -- storage ------------------------------------------------------------------------------


class StoreError(ChatlabError):
    """The database could not do what was asked."""

    key = "error.storage"


class StorageFull(StoreError):
    """The disk (or the database's page limit) is full."""

    key = "error.storage_full"


class DatabaseInUse(StoreError):
    """Another process holds the database's lock (start-up only: never shown to a member)."""


class ShardsInUse(StoreError):
    """Another process holds one of the shards this one was told to run (start-up only)."""


class DatabaseMissing(StoreError):
    """The database file was deleted or replaced while the bot ran."""

    key = "error.database_missing"
