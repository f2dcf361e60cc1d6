"""The per-channel settings' declaration (bot/channels.py): parsing, bounds, stored text,
inheritance and sources, modes — pure, no I/O."""

from __future__ import annotations

import pytest

from bot.channels import (
    BY_NAME,
    HISTORY_ROUNDS,
    MAX_TOKENS,
    MODE,
    REASONING_EFFORT,
    TEMPERATURE,
    Mode,
    ModeBook,
    answers_every_message,
    history_rounds,
    resolve,
)
from bot.errors import InvalidSetting
from bot.messages import text
from bot.storage.records import ChannelSettings
from cogs._render import thread_name
from tests.conftest import make_config

CONFIG = make_config(temperature=0.7, max_tokens=256, context_window=8192, max_rounds=5)


def settings(
    options: dict[str, str] | None = None,
    inherited: frozenset[str] = frozenset(),
    effort: str | None = None,
) -> ChannelSettings:
    return ChannelSettings(None, None, effort, options or {}, inherited)


@pytest.mark.parametrize(
    ("setting", "typed", "value"),
    [
        (TEMPERATURE, "0", 0.0),
        (TEMPERATURE, " 1.25 ", 1.25),
        (TEMPERATURE, "0,5", 0.5),  # a decimal comma, as many members write it
        (TEMPERATURE, "2", 2.0),
        (MAX_TOKENS, "16", 16),
        (MAX_TOKENS, "7936", 7936),  # the context window less the room for a question
        (HISTORY_ROUNDS, "0", 0),
        (HISTORY_ROUNDS, "1000", 1000),
        (REASONING_EFFORT, "High", "high"),
        (MODE, "chat", "chat"),
        (MODE, " THREADS", "threads"),
    ],
)
def test_a_value_within_bounds_is_taken(setting, typed, value):
    parsed = setting.parse(typed, CONFIG)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("setting", "typed"),
    [
        (TEMPERATURE, "2.01"),
        (TEMPERATURE, "-0.1"),
        (TEMPERATURE, "hot"),
        (TEMPERATURE, "nan"),
        (TEMPERATURE, "inf"),
        (TEMPERATURE, "1e0"),
        (TEMPERATURE, ""),
        (MAX_TOKENS, "15"),
        (MAX_TOKENS, "7937"),
        (MAX_TOKENS, "100.5"),
        (MAX_TOKENS, "١٢٣"),  # digits, but not ASCII ones
        (MAX_TOKENS, "1_000"),
        (MAX_TOKENS, "9" * 40),
        (HISTORY_ROUNDS, "1001"),
        (HISTORY_ROUNDS, "-1"),
        (REASONING_EFFORT, "extreme"),
        (MODE, "everything"),
    ],
)
def test_a_value_out_of_bounds_is_refused_with_a_sentence_naming_them(setting, typed):
    with pytest.raises(InvalidSetting) as refused:
        setting.parse(typed, CONFIG)

    sentence = text("en-US", refused.value.message_key, **refused.value.params)
    assert refused.value.setting == setting.name
    if setting.kind == "choice":
        assert all(choice in sentence for choice in setting.choices)
    else:
        low, high = setting.bounds(CONFIG)
        assert f"{low:g}" in sentence.replace(",", "") and f"{high:g}" in sentence.replace(",", "")


def test_the_reply_length_bound_follows_the_context_window_and_keeps_the_default():
    assert MAX_TOKENS.bounds(make_config(context_window=4096, max_tokens=256)) == (16, 3840)
    # A bot configured with MAX_TOKENS near the window can always set its default explicitly.
    near = make_config(context_window=4096, max_tokens=4000)
    assert MAX_TOKENS.parse("4000", near) == 4000


def test_a_stored_value_is_read_leniently():
    small = make_config(context_window=1024, max_tokens=256)
    assert MAX_TOKENS.read("7000", small) == 768  # stored under a larger window: clamped
    assert MAX_TOKENS.read("garbage", small) == 256  # unreadable: the default
    assert TEMPERATURE.read("0.3", CONFIG) == 0.3
    assert MODE.read("sideways", CONFIG) == "mention"
    assert REASONING_EFFORT.read("extreme", make_config(reasoning_effort="low")) == "low"


def test_values_are_stored_as_plain_text():
    assert TEMPERATURE.text(0.7) == "0.7" and TEMPERATURE.text(1.0) == "1"
    assert MAX_TOKENS.text(512) == "512" and MODE.text("chat") == "chat"
    assert TEMPERATURE.read(TEMPERATURE.text(0.1 + 0.2), CONFIG) == pytest.approx(0.3)


def test_values_in_force_come_from_the_channel_the_parent_or_the_default():
    values = resolve(
        settings(
            {"temperature": "1.5", "max_tokens": "512", "mode": "threads"},
            inherited=frozenset({"max_tokens", "mode", "reasoning_effort"}),
            effort="high",
        ),
        CONFIG,
        in_thread=True,
    )

    assert (values.temperature, values.max_tokens, values.history_rounds) == (1.5, 512, 5)
    assert values.reasoning_effort == "high" and values.mode is Mode.THREADS
    assert values.sources == {
        "temperature": "channel",
        "max_tokens": "parent",
        "history_rounds": "default",
        "reasoning_effort": "parent",
        "mode": "parent",
    }
    assert values.answer_cap == 512 * 16


def test_an_unset_channel_has_the_bots_settings():
    values = resolve(settings(), make_config(reasoning_effort="medium"), in_thread=False)

    assert (values.temperature, values.max_tokens, values.history_rounds) == (0.0, 256, 5)
    assert values.reasoning_effort == "medium" and values.mode is Mode.MENTION
    assert set(values.sources.values()) == {"default"}


def test_history_rounds_in_force_are_the_ones_the_window_uses():
    assert history_rounds(settings({"history_rounds": "0"}), CONFIG) == 0
    assert history_rounds(settings({"history_rounds": "12"}), CONFIG) == 12
    assert history_rounds(settings(), CONFIG) == 5


@pytest.mark.parametrize(
    ("mode", "in_thread", "every_message", "opens_threads"),
    [
        (Mode.MENTION, False, False, False),
        (Mode.MENTION, True, False, False),
        (Mode.CHAT, False, True, False),
        (Mode.CHAT, True, True, False),
        (Mode.THREADS, False, False, True),
        (Mode.THREADS, True, True, False),  # a thread of a thread channel is a chat channel
    ],
)
def test_what_each_mode_answers(mode, in_thread, every_message, opens_threads):
    values = resolve(settings({"mode": mode.value}), CONFIG, in_thread=in_thread)

    assert values.answers_every_message is every_message
    assert answers_every_message(mode, in_thread=in_thread) is every_message
    assert values.opens_threads is opens_threads


def test_the_mode_book_looks_a_thread_up_through_its_parent():
    book = ModeBook()
    book.fill({10: Mode.THREADS, 20: Mode.CHAT})
    book.set(30, Mode.MENTION)  # a thread that turned its parent's chat off for itself

    assert book.mode(10) is Mode.THREADS
    assert book.mode(11, parent_id=10) is Mode.THREADS
    assert book.mode(30, parent_id=20) is Mode.MENTION
    assert book.mode(40) is Mode.MENTION
    assert sorted(book.channels()) == [10, 20]


def test_the_mode_book_keeps_a_change_made_while_it_was_being_filled():
    book = ModeBook()
    book.set(10, None)  # unset before the store's (older) answer arrived
    book.set(20, Mode.CHAT)
    book.fill({10: Mode.CHAT})

    assert book.mode(10) is Mode.MENTION and book.mode(20) is Mode.CHAT


def test_every_setting_is_named_in_every_language():
    for name in BY_NAME:
        for locale in ("en-US", "zh-CN", "zh-TW"):
            assert text(locale, f"channel_setting.name.{name}")


@pytest.mark.parametrize(
    ("question", "name"),
    [
        ("**How** do `threads` work?", "How do threads work?"),
        ("# Title\nsecond   line", "Title second line"),
        ("ask <@123> and <#456> about <:blob:789> at <t:1700000000:R>", "ask and about at"),
        ("what does <div> do in C#?", "what does <div> do in C#?"),
        ("||spoiler|| ~~gone~~", "spoiler gone"),
        ("```\n```", "Question from Ann"),
        ("x" * 150, "x" * 99 + "…"),
    ],
)
def test_a_thread_is_named_from_its_question_as_plain_text(question, name):
    assert thread_name(question, "Question from Ann") == name
