"""Text for Discord: splitting, mentions, quoting."""

from __future__ import annotations

import pytest

import cogs._text
from cogs._text import (
    closing_fence,
    quote,
    readable_mentions,
    split_message,
    strip_mentions,
    utf16_len,
)


def test_short_text_is_one_chunk():
    assert split_message("hello") == ["hello"]
    assert split_message("") == []


def test_paragraphs_are_preferred_over_lines_and_words():
    text = "a" * 900 + "\n\n" + "b" * 900 + "\n" + "c" * 900

    chunks = split_message(text, 2000)

    assert chunks == ["a" * 900, "b" * 900 + "\n" + "c" * 900]


def test_a_code_block_is_closed_and_reopened_with_its_language():
    code = "\n".join(f"line {n}" for n in range(400))
    chunks = split_message(f"```rust\n{code}\n```", 500)

    assert len(chunks) > 3
    assert all(c.startswith("```rust\n") for c in chunks)
    assert all(c.endswith("\n```") for c in chunks)


def test_limits_count_utf16_units_as_discord_does():
    chunks = split_message("🦊" * 1500, 2000)  # each fox is two UTF-16 units

    assert [utf16_len(c) for c in chunks] == [2000, 1000]


@pytest.fixture
def characters_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many characters the splitter measures and searches for cuts, per call."""
    read: list[int] = []
    cut, length = cogs._text._cut, cogs._text.utf16_len

    def counted_cut(text: str, room: int) -> int:
        read.append(len(text))
        return cut(text, room)

    def counted_length(text: str) -> int:
        read.append(len(text))
        return length(text)

    monkeypatch.setattr(cogs._text, "_cut", counted_cut)
    monkeypatch.setattr(cogs._text, "utf16_len", counted_length)
    return read


def test_splitting_reads_the_text_a_bounded_number_of_times(characters_read):
    text = ("word " * 300 + "\n\n") * 400  # 600 KB, 300 chunks: quadratic work would show

    chunks = split_message(text)

    assert len(chunks) >= 300
    assert sum(characters_read) <= 2 * len(text)
    assert max(characters_read) <= 2001  # a window of the text, never the whole remainder


def test_max_chunks_stops_early_and_reads_only_what_it_needs(characters_read):
    text = "```python\n" + "x = 1  # a line of code\n" * 400_000  # 10 MB

    first = split_message(text, 2000, max_chunks=3)

    assert sum(characters_read) <= 3 * (2001 + 20)  # three windows and three fence openings
    assert first == split_message(text[:10_000], 2000)[:3]
    assert len(first) == 3 and all(c.startswith("```python\n") for c in first)


def test_lone_surrogates_are_split_without_error():
    # Valid in a Python str (JSON can carry them); one UTF-16 unit each.
    chunks = split_message("a\ud83d" * 3000, 2000)

    assert [utf16_len(c) for c in chunks] == [2000, 2000, 2000]


def test_whitespace_only_text_longer_than_the_limit_still_fits():
    assert all(utf16_len(c) <= 100 for c in split_message(" " * 5000, 100))


def test_the_fence_left_open_at_the_end_is_closed_with_as_many_backticks():
    assert closing_fence("```py\nx = 1") == "\n```"
    assert closing_fence("text\n````\nx\n```") == "\n````"
    assert closing_fence("```py\nx = 1\n```\nafter") == ""
    assert closing_fence("no code at all") == ""


def test_only_the_bots_mentions_are_stripped():
    assert strip_mentions("<@42> hi <@!42> and <@7>", 42) == "hi  and <@7>"


def test_other_mentions_become_names_the_model_can_read():
    names = {"@7": "@Bob", "@&9": "@Mods", "#5": "#general"}

    text = readable_mentions("ask <@7> and <@!7>, <@&9> in <#5> or <@8>", names)

    assert text == "ask @Bob and @Bob, @Mods in #general or <@8>"


def test_quotes_are_block_quotes_shortened():
    assert quote("one\ntwo") == "> one\n> two"
    assert quote("x" * 400, 10) == "> " + "x" * 9 + "…"
