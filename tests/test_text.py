"""Text for Discord: splitting, mentions, quoting."""

from __future__ import annotations

from bot.text import quote, readable_mentions, split_message, strip_mentions, utf16_len


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


def test_only_the_bots_mentions_are_stripped():
    assert strip_mentions("<@42> hi <@!42> and <@7>", 42) == "hi  and <@7>"


def test_other_mentions_become_names_the_model_can_read():
    names = {"@7": "@Bob", "@&9": "@Mods", "#5": "#general"}

    text = readable_mentions("ask <@7> and <@!7>, <@&9> in <#5> or <@8>", names)

    assert text == "ask @Bob and @Bob, @Mods in #general or <@8>"


def test_quotes_are_block_quotes_shortened():
    assert quote("one\ntwo") == "> one\n> two"
    assert quote("x" * 400, 10) == "> " + "x" * 9 + "…"
