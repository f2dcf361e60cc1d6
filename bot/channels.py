"""A channel's own settings, declared once: name, type, default, bounds, inheritance, validation.

    setting           type    default (bot setting)  bounds                       stored as
    temperature       number  TEMPERATURE            0 to 2                       option
    max_tokens        whole   MAX_TOKENS             16 to CONTEXT_WINDOW - 256   option
    history_rounds    whole   MAX_ROUNDS             0 to 1000                    option
    reasoning_effort  choice  REASONING_EFFORT       minimal, low, medium, high   its own column
    mode              choice  mention                mention, chat, threads       option

The store keeps options as text (`ChannelSettings.options`, by name) and knows nothing of what
they mean. Here, `Setting.parse` checks what a moderator typed (raising `InvalidSetting`, whose
sentence names the bounds), `Setting.text` is a value's stored form, and `Setting.read` reads a
stored text back leniently: a value stored under older bounds (a smaller CONTEXT_WINDOW since) is
clamped into today's, an unreadable one is the default. `resolve` gives the values in force in a
channel and where each comes from: the channel itself, its parent (a thread inherits each setting
its parent has until it sets its own), or the bot's default.

Modes: "mention" answers mentions, replies and DMs (as always); "chat" answers every member
message; "threads" opens a public thread for each mention there, and each such thread is then a
chat channel for its life. A thread cannot open threads: in a thread, "threads" reads as "chat".

Nothing here knows Discord, the store's engine or the model: plain values in, plain values out.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from bot.errors import InvalidSetting
from bot.storage.records import ChannelSettings

# A reply may not take so much of the context window that no prompt and short question fit
# (the room the system prompt check keeps too).
QUESTION_ROOM = 256
MIN_MAX_TOKENS = 16
MAX_HISTORY_ROUNDS = 1000
MAX_TEMPERATURE = 2.0
# A token is rarely more than this many characters: an answer longer than `max_tokens` times
# this comes from a server that ignores `max_tokens`, and is cut.
CHARS_PER_TOKEN_CAP = 16

Source = Literal["channel", "parent", "default"]
Kind = Literal["number", "whole", "choice"]
Value = float | int | str | None


class Mode(enum.StrEnum):
    MENTION = "mention"  # mentions, replies and DMs only
    CHAT = "chat"  # every member message
    THREADS = "threads"  # a mention opens a public thread, which then is a chat channel


EFFORTS = ("minimal", "low", "medium", "high")


class Defaults(Protocol):
    """The bot's own settings, each the default of a channel setting (a `ChatConfig` is one)."""

    @property
    def temperature(self) -> float: ...
    @property
    def max_tokens(self) -> int: ...
    @property
    def max_rounds(self) -> int: ...
    @property
    def context_window(self) -> int: ...
    @property
    def reasoning_effort(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Setting:
    """One per-channel setting: how it is checked, stored, read back and defaulted."""

    name: str  # the store's option name; the catalogue names it `channel_setting.name.<name>`
    kind: Kind
    default: Callable[[Defaults], Value]
    low: float = 0
    high: Callable[[Defaults], float] = lambda defaults: math.inf
    choices: tuple[str, ...] = ()

    def bounds(self, defaults: Defaults) -> tuple[float, float]:
        if self.kind == "whole":
            return int(self.low), int(self.high(defaults))
        return self.low, self.high(defaults)

    def parse(self, typed: str, defaults: Defaults) -> Value:
        """What a moderator typed, checked: `InvalidSetting` (naming the bounds) if it is not
        a value of this setting."""
        cleaned = typed.strip()
        if self.kind == "choice":
            if cleaned.lower() not in self.choices:
                raise InvalidSetting(self.name, typed, choices=self.choices)
            return cleaned.lower()
        low, high = self.bounds(defaults)
        value = _number(cleaned, whole=self.kind == "whole")
        if value is None or not low <= value <= high:
            raise InvalidSetting(self.name, typed, low=low, high=high)
        return value

    def read(self, stored: str, defaults: Defaults) -> Value:
        """A stored value: clamped into today's bounds; the default if it cannot be read."""
        if self.kind == "choice":
            return stored if stored in self.choices else self.default(defaults)
        value = _number(stored, whole=self.kind == "whole")
        if value is None:
            return self.default(defaults)
        low, high = self.bounds(defaults)
        clamped = min(max(value, low), high)
        return int(clamped) if self.kind == "whole" else float(clamped)

    def text(self, value: Value) -> str:
        """The value's stored (and shown) form: `0.7`, `512`, `chat`."""
        if isinstance(value, float):
            return f"{value:g}"
        return "" if value is None else str(value)


def _number(text: str, *, whole: bool) -> float | int | None:
    """A plain decimal number (ASCII digits: not `١٢`, `1_000`, `inf` or `1e3` for a whole)."""
    cleaned = text.strip().replace(",", ".") if not whole else text.strip()
    digits = cleaned.removeprefix("-").removeprefix("+").replace(".", "", 1)
    if not digits or not (digits.isascii() and digits.isdecimal()) or len(digits) > 15:
        return None
    if whole:
        return int(cleaned) if "." not in cleaned else None
    value = float(cleaned)
    return value if math.isfinite(value) else None


TEMPERATURE = Setting(
    "temperature", "number", lambda d: d.temperature, low=0.0, high=lambda d: MAX_TEMPERATURE
)
MAX_TOKENS = Setting(
    "max_tokens",
    "whole",
    lambda d: d.max_tokens,
    low=MIN_MAX_TOKENS,
    # Never below the bot's own MAX_TOKENS: the default can always be set explicitly.
    high=lambda d: max(MIN_MAX_TOKENS, d.context_window - QUESTION_ROOM, d.max_tokens),
)
HISTORY_ROUNDS = Setting(
    "history_rounds", "whole", lambda d: d.max_rounds, low=0, high=lambda d: MAX_HISTORY_ROUNDS
)
REASONING_EFFORT = Setting(
    "reasoning_effort", "choice", lambda d: d.reasoning_effort, choices=EFFORTS
)
MODE = Setting("mode", "choice", lambda d: Mode.MENTION.value, choices=tuple(Mode))

# In the order /info shows them. The store keeps each but the effort as an option by its name.
SETTINGS = (TEMPERATURE, MAX_TOKENS, HISTORY_ROUNDS, REASONING_EFFORT, MODE)
BY_NAME: Mapping[str, Setting] = {setting.name: setting for setting in SETTINGS}


@dataclass(frozen=True, slots=True)
class ChannelValues:
    """The settings in force in one channel, and where each comes from."""

    temperature: float
    max_tokens: int
    history_rounds: int
    reasoning_effort: str | None  # None: the server's default
    mode: Mode  # as set, or inherited (in a thread "threads" reads as "chat": see below)
    in_thread: bool
    sources: Mapping[str, Source]
    # A thread members opened themselves (not the bot): the edge knows, and says so.
    members_thread: bool = False

    @property
    def answers_every_message(self) -> bool:
        return answers_every_message(
            self.mode, in_thread=self.in_thread, members_thread=self.members_thread
        )

    @property
    def opens_threads(self) -> bool:
        return self.mode is Mode.THREADS and not self.in_thread

    @property
    def answer_cap(self) -> int:
        """The most characters an answer may have before it is cut (CHARS_PER_TOKEN_CAP)."""
        return self.max_tokens * CHARS_PER_TOKEN_CAP

    def value(self, name: str) -> Value:
        return getattr(self, name)  # type: ignore[no-any-return]


def answers_every_message(mode: Mode, *, in_thread: bool, members_thread: bool = False) -> bool:
    """A chat channel, or a thread whose mode (its own or its parent's) is chat, or threads for a
    thread the bot opened: a thread members open themselves under a thread channel is theirs,
    and answers mentions only."""
    return mode is Mode.CHAT or (in_thread and mode is Mode.THREADS and not members_thread)


def history_rounds(settings: ChannelSettings, defaults: Defaults) -> int:
    """The history rounds in force (the store's window query applies the same rule)."""
    stored = settings.options.get(HISTORY_ROUNDS.name)
    value = defaults.max_rounds if stored is None else HISTORY_ROUNDS.read(stored, defaults)
    return int(value or 0)


def resolve(settings: ChannelSettings, defaults: Defaults, *, in_thread: bool) -> ChannelValues:
    """The values in force: the channel's own, else (per setting) its parent's, else default."""
    values: dict[str, Value] = {}
    sources: dict[str, Source] = {}
    for setting in SETTINGS:
        if setting is REASONING_EFFORT:
            stored = settings.reasoning_effort
        else:
            stored = settings.options.get(setting.name)
        if stored is None:
            values[setting.name] = setting.default(defaults)
            sources[setting.name] = "default"
        else:
            values[setting.name] = setting.read(stored, defaults)
            sources[setting.name] = "parent" if setting.name in settings.inherited else "channel"
    effort = values["reasoning_effort"]
    return ChannelValues(
        temperature=float(values["temperature"] or 0),
        max_tokens=int(values["max_tokens"] or MIN_MAX_TOKENS),
        history_rounds=int(values["history_rounds"] or 0),
        reasoning_effort=None if effort is None else str(effort),
        mode=Mode(str(values["mode"])),
        in_thread=in_thread,
        sources=sources,
    )


class ModeBook:
    """Each channel's own mode, in memory: a message's channel is looked up here (no database
    trip per message), a thread through its parent.

    Filled from the store once (`fill`), then kept current as modes are set. With several
    processes a guild is one shard's, so the process where a moderator changes a channel's mode
    is the one that hears the channel's messages.
    """

    def __init__(self) -> None:
        self._modes: dict[int, Mode | None] = {}  # None: unset here since the store was read
        self.filled = False

    def fill(self, modes: Mapping[int, Mode]) -> None:
        self._modes = {**modes, **self._modes}  # a mode set or unset meanwhile is newer
        self.filled = True

    def set(self, channel_id: int, mode: Mode | None) -> None:
        self._modes[channel_id] = mode

    def mode(self, channel_id: int, parent_id: int | None = None) -> Mode:
        """The mode in force: the channel's own, else its parent's, else "mention"."""
        mode = self._modes.get(channel_id)
        if mode is None and parent_id is not None:
            mode = self._modes.get(parent_id)
        return mode or Mode.MENTION

    def channels(self) -> list[int]:
        """The channels whose own mode is not "mention"."""
        return [channel for channel, mode in self._modes.items() if mode is not Mode.MENTION]
