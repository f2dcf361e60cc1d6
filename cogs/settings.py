"""A channel's settings beside its prompt and model: /settings effort (moderators).

A thread inherits its parent's settings until it gets its own, like the prompt and the model.
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import ChatBot
from bot.messages import text
from cogs._discord import MODERATORS, moderators_only, where
from cogs._locale import interaction_locale

EFFORTS = ("minimal", "low", "medium", "high")
DEFAULT = "default"


def _choice(value: str) -> app_commands.Choice[str]:
    key = f"command.settings.effort.choice.{value}"
    return app_commands.Choice(name=app_commands.locale_str(value, key=key), value=value)


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
    @app_commands.choices(level=[_choice(value) for value in (DEFAULT, *EFFORTS)])
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


async def setup(bot: ChatBot) -> None:
    await bot.add_cog(SettingsCog(bot))
