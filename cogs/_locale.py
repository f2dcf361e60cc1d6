"""Languages at the Discord edge: which locale a member reads, and the commands' translations.

- `interaction_locale`: a command's member reads their client's language (`interaction.locale`).
- `message_locale`: a mention is answered in the server's preferred language (Community
  settings); a DM in English, the only signal Discord gives a bot there being none.
- `CatalogueTranslator`: discord.py asks it, at sync, for every command's, group's, option's
  and choice's name and description in every Discord locale; it answers from the catalogue's
  `command.*` keys (bot/messages), or None (Discord then shows the default, en-US, string).

Keys are derived from where the string sits, so the cogs need no `locale_str` for names and
descriptions: `command.<qualified name, dotted>.name|description`,
`command.<qualified>.option.<parameter>.name|description`, `command.<qualified>.choice.<value>`.
A Choice does not know its command: a `locale_str(..., key="command.x.choice.y")` names its key,
else the one `command.*.choice.<value>` key in the catalogue is used. Any `locale_str` may name
its key explicitly the same way.
"""

from __future__ import annotations

import functools
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from bot import messages

__all__ = ["CatalogueTranslator", "catalogue_key", "interaction_locale", "message_locale"]

_NAMES = (Where.command_name, Where.group_name, Where.parameter_name)
_DESCRIPTIONS = (Where.command_description, Where.group_description, Where.parameter_description)


class CatalogueTranslator(app_commands.Translator):
    """Command names, descriptions, options and choices from the catalogue, in zh-CN and zh-TW."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        language = str(locale.value)
        if language == messages.DEFAULT_LOCALE or language not in messages.LOCALES:
            return None  # the default strings are the en-US ones
        key = catalogue_key(string, context)
        if key is None:
            return None
        found = messages.translated(language, key)
        return found if isinstance(found, str) else None


def catalogue_key(
    string: app_commands.locale_str, context: app_commands.TranslationContextTypes
) -> str | None:
    """The `command.*` key of a string discord.py asks to translate, or None if it has none."""
    explicit = string.extras.get("key")
    if isinstance(explicit, str):
        return explicit
    data: Any = context.data
    where = context.location
    if where in (Where.command_name, Where.group_name):
        return f"{_command_key(data)}.name"
    if where in (Where.command_description, Where.group_description):
        return f"{_command_key(data)}.description"
    if where in (Where.parameter_name, Where.parameter_description):
        part = "name" if where is Where.parameter_name else "description"
        return f"{_command_key(data.command)}.option.{data.name}.{part}"
    if where is Where.choice_name:
        return _choice_keys().get(str(data.value))
    return None


def interaction_locale(interaction: discord.Interaction[Any]) -> str:
    """The language of the member who used a command (their Discord client's)."""
    return str(interaction.locale)


def message_locale(message: discord.Message) -> str:
    """The language to answer a message in: its server's preferred locale; English in DMs."""
    if message.guild is None:
        return messages.DEFAULT_LOCALE
    return str(message.guild.preferred_locale)


def _command_key(
    command: app_commands.Command[Any, ..., Any] | app_commands.Group | app_commands.ContextMenu,
) -> str:
    return "command." + command.qualified_name.replace(" ", ".")


@functools.cache
def _choice_keys() -> dict[str, str]:
    """Choice value → its key, for the values that only one command's choices use."""
    found: dict[str, list[str]] = {}
    for key in messages.keys(messages.DEFAULT_LOCALE):
        head, sep, value = key.partition(".choice.")
        if sep and head.startswith("command."):
            found.setdefault(value, []).append(key)
    return {value: keys[0] for value, keys in found.items() if len(keys) == 1}
