"""Talking to the bot: /ask, and @mentions, replies to the bot and DMs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.chat import Answer, ChatError, Delta, Question, QuestionTooLong, Queued
from bot.client import AnswerDisplay, ChannelSink, ChatBot, InteractionSink, asker_of
from bot.llm import LLMError
from bot.replies import StreamedReply, answer_footer, explain, queue_notice
from bot.store import StoreError
from bot.text import quote, readable_mentions, strip_mentions

log = logging.getLogger(__name__)

WAITING = "⏳"
HINT = "Hi! Ask me something after the mention, e.g. `@{name} what is a monad?` — or use /ask."


class ChatCog(commands.Cog):
    def __init__(self, bot: ChatBot) -> None:
        self.bot = bot

    @app_commands.command(name="ask")
    @app_commands.describe(question="What you want to ask, in this channel's conversation")
    async def ask(
        self, interaction: discord.Interaction, question: app_commands.Range[str, 1, 4000]
    ) -> None:
        """Ask the model a question in this channel's conversation."""
        refusal = self.bot.access.admit(asker_of(interaction.user, interaction.channel))
        if refusal is not None:
            await interaction.response.send_message(refusal.sentence, ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        header = f"{interaction.user.mention} asked:\n{quote(question)}\n\n"
        reply: StreamedReply[Any] = StreamedReply(InteractionSink(interaction), header=header)
        await self._converse(
            self._question(interaction.user, interaction.channel, question),
            reply,
            on_queued=lambda ahead: reply.notice(queue_notice(ahead)),
        )

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.webhook_id is not None or not self._addressed(message):
            return
        assert self.bot.user is not None
        text = _readable(strip_mentions(message.content, self.bot.user.id), message)
        asker = asker_of(message.author, message.channel)
        refusal = self.bot.access.may_use(asker)
        if refusal is None and not text:
            await _say(message, HINT.format(name=self.bot.user.display_name))
            return
        refusal = refusal or self.bot.access.admit(asker)
        if refusal is not None:
            if not refusal.quiet:
                await _say(message, refusal.sentence)
            return

        reply: StreamedReply[discord.Message] = StreamedReply(ChannelSink(message))

        async def mark_queued(ahead: int) -> None:
            await message.add_reaction(WAITING)

        await self._converse(
            self._question(message.author, message.channel, text),
            reply,
            on_queued=mark_queued,
            typing_in=message.channel,
            on_start=lambda: self._unmark(message),
        )

    def _addressed(self, message: discord.Message) -> bool:
        """A DM, a mention of the bot (replies that ping it included), or a reply to the bot."""
        if isinstance(message.channel, discord.DMChannel):
            return True
        if self.bot.user in message.mentions:
            return True
        reference = message.reference
        resolved = reference.resolved if reference else None
        return isinstance(resolved, discord.Message) and resolved.author == self.bot.user

    async def _unmark(self, message: discord.Message) -> None:
        if any(str(r.emoji) == WAITING and r.me for r in message.reactions):
            assert self.bot.user is not None
            await message.remove_reaction(WAITING, self.bot.user)

    def _question(self, user: discord.abc.User, channel: Any, text: str) -> Question:
        return Question(
            channel_id=channel.id,
            author_id=user.id,
            author_name=user.display_name,
            text=text,
            parent_id=getattr(channel, "parent_id", None),
        )

    async def _converse(
        self,
        question: Question,
        reply: StreamedReply[Any],
        *,
        on_queued: Callable[[int], Awaitable[None]],
        typing_in: discord.abc.Messageable | None = None,
        on_start: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Ask, and render what comes back: typing while waiting, the answer, or why not.

        If Discord will not show the answer (no permission, message gone), the answer is still
        completed and stored, and one line is logged.
        """
        shown = AnswerDisplay(question.channel_id)
        async with contextlib.AsyncExitStack() as typing:
            if typing_in is not None:
                await shown(lambda: typing.enter_async_context(typing_in.typing()), courtesy=True)
            try:
                async with contextlib.aclosing(self.bot.service.ask(question)) as events:
                    async for event in events:
                        if isinstance(event, Queued):
                            await shown(lambda e=event: on_queued(e.ahead), courtesy=True)
                            continue
                        if on_start is not None:
                            await shown(on_start, courtesy=True)
                            on_start = None
                        await typing.aclose()
                        if isinstance(event, Delta):
                            await shown(lambda e=event: reply.add(e.text))
                        elif isinstance(event, Answer):
                            footer = answer_footer(event, self.bot.service.config.max_tokens)
                            await shown(lambda e=event, f=footer: reply.finish(e.text, f), tries=3)
            except (ChatError, QuestionTooLong, LLMError, StoreError) as exc:
                if isinstance(exc, StoreError):
                    log.error("Storage failed in channel %s: %s", question.channel_id, exc)
                else:
                    log.info("No answer in channel %s: %r", question.channel_id, exc)
                await typing.aclose()
                if on_start is not None:
                    await shown(on_start, courtesy=True)
                sentence = explain(exc)
                await shown(lambda: reply.fail(sentence), tries=3)


async def _say(message: discord.Message, text: str) -> None:
    """A short reply (a hint, a refusal); if Discord will not take it, there is no one to tell."""
    try:
        await message.reply(text, mention_author=False)
    except discord.HTTPException as exc:
        log.debug("Could not reply in channel %s: %s", message.channel.id, exc)


def _readable(text: str, message: discord.Message) -> str:
    """Other members', roles' and channels' mentions as names the model can read."""
    names = {f"@{u.id}": f"@{u.display_name}" for u in message.mentions}
    names |= {f"@&{r.id}": f"@{r.name}" for r in message.role_mentions}
    names |= {f"#{c.id}": f"#{c.name}" for c in message.channel_mentions}
    return readable_mentions(text, names)


async def setup(bot: ChatBot) -> None:
    await bot.add_cog(ChatCog(bot))
