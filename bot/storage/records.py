"""What the store keeps and gives back: plain records, the same for every engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.conversation import Message


@dataclass(frozen=True, slots=True)
class SystemPrompt:
    text: str
    set_by_id: int | None
    set_by_name: str | None
    set_at: float | None
    inherited: bool = False


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """A channel's settings in force: its own, else (per setting) its parent's, else unset.

    `options` are the per-channel settings other than the prompt, model and effort (temperature,
    reply length, history rounds, chat/thread mode, ...), by name, as text; what each name means,
    its type and its default are declared outside the store. `inherited` names the options (and
    "model", "reasoning_effort") whose value came from the parent.
    """

    prompt: SystemPrompt | None
    model: str | None
    reasoning_effort: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    inherited: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PromptChange:
    prompt: str | None
    set_by_id: int | None
    set_by_name: str | None
    set_at: float


@dataclass(frozen=True, slots=True)
class Usage:
    answers: int
    prompt_tokens: int
    completion_tokens: int
    unreported: int  # answers whose server sent no usage

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class StoredMessage:
    message: Message
    created_at: float


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """A completed turn, as it is written."""

    channel_id: int
    model: str
    question: Message
    answer: Message
    prompt_tokens: int | None
    completion_tokens: int | None
    question_message_id: int | None = None  # the Discord message (or interaction) asked in
    guild_id: int | None = None  # None in DMs
    # The bytes of the question's stored attachments (images), by SHA-256 hex digest (the
    # `Attachment.sha256` of `question.attachments`); kept once per digest however often sent.
    blobs: Mapping[str, bytes] = field(default_factory=dict)
