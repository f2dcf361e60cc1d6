"""Thinking is never answer text: reasoning fields and a leading <think> block become Reasoning."""

from __future__ import annotations

import itertools
import logging

import pytest

from bot.llm import Finished, OpenAIChatModel, Reasoning, StreamEvent, ThinkSplitter
from tests.fake_openai import Reply

MESSAGES = [{"role": "user", "content": "[Ann]: why?"}]


# -- the tag splitter, at every split point --------------------------------------------------


def split(text: str, cuts: tuple[int, ...]) -> list[str]:
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def run(
    pieces: list[str], *, tagless: bool = False, finish: str = "stop"
) -> tuple[str, str, bool | None]:
    splitter = ThinkSplitter(tagless=tagless)
    events: list[str | Reasoning] = []
    for piece in pieces:
        events += splitter.feed(piece)
    events += splitter.end(finish)
    assert all(event for event in events if isinstance(event, str))  # no empty deltas
    assert all(event.text for event in events if isinstance(event, Reasoning))
    thinking = "".join(e.text for e in events if isinstance(e, Reasoning))
    answer = "".join(e for e in events if isinstance(e, str))
    return thinking, answer, splitter.learned_tagless


def every_split(text: str) -> list[list[str]]:
    """The text whole, in two pieces at every point, and in three at every pair of points."""
    points = range(1, len(text))
    cuts = [(), *((i,) for i in points), *itertools.combinations(points, 2)]
    return [split(text, c) for c in cuts]


SAMPLES = [
    # (content, thinking, answer, learned) for a model that opens its own <think>
    ("<think>\nI ponder.\n</think>\n\nThe answer.", "\nI ponder.\n", "The answer.", None),
    (" \n<think>a<b</thin</think> ans <think>", "a<b</thin", "ans <think>", None),
    ("<think></think>Answer", "", "Answer", None),
    ("<think>never closed <", "never closed <", "", None),
    ("<think>x</think>  \n ", "x", "", None),
    ("Code: <think>tag</think> stays.", "", "Code: <think>tag</think> stays.", None),
    ("<thinking>is not ours", "", "<thinking>is not ours", None),
    ("<thi", "", "<thi", None),
    ("  \n", "", "  \n", None),
    ("Plain answer.", "", "Plain answer.", None),
    # a </think> on a line of its own, no <think> before it: the model may think tagless
    ("I ponder.\n</think>\nAnswer", "", "I ponder.\n</think>\nAnswer", True),
    # one written inline is an answer talking about the tag
    ("Close it with `</think>`.", "", "Close it with `</think>`.", None),
]


@pytest.mark.parametrize(("content", "thinking", "answer", "learned"), SAMPLES)
def test_a_leading_think_block_is_split_off_at_every_split_point(
    content, thinking, answer, learned
):
    for pieces in every_split(content):
        assert run(pieces) == (thinking, answer, learned), pieces


TAGLESS_SAMPLES = [
    # (content, finish reason, thinking, answer, learned) for a model whose template opens <think>
    ("I ponder.\n</think>\n\nThe answer.", "stop", "I ponder.\n", "The answer.", True),
    ("<think>explicit</think>\nans", "stop", "explicit", "ans", None),
    ("Still thinking when cut", "length", "Still thinking when cut", "", None),
    # No </think> after a normal stop: it was the answer after all (shown as thinking meanwhile).
    ("No thinking at all.", "stop", "No thinking at all.", "No thinking at all.", False),
]


@pytest.mark.parametrize(("content", "finish", "thinking", "answer", "learned"), TAGLESS_SAMPLES)
def test_thinking_without_an_opening_tag_is_split_off_at_every_split_point(
    content, finish, thinking, answer, learned
):
    for pieces in every_split(content):
        assert run(pieces, tagless=True, finish=finish) == (thinking, answer, learned), pieces


def test_once_the_answer_has_begun_pieces_pass_through_untouched():
    splitter = ThinkSplitter()
    assert splitter.feed("<think>x</think>\n") == [Reasoning("x")]
    assert splitter.feed("Answer") == ["Answer"]

    assert splitter.passes
    assert splitter.feed("<think>") == ["<think>"]


def test_thinking_in_its_own_field_means_the_content_is_answer():
    splitter = ThinkSplitter(tagless=True)
    splitter.separately_reasoned()

    assert splitter.feed("The answer.") == ["The answer."]


# -- through the adapter and the loopback server ---------------------------------------------


async def collect(model: OpenAIChatModel, name: str) -> tuple[list[str], list[str], Finished]:
    answer: list[str] = []
    thinking: list[str] = []
    finished = None
    event: StreamEvent
    async for event in model.stream(MESSAGES, model=name, max_tokens=500, temperature=1, top_p=1):
        if isinstance(event, Finished):
            finished = event
        elif isinstance(event, Reasoning):
            thinking.append(event.text)
        else:
            answer.append(event)
    assert finished is not None
    return answer, thinking, finished


THOUGHT = "The member asks why. Let me think <carefully> about it. "
ANSWER = "Because <think> is just text here."


@pytest.mark.parametrize(
    ("field", "model"),
    [
        ("reasoning_content", "deepseek-reasoner"),  # DeepSeek, vLLM
        ("reasoning", "gpt-oss:20b"),  # Ollama, OpenRouter
        ("reasoning", "deepseek-r1:8b"),  # a tagless thinker whose server parses the thinking
        ("think", "qwen3:8b"),  # <think>…</think> in the content
        ("think_no_open", "deepseek-r1:8b"),  # the template opened <think>
        ("think_no_open", "qwq:32b"),
    ],
)
async def test_thinking_is_never_answer_text(llm_server, chat_model, field, model):
    llm_server.then(Reply(text=ANSWER, reasoning=THOUGHT, reasoning_field=field, chunk_size=5))

    answer, thinking, finished = await collect(chat_model, model)

    assert "".join(answer) == ANSWER
    assert "".join(thinking).strip() == THOUGHT.strip()
    assert len(answer) > 1  # the answer streams, it is not held to the end
    assert finished == Finished(
        "stop",
        prompt_tokens=11,
        completion_tokens=len(ANSWER) // 4 + len(THOUGHT) // 4,
        reasoning_tokens=len(THOUGHT) // 4,
    )


async def test_a_budget_spent_thinking_ends_with_length_and_no_answer(llm_server, chat_model):
    llm_server.then(Reply(text="", reasoning=THOUGHT, finish_reason="length"))

    answer, thinking, finished = await collect(chat_model, "o4-mini")

    assert answer == []
    assert "".join(thinking) == THOUGHT
    assert finished.finish_reason == "length"
    assert finished.reasoning_tokens == len(THOUGHT) // 4


async def test_a_tagless_thinker_cut_short_keeps_its_thinking_out_of_the_answer(
    llm_server, chat_model
):
    llm_server.then(
        Reply(text="", reasoning=THOUGHT, reasoning_field="think_no_open", finish_reason="length")
    )

    answer, _, finished = await collect(chat_model, "deepseek-r1:8b")

    assert answer == [] and finished.finish_reason == "length"


async def test_a_model_seen_thinking_tagless_is_split_from_its_next_answer_on(
    llm_server, chat_model, caplog
):
    caplog.set_level(logging.INFO, logger="bot.llm")
    reply = Reply(text=ANSWER, reasoning=THOUGHT, reasoning_field="think_no_open", chunk_size=7)
    llm_server.then(reply, reply, reply, reply)

    # Unknown: its first two answers cannot be told (one could be an answer about the tag).
    await collect(chat_model, "my-local-thinker")
    await collect(chat_model, "my-local-thinker")
    second, thinking, _ = await collect(chat_model, "my-local-thinker")
    third, _, _ = await collect(chat_model, "my-local-thinker")

    assert "".join(second) == ANSWER == "".join(third)
    assert "".join(thinking).strip() == THOUGHT.strip()
    notes = [r for r in caplog.records if "without an opening <think>" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.INFO


async def test_a_presumed_tagless_thinker_that_does_not_think_streams_from_its_next_answer(
    llm_server, chat_model
):
    reply = Reply(text="A plain answer, no thinking.", chunk_size=4)
    llm_server.then(reply, reply)

    first, _, _ = await collect(chat_model, "deepseek-r1:8b")
    second, thinking, _ = await collect(chat_model, "deepseek-r1:8b")

    assert first == ["A plain answer, no thinking."]  # held until the end once
    assert "".join(second) == "A plain answer, no thinking." and len(second) > 1
    assert thinking == []


async def test_a_chunk_with_both_reasoning_fields_is_one_thought(llm_server, chat_model):
    both = {
        "choices": [
            {"index": 0, "delta": {"reasoning_content": "hmm", "reasoning": "hmm", "content": ""}}
        ]
    }
    answer = {"choices": [{"index": 0, "delta": {"content": "ok"}}]}
    llm_server.then(Reply(text="", raw_chunks=[both, answer]))

    deltas, thinking, _ = await collect(chat_model, "m")

    assert thinking == ["hmm"] and deltas == ["ok"]


@pytest.mark.parametrize("details", [{"reasoning_tokens": -1}, {"reasoning_tokens": "9"}, [], 5])
async def test_absurd_reasoning_token_figures_are_unreported(llm_server, chat_model, details):
    usage = {"prompt_tokens": 3, "completion_tokens": 4, "completion_tokens_details": details}
    llm_server.then(Reply(text="fine", usage_override=usage))

    _, _, finished = await collect(chat_model, "m")

    assert finished == Finished("stop", 3, 4, None)
