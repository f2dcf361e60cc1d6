""" "Ask chatlab": a message context-menu command. The member picks a message, types a question in
a modal, and the bot answers in that channel's conversation about that message — its words and
its author (framed by the bot as the "about" field: bot/conversation.py) and its attachments.

The same gates as /ask (the access policy, the cooldown, the queue caps, a duplicate delivery
answered once) apply: the answer goes through `ChatCog.answer_interaction`, the /ask flow.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.attachments import Files
from bot.chat import clean_text
from bot.client import ChatBot
from bot.conversation import Quote
from bot.messages import text
from cogs._attachments import gather
from cogs._locale import interaction_locale

if TYPE_CHECKING:
    from cogs.chat import ChatCog

log = logging.getLogger(__name__)

QUESTION_MAX = 4000  # as /ask's question option
QUOTE_MAX = 4000  # a quoted message's words kept (Discord's own maximum for a message)


class AskAboutMessage(discord.ui.Modal):
    """The question about `target`, typed by the member."""

    def __init__(self, cog: ContextCog, target: discord.Message, locale: str) -> None:
        super().__init__(title=text(locale, "context.ask.title")[:45], timeout=900)
        self.cog = cog
        self.target = target
        self.locale = locale
        self.question: discord.ui.TextInput[AskAboutMessage] = discord.ui.TextInput(
            label=text(locale, "context.ask.label")[:45],
            placeholder=text(locale, "context.ask.placeholder")[:100],
            style=discord.TextStyle.paragraph,
            max_length=QUESTION_MAX,
            custom_id="question",
        )
        self.add_item(self.question)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await self.cog.answer(interaction, self.target, self.question.value, self.locale)


class ContextCog(commands.Cog):
    def __init__(self, bot: ChatBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(
            name=app_commands.locale_str("Ask chatlab", key="context.ask.name"),
            callback=self.ask_about,
        )

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def ask_about(
        self, interaction: discord.Interaction[Any], message: discord.Message
    ) -> None:
        """Open the modal for the question (a modal must be the interaction's first answer)."""
        await interaction.response.send_modal(
            AskAboutMessage(self, message, interaction_locale(interaction))
        )

    async def answer(
        self,
        interaction: discord.Interaction[Any],
        target: discord.Message,
        question: str,
        locale: str,
    ) -> None:
        chat: ChatCog | None = self.bot.get_cog("ChatCog")  # type: ignore[assignment]
        if chat is None:  # cogs.chat is not loaded: nothing can answer
            log.error("Ask chatlab needs the cogs.chat extension")
            return
        quote = Quote(
            target.author.display_name,
            target.author.id,
            clean_text(target.clean_content)[:QUOTE_MAX],
        )
        link = target.jump_url
        header = text(locale, "context.ask.asked", who=interaction.user.mention, link=link)

        async def files() -> Files:  # downloaded only once the question is admitted
            return await gather(target.attachments, chat.limits)

        await chat.answer_interaction(
            interaction,
            clean_text(question),
            locale=locale,
            header=header,
            about=quote,
            files=files,
        )


async def setup(bot: ChatBot) -> None:
    await bot.add_cog(ContextCog(bot))
