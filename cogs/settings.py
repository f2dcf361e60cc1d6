"""A channel's settings beside its prompt and model: /settings (moderators).

temperature, reply-length, history-rounds, effort and mode each set one setting (bot/channels.py
declares them: bounds, defaults, inheritance), or with "default" unset it so the parent's or the
bot's is in force again; reset unsets them all (the model too; not the prompt, not the history).
Each answers with one sentence in the member's language. A thread inherits its parent's settings
until it gets its own, like the prompt and the model.
"""

from __future__ import annotations

import dataclasses

import discord
from discord import app_commands
from discord.ext import commands

from bot.channels import BY_NAME, EFFORTS, Mode
from bot.client import ChatBot
from bot.errors import ModeUnavailable
from bot.messages import text
from cogs._discord import MODERATORS, NO_PINGS, members_thread, moderators_only, where
from cogs._locale import interaction_locale
from cogs._render import mode_changed, setting_changed, settings_reset, temperature_note

DEFAULT = "default"
SUGGESTED = {
    "temperature": ("0", "0.2", "0.5", "0.7", "1", "1.2", "1.5", "2"),
    "max_tokens": ("256", "512", "1024", "2048", "4096", "8192", "16384", "32768"),
    "history_rounds": ("0", "1", "2", "3", "5", "10", "20", "50", "100"),
}


def _choice(command: str, value: str, label: str | None = None) -> app_commands.Choice[str]:
    key = f"command.settings.{command}.choice.{value}"
    return app_commands.Choice(name=app_commands.locale_str(label or value, key=key), value=value)


MODE_LABELS = {
    "mention": "mention: answer mentions and replies",
    "chat": "chat: answer every message",
    "threads": "threads: open a thread for each mention",
}


class SettingsCog(commands.Cog):
    settings = app_commands.Group(
        name="settings",
        description="This channel's settings (moderators)",
        default_permissions=MODERATORS,
    )

    def __init__(self, bot: ChatBot) -> None:
        self.bot = bot

    @settings.command(name="effort")
    @app_commands.describe(level="minimal, low, medium or high; default = the bot's setting")
    @app_commands.choices(level=[_choice("effort", value) for value in (DEFAULT, *EFFORTS)])
    @moderators_only()
    async def effort(self, interaction: discord.Interaction, level: str) -> None:
        """How hard reasoning models think in this channel."""
        locale = interaction_locale(interaction)
        service = self.bot.service
        channel_id, parent_id = where(interaction)
        await service.set_channel_effort(channel_id, None if level == DEFAULT else level)
        effort = await service.channel_effort(channel_id, parent_id)
        shown = text(locale, f"effort.{effort or DEFAULT}")
        await interaction.response.send_message(text(locale, "settings.effort_set", effort=shown))

    @settings.command(name="temperature")
    @app_commands.describe(value="A number from 0 (focused) to 2 (free), or “default”")
    @moderators_only()
    async def temperature(
        self, interaction: discord.Interaction, value: app_commands.Range[str, 1, 40]
    ) -> None:
        """How freely the model words its answers in this channel (reasoning models take none)."""
        await self._set(interaction, "temperature", value)

    @settings.command(name="reply-length")
    @app_commands.describe(tokens="At least 16 tokens, or “default”")
    @moderators_only()
    async def reply_length(
        self, interaction: discord.Interaction, tokens: app_commands.Range[str, 1, 40]
    ) -> None:
        """The longest answer in this channel, in tokens (reasoning models' thinking included)."""
        await self._set(interaction, "max_tokens", tokens)

    @settings.command(name="history-rounds")
    @app_commands.describe(rounds="From 0 (none) to 1000, or “default”")
    @moderators_only()
    async def history_rounds(
        self, interaction: discord.Interaction, rounds: app_commands.Range[str, 1, 40]
    ) -> None:
        """How many recent rounds of this channel's conversation go with each question."""
        await self._set(interaction, "history_rounds", rounds)

    @settings.command(name="mode")
    @app_commands.describe(
        mode="mention, chat or threads; default = mention, or the parent channel's"
    )
    @app_commands.choices(
        mode=[_choice("mode", DEFAULT)]
        + [_choice("mode", value, MODE_LABELS[value]) for value in Mode]
    )
    @moderators_only()
    async def mode(self, interaction: discord.Interaction, mode: str) -> None:
        """When I answer in this channel: mentions, every message, or a thread per mention."""
        locale = interaction_locale(interaction)
        channel_id, parent_id = where(interaction)
        unset = mode == DEFAULT
        # Threads open from messages in text and announcement channels only. A thread's own
        # refusal, a DM's and MESSAGE_CONTENT=off's are the service's (with modes off, "choose
        # chat instead" would be wrong advice).
        opens_none = not isinstance(interaction.channel, discord.TextChannel | discord.Thread)
        modes_on = self.bot.service.config.message_content != "off"
        if mode == Mode.THREADS.value and interaction.guild is not None and opens_none and modes_on:
            raise ModeUnavailable("channel")
        values = await self.bot.service.set_channel_setting(
            channel_id,
            "mode",
            None if unset else mode,
            parent_id=parent_id,
            guild_id=interaction.guild_id,
        )
        mine = members_thread(interaction.channel, self.bot.user.id if self.bot.user else None)
        sentence = mode_changed(
            dataclasses.replace(values, members_thread=mine),
            locale,
            unset=unset,
            prefix=self.bot.service.config.chat_ignore_prefix,
            can_read=self.bot.intents.message_content,
        )
        await interaction.response.send_message(sentence, allowed_mentions=NO_PINGS)

    @settings.command(name="reset")
    @moderators_only()
    async def reset(self, interaction: discord.Interaction) -> None:
        """Put every setting of this channel back to the defaults (not the prompt or history)."""
        await self.bot.service.reset_channel_settings(*where(interaction))
        sentence = settings_reset(interaction.user.mention, interaction_locale(interaction))
        await interaction.response.send_message(sentence, allowed_mentions=NO_PINGS)

    @temperature.autocomplete("value")
    async def _temperatures(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return self._suggest("temperature", current)

    @reply_length.autocomplete("tokens")
    async def _lengths(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return self._suggest("max_tokens", current)

    @history_rounds.autocomplete("rounds")
    async def _rounds(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return self._suggest("history_rounds", current)

    def _suggest(self, name: str, current: str) -> list[app_commands.Choice[str]]:
        """ "default", then the usual values within the setting's bounds that start with what
        was typed (what was typed itself first, when it is a value of its own)."""
        setting = BY_NAME[name]
        config = self.bot.service.config
        low, high = setting.bounds(config)
        typed = current.strip()
        values = [v for v in SUGGESTED[name] if low <= float(v) <= high and v.startswith(typed)]
        if typed and typed not in values:
            values.insert(0, typed[:100])
        choices = [
            app_commands.Choice(name=value, value=value) for value in values if value.strip()
        ]
        if DEFAULT.startswith(typed.lower()):
            # "default" in the member's language (the tree's translator).
            label = app_commands.locale_str(DEFAULT, key="command.settings.mode.choice.default")
            choices.insert(0, app_commands.Choice(name=label, value=DEFAULT))
        return choices[:25]

    async def _set(self, interaction: discord.Interaction, name: str, typed: str) -> None:
        locale = interaction_locale(interaction)
        channel_id, parent_id = where(interaction)
        unset = _means_default(typed, locale)
        service = self.bot.service
        values = await service.set_channel_setting(
            channel_id,
            name,
            None if unset else typed,
            parent_id=parent_id,
            guild_id=interaction.guild_id,
        )
        sentence = setting_changed(name, values, locale, unset=unset)
        if name == "temperature":
            model = await service.channel_model(channel_id, parent_id)
            if not service.family(model).sampling:
                sentence += " " + temperature_note(model, locale)
        await interaction.response.send_message(sentence, allowed_mentions=NO_PINGS)


def _means_default(typed: str, locale: str) -> bool:
    """ "default", or its translation typed by hand instead of picked from the suggestions."""
    cleaned = typed.strip().lower()
    return cleaned in (DEFAULT, text(locale, "command.settings.mode.choice.default").lower())


async def setup(bot: ChatBot) -> None:
    await bot.add_cog(SettingsCog(bot))
