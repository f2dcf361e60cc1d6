"""Token counting: exact for OpenAI encodings, offline; an estimate for unknown models."""

from __future__ import annotations

import math

import pytest
import tiktoken

from bot import tokens
from bot.tokens import EstimatingCounter, counter_for, image_tokens


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


# -- gpt-oss (o200k_harmony) and the model table --

# Ids tiktoken 0.14 gives for this text with o200k_harmony (and, for ordinary text, o200k_base).
SAMPLE = "Thinking… 12 s — 思考中"
SAMPLE_IDS = [133850, 1131, 220, 899, 265, 2733, 162737, 18056, 1404]


@pytest.mark.parametrize("model", ["gpt-oss:20b", "gpt-oss-120b", "openai/gpt-oss-120b", "gpt-oss"])
def test_gpt_oss_counts_exactly_offline(tmp_path, monkeypatch, model):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})

    counter = counter_for(model)

    assert (counter.name, counter.exact) == ("o200k_harmony", True)
    assert counter.encoding.encode_ordinary(SAMPLE) == SAMPLE_IDS  # type: ignore[attr-defined]
    assert counter.encoding.encode("hello world") == [24912, 2375]  # type: ignore[attr-defined]
    assert counter.count(SAMPLE) == len(SAMPLE_IDS)
    assert len(list(tmp_path.iterdir())) == 1  # o200k_base's file, seeded and verified


def test_harmony_counts_are_tiktokens_own_harmony_counts(tmp_path, monkeypatch):
    # gpt-oss is counted with o200k_base's vocabulary (loaded once for both); that is exact
    # because harmony only adds special tokens, which counting treats as text.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    counter = counter_for("gpt-oss:20b")
    harmony = tiktoken.get_encoding("o200k_harmony")  # from the cache seeded above

    texts = [SAMPLE, "<|start|>assistant<|channel|>analysis<|message|>x<|end|>", "a  b\n\n\tc"]
    for text in texts:
        assert counter.count(text) == len(harmony.encode_ordinary(text))
    assert harmony.encode("<|start|>", allowed_special="all") == [200006]
    assert counter.count("<|start|>") == 5  # as text, like every special token in a message


def test_gpt_oss_and_gpt_4o_share_one_vocabulary():
    assert counter_for("gpt-oss:20b").encoding is counter_for("gpt-4o").encoding  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-5", "o200k_base"),
        ("gpt-5.1", "o200k_base"),
        ("gpt-5-mini", "o200k_base"),
        ("gpt-5.2-codex", "o200k_base"),
        ("azure/gpt-5-mini", "o200k_base"),
        ("gpt-4.1", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("openai/gpt-4.1-mini", "o200k_base"),
        ("gpt-4o", "o200k_base"),
        ("openai/gpt-4o-mini", "o200k_base"),
        ("o1", "o200k_base"),
        ("o1-pro", "o200k_base"),
        ("o3", "o200k_base"),
        ("o3-pro", "o200k_base"),
        ("o4", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("openai/o3", "o200k_base"),
        ("gpt-oss:20b", "o200k_harmony"),
        ("gpt-oss-120b", "o200k_harmony"),
        ("openai/gpt-oss-120b", "o200k_harmony"),
        ("gpt-4", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("ft:gpt-4o-mini:acme::abc123", "o200k_base"),
        ("llama3.1:8b", None),
        ("deepseek-r1:14b", None),
        ("o100", None),
    ],
)
def test_the_model_table_knows_current_openai_families(model, encoding):
    assert tokens.encoding_for(model) == encoding
    assert counter_for(model).name == (encoding or "estimate")


def test_a_loaded_counter_is_given_only_once_its_vocabulary_is_loaded(monkeypatch):
    monkeypatch.setattr(tokens, "_tried_vocabularies", set())

    assert tokens.loaded_counter("gpt-4o-mini") is None
    assert tokens.loaded_counter("gpt-4.1") is None
    assert tokens.loaded_counter("llama3.1:8b") == EstimatingCounter()  # nothing to load
    assert tokens.loaded_counter("gpt-4o", "estimate") == EstimatingCounter()

    counter_for("gpt-4o-mini")

    assert tokens.loaded_counter("gpt-4o-mini") == counter_for("gpt-4o-mini")
    shared = tokens.loaded_counter("gpt-4.1")  # the same vocabulary: kept, so nothing to load
    assert shared is not None and shared.name == "o200k_base"
    assert tokens.loaded_counter("gpt-4") is None  # cl100k_base is not loaded yet


# -- images --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "width", "height", "tokens"),
    [
        # OpenAI's own worked examples (Images and vision guide, "Calculating costs")
        ("gpt-4o", 1024, 1024, 765),  # 768x768: 4 tiles
        ("gpt-4o", 2048, 4096, 1105),  # 1024x2048, then 768x1536: 6 tiles
        ("openai/gpt-4.1", 512, 512, 85 + 170),
        ("gpt-4o-mini", 1024, 1024, 2833 + 4 * 5667),
        ("o3", 1024, 1024, 75 + 4 * 150),
        ("gpt-5", 1024, 1024, 70 + 4 * 140),
        ("gpt-4.1-mini", 1024, 1024, math.ceil(1024 * 1.62)),  # 32x32 patches
        ("gpt-4.1-mini", 1800, 2400, math.ceil(1452 * 1.62)),  # the guide's capped example
        ("llava:13b", 768, 768, 28 * 28 + 4),  # the documented estimate for other servers
    ],
)
def test_image_tokens_follow_the_published_formulas(model, width, height, tokens):
    assert image_tokens(model, width, height) == tokens


def test_the_estimate_for_other_servers_is_never_below_gpt_4o():
    for width, height in [(64, 64), (512, 512), (1024, 768), (3000, 1000), (768, 4000)]:
        assert image_tokens("qwen2.5vl", width, height) >= image_tokens("gpt-4o", width, height)
