"""Model families: which request parameters a model takes. Pure, stdlib only.

OpenAI's reasoning models (gpt-5.x, o1, o3, o4) answer HTTP 400 to `max_tokens` ("Use
'max_completion_tokens' instead") and to any `temperature`/`top_p` but the default 1; they take
`reasoning_effort`. Every other model — gpt-4.x, gpt-4o, and the OpenAI-compatible local servers
(Ollama, LM Studio, vLLM, llama.cpp), which take `max_tokens` — is a chat model: `max_tokens`,
`temperature` and `top_p` as set.

The family is read from the model's name: its last path segment, so provider prefixes
("openai/o3", "azure/gpt-5-mini") and Azure-style deployment names that keep the model's name
("gpt-5-mini-2025-08-07") are recognised. An admin's `overrides` map a model name, or an fnmatch
glob ("my-proxy-*"), to "reasoning" or "chat", and win over the built-in rule; an exact name wins
over a glob, and globs are tried in the order given.

A model that is still refused a parameter is handled by the adapter (bot/llm.py): it asks again
without it and remembers that for the model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Literal

FamilyName = Literal["reasoning", "chat"]


@dataclass(frozen=True, slots=True)
class Family:
    name: FamilyName
    token_parameter: Literal["max_completion_tokens", "max_tokens"]
    sampling: bool  # sends temperature and top_p
    effort: bool  # sends reasoning_effort (when one is set)


REASONING = Family("reasoning", "max_completion_tokens", sampling=False, effort=True)
CHAT = Family("chat", "max_tokens", sampling=True, effort=False)

FAMILIES: Mapping[str, Family] = MappingProxyType({"reasoning": REASONING, "chat": CHAT})

# gpt-5, gpt-5.1, gpt-5-mini, o1, o1-mini, o3-2025-04-16, o4-mini, o3-pro... but not gpt-50 or o10.
_REASONING_NAME = re.compile(r"(?:gpt-5|o[134])(?:$|[-._:@ ])", re.IGNORECASE)

_NO_OVERRIDES: Mapping[str, str] = MappingProxyType({})


def family_of(model: str, overrides: Mapping[str, str] = _NO_OVERRIDES) -> Family:
    """The family of `model`: the admin's override if one matches, else the built-in rule.

    Raises ValueError for an override naming no family (settings validate them first).
    """
    if overrides:
        chosen = overrides.get(model)
        if chosen is None:
            chosen = next(
                (name for pattern, name in overrides.items() if fnmatchcase(model, pattern)),
                None,
            )
        if chosen is not None:
            try:
                return FAMILIES[chosen]
            except KeyError:
                known = ", ".join(FAMILIES)
                raise ValueError(f"unknown model family {chosen!r} (known: {known})") from None
    base = model.rsplit("/", 1)[-1].strip()
    return REASONING if _REASONING_NAME.match(base) else CHAT
