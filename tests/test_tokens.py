"""Token counting: exact for OpenAI encodings, offline; an estimate for unknown models."""

from __future__ import annotations

import pytest
import tiktoken

from bot import tokens
from bot.tokens import EstimatingCounter, counter_for


@pytest.fixture(autouse=True)
def fresh_counters():
    counter_for.cache_clear()
    yield
    counter_for.cache_clear()


def test_known_models_count_exactly_offline(tmp_path, monkeypatch):
    # An empty cache: the counter must seed it from the bundled files (the autouse fixture
    # forbids any non-loopback connection, so a download would fail the test).
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    counter_for.cache_clear()
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})

    gpt4o = counter_for("gpt-4o-mini")
    gpt4 = counter_for("gpt-4")

    assert (gpt4o.name, gpt4o.exact) == ("o200k_base", True)
    assert (gpt4.name, gpt4.exact) == ("cl100k_base", True)
    # Reference ids published with tiktoken for these encodings.
    assert gpt4.encoding.encode("hello world") == [15339, 1917]  # type: ignore[attr-defined]
    assert gpt4o.encoding.encode("hello world") == [24912, 2375]  # type: ignore[attr-defined]
    assert gpt4.count("tiktoken is great!") == 6
    assert len(list(tmp_path.iterdir())) == 2


def test_a_corrupt_cache_file_is_replaced_by_the_verified_one(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    counter_for.cache_clear()
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    tokens._seed_tiktoken_cache("cl100k_base")
    (seeded,) = tmp_path.iterdir()
    seeded.write_bytes(b"garbage")

    counter = counter_for("gpt-4")

    assert counter.exact is True
    assert counter.count("hello world") == 2


def test_without_any_vocabulary_the_counter_estimates_instead_of_crashing(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    counter_for.cache_clear()
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})

    def no_bundle(filename: str) -> bytes:
        raise FileNotFoundError(filename)

    monkeypatch.setattr(tokens, "_tiktoken_file_from_quicktok", no_bundle)

    counter = counter_for("gpt-4")  # tiktoken would download: offline, that fails

    assert counter.exact is False
    assert counter.count("hello world") == 4


def test_special_tokens_in_text_are_counted_as_plain_text():
    counter = counter_for("gpt-4o")

    assert counter.count("<|endoftext|>") > 1


def test_unknown_models_get_a_conservative_estimate():
    counter = counter_for("llama3.1:8b")

    assert counter.exact is False
    english = "The quick brown fox jumps over the lazy dog. " * 20
    assert counter.count(english) >= counter_for("gpt-4o").count(english)
    assert counter.count("") == 0
    assert counter.count("日本語") == 3  # nine UTF-8 bytes


def test_tokenizer_setting_overrides_the_model_lookup():
    assert counter_for("my-local-model", "o200k_base").exact is True
    assert counter_for("gpt-4o", "estimate") == EstimatingCounter()
