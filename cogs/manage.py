"""Managing a channel's conversation: system prompt, reset, model, history, usage, export, info.

Changing the prompt, resetting and choosing the model default to moderators (Manage Messages)
through Discord's default permissions, which admins can narrow in Server Settings →
Integrations; a runtime check refuses anyone without the permission even if the command
reaches them. In a DM, its one member manages their own conversation.
"""

from __future__ import annotations

import dataclasses
import tempfile
from contextlib import aclosing
from pathlib import Path

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import ChatBot
from bot.messages import text
from cogs._discord import MODERATORS, NO_PINGS, members_thread, moderators_only
from cogs._discord import where as _where
from cogs._export import build_export, export_message
from cogs._locale import interaction_locale as _locale
from cogs._render import (
    family_line,
    history_summary,
    prompt_summary,
    reset_summary,
    settings_summary,
    usage_summary,
)
from cogs._text import quote

DEFAULT_CHOICE = "default"


def _export_cooldown(interaction: discord.Interaction) -> app_commands.Cooldown | None:
    """One /export per member per EXPORT_COOLDOWN_SECONDS (0: no cooldown)."""
    seconds = interaction.client.export_cooldown  # type: ignore[attr-defined]
    return app_commands.Cooldown(1, seconds) if seconds > 0 else None


class ManageCog(commands.Cog):
    system = app_commands.Group(
        name="system",
        description="The channel's system prompt (the model's standing instructions)",
        default_permissions=MODERATORS,
    )

    def __init__(self, bot: ChatBot) -> None:
        self.bot = bot
        self.service = bot.service

    @system.command(name="set")
    @app_commands.describe(prompt="Instructions the model follows in this channel")
    @moderators_only()
    async def system_set(
        self, interaction: discord.Interaction, prompt: app_commands.Range[str, 1, 4000]
    ) -> None:
        """Set this channel's system prompt."""
        user = interaction.user
        channel_id, parent_id = _where(interaction)
        await self.service.set_system_prompt(
            channel_id, prompt, by_id=user.id, by_name=user.display_name, parent_id=parent_id
        )
        await interaction.response.send_message(
            text(_locale(interaction), "system.set", who=user.mention, prompt=quote(prompt)),
            allowed_mentions=NO_PINGS,
        )

    @system.command(name="show")
    @moderators_only()
    async def system_show(self, interaction: discord.Interaction) -> None:
        """Show this channel's system prompt, and who changed it lately."""
        channel_id, parent_id = _where(interaction)
        prompt = await self.service.system_prompt(channel_id, parent_id)
        changes = await self.service.prompt_changes(channel_id, limit=5)
        await interaction.response.send_message(
            prompt_summary(prompt, changes, _locale(interaction)), ephemeral=True
        )

    @system.command(name="clear")
    @moderators_only()
    async def system_clear(self, interaction: discord.Interaction) -> None:
        """Clear this channel's system prompt (back to the parent's or the default)."""
        user = interaction.user
        await self.service.clear_system_prompt(
            _where(interaction)[0], by_id=user.id, by_name=user.display_name
        )
        await interaction.response.send_message(
            text(_locale(interaction), "system.cleared", who=user.mention),
            allowed_mentions=NO_PINGS,
        )

    @app_commands.command(name="reset")
    @app_commands.default_permissions(manage_messages=True)
    @moderators_only()
    async def reset(self, interaction: discord.Interaction) -> None:
        """Forget this channel's conversation history (the system prompt stays)."""
        await interaction.response.defer()
        outcome = await self.service.reset(_where(interaction)[0])
        await interaction.followup.send(
            reset_summary(interaction.user.mention, outcome, _locale(interaction)),
            allowed_mentions=NO_PINGS,
        )

    @app_commands.command(name="model")
    @app_commands.describe(name="One of the configured models, or “default”")
    @app_commands.default_permissions(manage_messages=True)
    @moderators_only()
    async def model(self, interaction: discord.Interaction, name: str) -> None:
        """Choose the model this channel uses."""
        locale = _locale(interaction)
        # "default", or its translation typed by hand instead of picked from the suggestions.
        default = name in (DEFAULT_CHOICE, text(locale, f"command.model.choice.{DEFAULT_CHOICE}"))
        channel_id, parent_id = _where(interaction)
        chosen = await self.service.set_channel_model(
            channel_id, None if default else name, parent_id
        )
        await interaction.response.send_message(text(locale, "model.set", model=chosen))

    @model.autocomplete("name")
    async def _model_names(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        locale = _locale(interaction)
        effort = await self.service.channel_effort(*_where(interaction))
        choices: list[app_commands.Choice[str]] = []
        if current.lower() in DEFAULT_CHOICE:
            # "default" is shown in the member's language (the tree's translator).
            key = f"command.model.choice.{DEFAULT_CHOICE}"
            name = app_commands.locale_str(DEFAULT_CHOICE, key=key)
            choices.append(app_commands.Choice(name=name, value=DEFAULT_CHOICE))
        for model in self.service.config.models:
            if current.lower() in model.lower():
                line = family_line(self.service.family(model), effort, locale)
                label = f"{model} — {line}"
                choices.append(app_commands.Choice(name=label[:100], value=model))
        return choices[:25]

    @app_commands.command(name="history")
    @app_commands.describe(rounds="How many recent rounds to show (1-10)")
    async def history(
        self, interaction: discord.Interaction, rounds: app_commands.Range[int, 1, 10] = 5
    ) -> None:
        """Show this channel's recent conversation, privately."""
        shown = await self.service.history(_where(interaction)[0], rounds)
        await interaction.response.send_message(
            history_summary(shown, _locale(interaction)), ephemeral=True, allowed_mentions=NO_PINGS
        )

    @app_commands.command(name="usage")
    async def usage(self, interaction: discord.Interaction) -> None:
        """Show the tokens this channel's conversation has used."""
        usage = await self.service.usage(_where(interaction)[0])
        await interaction.response.send_message(
            usage_summary(usage, _locale(interaction)), ephemeral=True
        )

    @app_commands.command(name="export")
    @app_commands.checks.dynamic_cooldown(_export_cooldown, key=lambda i: i.user.id)
    async def export(self, interaction: discord.Interaction) -> None:
        """Download this channel's conversation as a Markdown file, privately."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        locale = _locale(interaction)
        channel_id = _where(interaction)[0]
        if not await self.service.count_rounds(channel_id):
            await interaction.followup.send(text(locale, "export.nothing"), ephemeral=True)
            return
        # Written page by page to a temporary file, sent from it, and removed in any case.
        with tempfile.TemporaryDirectory(prefix="chatlab-export-") as directory:
            async with aclosing(self.service.export_pages(channel_id)) as pages:
                exported = await build_export(
                    pages, channel_id, Path(directory), interaction.filesize_limit, locale
                )
            if exported.path is None:  # nothing fits, or the channel was reset meanwhile
                await interaction.followup.send(export_message(exported, locale), ephemeral=True)
                return
            with exported.path.open("rb") as data:
                await interaction.followup.send(
                    export_message(exported, locale),
                    file=discord.File(data, filename=exported.filename),
                    ephemeral=True,
                )

    @app_commands.command(name="info")
    async def info(self, interaction: discord.Interaction) -> None:
        """Show this channel's model, limits and system prompt."""
        info = await self.service.channel_info(*_where(interaction))
        me = self.bot.user.id if self.bot.user else None
        if members_thread(interaction.channel, me):  # threads mode does not make it a chat
            info = dataclasses.replace(
                info, values=dataclasses.replace(info.values, members_thread=True)
            )
        summary = settings_summary(
            info, self.service.config, _locale(interaction), family=self.service.family(info.model)
        )
        await interaction.response.send_message(summary, ephemeral=True)


async def setup(bot: ChatBot) -> None:
    await bot.add_cog(ManageCog(bot))
