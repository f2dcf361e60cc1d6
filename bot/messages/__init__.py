"""Every sentence a member reads, by key and locale: one TOML file per language beside this one.

    text("zh-TW", "error.rate_limited_for", seconds=30)
    -> "模型目前請求過多，請在大約 30 秒後再試。"

- A key is a dotted path into the file's tables (`error.refused`, `command.system.set.name`).
- A value is a `str.format` template (`{seconds}`, `{count:,}`), or a plural table
  `{one = "...", other = "..."}` chosen by the `count` parameter (Chinese needs only `other`, or
  a plain string).
- `en-US.toml` holds every key; it is the fallback for a key another language lacks and for any
  locale chatlab does not speak (en-GB, fr, None). zh-HK, zh-MO and zh-Hant read zh-TW; zh, zh-SG
  and zh-Hans read zh-CN. A key missing from en-US is a programming error: KeyError.
- The files are read once, lazily, from the package's resources. Nothing here knows Discord:
  the edge passes a locale string (`str(interaction.locale)`).

Adding a language: copy en-US.toml to `<locale>.toml` (a Discord locale, e.g. `ja`), translate
every value keeping each `{placeholder}`, and add the locale to LOCALES.
"""

from __future__ import annotations

import functools
import string
import tomllib
from collections.abc import Iterator, Mapping
from importlib import resources

__all__ = [
    "DEFAULT_LOCALE",
    "LOCALES",
    "keys",
    "placeholders",
    "resolve_locale",
    "template",
    "text",
]

LOCALES = ("en-US", "zh-CN", "zh-TW")
DEFAULT_LOCALE = "en-US"

PLURAL_FORMS = frozenset({"zero", "one", "two", "few", "many", "other"})
_TRADITIONAL = ("tw", "hk", "mo", "hant")
_SIMPLIFIED = ("cn", "sg", "hans")

Template = str | Mapping[str, str]  # a sentence, or its plural forms


def resolve_locale(locale: object) -> str:
    """The catalogue language for a locale as Discord (or anyone) spells it; en-US by default."""
    if locale is None:
        return DEFAULT_LOCALE
    wanted = str(locale).strip().replace("_", "-").lower()
    for known in LOCALES:
        if wanted == known.lower():
            return known
    parts = wanted.split("-")
    if parts[0] == "zh":
        if any(part in _TRADITIONAL for part in parts[1:]):
            return "zh-TW"
        if len(parts) == 1 or any(part in _SIMPLIFIED for part in parts[1:]):
            return "zh-CN"
    return DEFAULT_LOCALE


def text(locale: str | None, key: str, /, **params: object) -> str:
    """The sentence `key` in `locale` (or English), formatted with `params`.

    A plural sentence is chosen by `params["count"]`: `one` for 1 where the language has it,
    else `other`.
    """
    chosen = template(locale, key)
    if not isinstance(chosen, str):
        count = params.get("count")
        chosen = chosen["one"] if count == 1 and "one" in chosen else chosen["other"]
    return chosen.format(**params)


def template(locale: str | None, key: str) -> Template:
    """The unformatted value of `key` in `locale`, falling back to en-US (KeyError if none)."""
    found = _catalogue(resolve_locale(locale)).get(key)
    if found is None:
        found = _catalogue(DEFAULT_LOCALE).get(key)
    if found is None:
        raise KeyError(f"no sentence {key!r} in the {DEFAULT_LOCALE} catalogue")
    return found


def keys(locale: str) -> set[str]:
    """Every key the language's own file holds (no fallback): for tests and tools."""
    return set(_catalogue(resolve_locale(locale)))


def translated(locale: str, key: str) -> Template | None:
    """The value of `key` in the language's own file, or None (no fallback)."""
    return _catalogue(resolve_locale(locale)).get(key)


def placeholders(value: Template) -> set[str]:
    """The parameter names a value uses (every plural form together)."""
    forms = [value] if isinstance(value, str) else list(value.values())
    return {
        field.split(".")[0].split("[")[0]
        for form in forms
        for _, field, _, _ in string.Formatter().parse(form)
        if field
    }


@functools.cache
def _catalogue(locale: str) -> dict[str, Template]:
    source = resources.files(__package__).joinpath(f"{locale}.toml")
    with source.open("rb") as file:
        return dict(_flatten(tomllib.load(file), ""))


def _flatten(table: Mapping[str, object], prefix: str) -> Iterator[tuple[str, Template]]:
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, str):
            yield key, value
        elif isinstance(value, dict) and _is_plural(value):
            yield key, dict(value)
        elif isinstance(value, dict):
            yield from _flatten(value, f"{key}.")
        else:
            raise ValueError(f"{key}: a sentence must be text or a plural table, not {value!r}")


def _is_plural(table: Mapping[str, object]) -> bool:
    return (
        "other" in table
        and set(table) <= PLURAL_FORMS
        and all(isinstance(form, str) for form in table.values())
    )
