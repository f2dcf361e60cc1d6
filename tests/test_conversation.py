"""Choosing the window of history: pure arithmetic over stored token counts."""

from __future__ import annotations

import pytest

from bot.conversation import (
    REPLY_PRIMING_TOKENS,
    TOKENS_PER_MESSAGE,
    Message,
    QuestionTooLong,
    Round,
    choose_window,
    history_budget,
    prompt_messages,
    speaker_label,
)


def make_round(n: int, tokens: int = 10) -> Round:
    return Round(
        Message("user", f"q{n}", tokens, author_id=n, author_name=f"user{n}"),
        Message("assistant", f"a{n}", tokens),
    )


ROUND_COST = 2 * (10 + TOKENS_PER_MESSAGE)


def test_round_cap_keeps_the_newest_rounds_oldest_first():
    rounds = [make_round(n) for n in range(8)]

    window = choose_window(rounds, budget=10_000, max_rounds=5)

    assert [r.question.content for r in window] == ["q3", "q4", "q5", "q6", "q7"]


def test_token_budget_drops_whole_oldest_rounds():
    rounds = [make_round(n) for n in range(8)]

    window = choose_window(rounds, budget=3 * ROUND_COST + ROUND_COST - 1, max_rounds=100)

    assert [r.question.content for r in window] == ["q5", "q6", "q7"]


def test_a_round_too_big_ends_the_window_even_if_older_ones_would_fit():
    rounds = [make_round(0), make_round(1, tokens=1000), make_round(2)]

    window = choose_window(rounds, budget=3 * ROUND_COST, max_rounds=10)

    assert [r.question.content for r in window] == ["q2"]


def test_zero_rounds_or_zero_budget_gives_no_history():
    rounds = [make_round(n) for n in range(3)]

    assert choose_window(rounds, budget=10_000, max_rounds=0) == []
    assert choose_window(rounds, budget=0, max_rounds=10) == []


def test_budget_is_the_context_minus_reply_system_and_question():
    system = Message("system", "s", 100)
    question = Message("user", "q", 50)

    budget = history_budget(context_window=1000, max_tokens=200, system=system, question=question)

    assert budget == 1000 - 200 - (100 + 3) - (50 + 3) - REPLY_PRIMING_TOKENS


def test_a_question_that_cannot_fit_alone_is_refused():
    system = Message("system", "s", 100)
    question = Message("user", "q", 800)

    with pytest.raises(QuestionTooLong) as caught:
        history_budget(context_window=1000, max_tokens=200, system=system, question=question)

    assert caught.value.needed == 803


def test_the_model_sees_who_said_what():
    system = Message("system", "be nice", 3)
    question = Message("user", "and you?", 3, author_id=2, author_name="Bob")

    messages = prompt_messages(system, [make_round(1)], question)

    assert messages == [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "[user1]: q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "[Bob]: and you?"},
    ]


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("Ann", "Ann"),
        ("  ]evil[\n\nname  ", "evil name"),
        ("a\u200bb\u202ec", "a b c"),
        ("", "someone"),
        ("\u200b\u200b", "someone"),
        ("x" * 100, "x" * 32),
        ("名前 🦊", "名前 🦊"),
    ],
)
def test_speaker_labels_are_sanitised(name, label):
    assert speaker_label(name) == label
