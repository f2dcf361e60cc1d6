"""A streamed reply on screen: bounded work for any answer, and what an unkept answer looks like."""

from __future__ import annotations

import asyncio

import pytest

import cogs._reply
from bot.chat import Answer
from cogs._reply import MAX_MESSAGES, StreamedReply, answer_footer
from cogs._text import DISCORD_LIMIT, utf16_len
from tests.screen import Screen

TIMED_OUT = "The model took too long to answer; please try again."
CUT_OFF = "-# ✂️ Cut off — these words were not kept in the conversation."


@pytest.fixture
def split_work(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every text a reply gives the splitter."""
    work: list[int] = []
    split = cogs._reply.split_message

    def counted(text: str, *args: object, **kwargs: object) -> list[str]:
        work.append(len(text))
        return split(text, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cogs._reply, "split_message", counted)
    return work


async def test_a_huge_streamed_answer_costs_each_render_bounded_work(split_work):
    # A server that ignores max_tokens: 10 MB in 8 KB deltas, rendered as it streams.
    screen = Screen()
    reply: StreamedReply[int] = StreamedReply(screen, interval=0)
    answer = ("All work and no play makes a long answer. " * 40 + "\n\n") * 6000
    deltas = [answer[at : at + 8192] for at in range(0, len(answer), 8192)]

    for number, delta in enumerate(deltas):
        await reply.add(delta)
        if number % 100 == 0:
            for _ in range(3):
                await asyncio.sleep(0)  # the pacer's turn: it renders what has grown
    await reply.finish(answer)

    assert len(answer) > 10_000_000
    assert len(split_work) >= 3  # the first words, at least one paced render, the final one
    assert max(split_work) <= (MAX_MESSAGES + 2) * DISCORD_LIMIT
    assert len(screen.messages) == MAX_MESSAGES
    assert screen.messages[-1].endswith("/export has all of it.")
    assert all(utf16_len(m) <= DISCORD_LIMIT for m in screen.messages)


async def test_shown_words_of_a_failed_answer_are_marked_as_not_kept():
    screen = Screen()
    reply: StreamedReply[int] = StreamedReply(screen, interval=3600)

    await reply.add("The beginning of an")
    assert screen.messages == ["The beginning of an ⏳"]
    await reply.fail(TIMED_OUT)

    assert screen.messages == [f"The beginning of an\n{CUT_OFF}\n\n⚠️ {TIMED_OUT}"]


async def test_a_failure_before_any_words_is_the_sentence_alone():
    screen = Screen()
    reply: StreamedReply[int] = StreamedReply(screen, header="@Ann asked:\n> hi\n\n")

    await reply.notice("⏳ Waiting…")
    await reply.fail(TIMED_OUT)

    assert screen.messages == [f"@Ann asked:\n> hi\n\n⚠️ {TIMED_OUT}"]


async def test_a_stopped_answer_keeps_what_was_shown_marked_as_stopped():
    screen = Screen()
    reply: StreamedReply[int] = StreamedReply(screen, interval=3600)

    await reply.add("Half an answer")
    await reply.stopped("Stopped by @Ann; not kept.")

    assert screen.messages == ["Half an answer\n-# ⏹️ Stopped by @Ann; not kept."]


async def test_an_answer_stopped_before_any_words_says_so():
    screen = Screen()
    reply: StreamedReply[int] = StreamedReply(screen, header="@Ann asked:\n> hi\n\n")

    await reply.notice("⏳ Waiting…")
    await reply.stopped("Stopped by @Mod; not kept.")

    assert screen.messages == ["@Ann asked:\n> hi\n\n-# ⏹️ Stopped by @Mod; not kept."]


async def test_a_note_under_words_cut_inside_a_code_block_goes_below_the_block():
    screen = Screen()
    reply: StreamedReply[int] = StreamedReply(screen, interval=3600)

    await reply.add("Here:\n````python\nfor x in")
    await reply.fail(TIMED_OUT)

    assert screen.messages == [f"Here:\n````python\nfor x in\n````\n{CUT_OFF}\n\n⚠️ {TIMED_OUT}"]


async def test_a_footer_under_a_complete_answer_ending_in_an_open_block_is_below_it():
    screen = Screen()
    reply: StreamedReply[int] = StreamedReply(screen, interval=3600)

    await reply.finish("```js\nlet a =", "\n\n-# The answer hit the reply limit.")

    assert screen.messages == ["```js\nlet a =\n```\n\n-# The answer hit the reply limit."]


async def test_a_failed_answer_too_long_to_show_still_ends_with_its_sentence():
    screen = Screen()
    reply: StreamedReply[int] = StreamedReply(screen, interval=3600, limit=300, max_messages=2)

    await reply.add("word " * 1000)
    await reply.fail(TIMED_OUT)

    assert len(screen.messages) == 2
    assert all(utf16_len(m) <= 300 for m in screen.messages)
    last = screen.messages[-1]
    assert last.endswith(f"\n{CUT_OFF}\n\n⚠️ {TIMED_OUT}")
    assert "too long to show here in full" in last and "/export" not in last  # nothing was kept


async def test_a_complete_answer_too_long_to_show_keeps_its_footer():
    screen = Screen()
    reply: StreamedReply[int] = StreamedReply(screen, interval=3600, limit=300, max_messages=2)

    await reply.finish("word " * 1000, "\n\n-# The answer hit the reply limit.")

    assert len(screen.messages) == 2
    assert all(utf16_len(m) <= 300 for m in screen.messages)
    assert screen.messages[-1].endswith(
        "/export has all of it.\n\n-# The answer hit the reply limit."
    )


def test_a_cut_answer_says_where_it_was_cut_in_the_members_language():
    answer = Answer("y" * 123_456, "m", "length", None, None, 0, 0, cut=True)

    english = answer_footer(answer, 1024, "en-US")
    chinese = answer_footer(answer, 1024, "zh-CN")

    assert english == (
        "\n\n-# The model server kept writing past the reply limit; "
        "I cut the answer at 123,456 characters."
    )
    assert "123,456" in chinese and chinese != english
