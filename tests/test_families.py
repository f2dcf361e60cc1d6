"""Model families: which parameters a model takes, read from its name or an admin's override."""

from __future__ import annotations

import pytest

from bot.families import CHAT, FAMILIES, REASONING, Family, family_of


@pytest.mark.parametrize(
    "model",
    [
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "gpt-5.1",
        "gpt-5.2-codex",
        "gpt-5-mini-2025-08-07",
        "GPT-5-Mini",
        "o1",
        "o1-mini",
        "o1-pro",
        "o3",
        "o3-mini",
        "o3-pro",
        "o3-2025-04-16",
        "o4-mini",
        "o4-mini-deep-research",
        "openai/o3",
        "openai/gpt-5-mini",
        "azure/o4-mini",
        "openrouter/openai/gpt-5",
    ],
)
def test_openai_reasoning_models_are_reasoning(model):
    family = family_of(model)

    assert family is REASONING
    assert family.token_parameter == "max_completion_tokens"
    assert (family.sampling, family.effort) == (False, True)


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4",
        "gpt-3.5-turbo",
        "gpt-35-turbo",
        "chatgpt-4o-latest",
        "gpt-50",
        "o100",
        "omni-moderation-latest",
        "llama3.1:8b",
        "qwen3:8b",
        "deepseek-r1:14b",
        "gpt-oss:20b",
        "openai/gpt-oss-120b",
        "my-proxy-model",
        "",
    ],
)
def test_every_other_model_is_a_chat_model(model):
    family = family_of(model)

    assert family is CHAT
    assert family.token_parameter == "max_tokens"
    assert (family.sampling, family.effort) == (True, False)


def test_an_exact_override_wins_over_the_name():
    assert family_of("my-proxy-gpt5", {"my-proxy-gpt5": "reasoning"}) is REASONING
    assert family_of("gpt-5-mini", {"gpt-5-mini": "chat"}) is CHAT


def test_a_glob_override_matches_a_family_of_names():
    overrides = {"my-proxy-*": "reasoning"}

    assert family_of("my-proxy-fast", overrides) is REASONING
    assert family_of("your-proxy-fast", overrides) is CHAT
    assert family_of("o3", overrides) is REASONING  # no override: the built-in rule


def test_an_exact_name_wins_over_a_glob_and_globs_go_in_order():
    overrides = {"proxy-*": "reasoning", "proxy-small-*": "chat", "proxy-small-x": "reasoning"}

    assert family_of("proxy-small-y", overrides) is REASONING  # the first glob that matches
    assert family_of("proxy-small-x", overrides) is REASONING
    assert family_of("proxy-small-y", {"proxy-small-*": "chat", "proxy-*": "reasoning"}) is CHAT


def test_globs_are_case_sensitive_like_model_names():
    assert family_of("Proxy-1", {"proxy-*": "reasoning"}) is CHAT


def test_an_override_naming_no_family_is_an_error():
    with pytest.raises(ValueError, match="unknown model family 'fast'"):
        family_of("m", {"m": "fast"})


def test_families_are_exported_by_name_and_immutable():
    assert dict(FAMILIES) == {"reasoning": REASONING, "chat": CHAT}
    assert all(isinstance(family, Family) for family in FAMILIES.values())
    with pytest.raises(TypeError):
        FAMILIES["other"] = CHAT  # type: ignore[index]
    with pytest.raises(AttributeError):
        REASONING.sampling = True  # type: ignore[misc]
