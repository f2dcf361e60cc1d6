"""Talking to the bot: /ask, /stop, @mentions, replies to the bot, DMs, chat channels, threads.

Every question ends with an answer or one sentence, whatever happens below: the known errors are
explained, anything else is logged with its traceback and answered politely. A member who keeps
being refused gets one public notice per interval (see AccessPolicy.may_notify); the rest are
reactions, so nobody can make the bot post at their rate.

A channel's mode (bot/channels.py, looked up in memory) decides what else is a question:
- chat: every member message (not bots', webhooks', system messages, nor those starting with
  CHAT_IGNORE_PREFIX), answered as a reply. Talk there comes in bursts, so a member's cooldown
  and a full queue are answered with a reaction only, never a sentence. Without the Message
  Content intent Discord sends those messages empty: nothing is answered, and the channel is told
  why (once an hour at most) instead of the bot falling silent.
- threads: a mention opens a public thread named after the question, answered there; the thread
  is then a chat channel (threads members open there themselves answer mentions only). Without
  the permissions to open one, one line says so above the answer, which is given in the channel
  instead. Thread openers count against the channel's queue caps.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.attachments import Files, Limits
from bot.channels import Mode, answers_every_message
from bot.chat import Answer, Delta, Question, Queued, Thinking, clean_text
from bot.client import ChatBot
from bot.conversation import Quote
from bot.errors import ChatlabError, Dropped, QueueFull, Reason, Stopped, StoreError
from bot.messages import text as sentence
from cogs._attachments import gather, problem_lines
from cogs._discord import NO_PINGS, asker_of, members_thread
from cogs._locale import interaction_locale, message_locale
from cogs._render import explain, refusal_sentence, thread_name
from cogs._reply import (
    AnswerDisplay,
    ChannelSink,
    InteractionSink,
    StreamedReply,
    answer_footer,
    queue_notice,
)
from cogs._text import quote, readable_mentions, strip_mentions

log = logging.getLogger(__name__)

WAITING = "⏳"
TOO_FAST = "⏱️"
QUEUE_FULL = "✋"
NOT_ALLOWED = "🚫"
# A chat channel whose messages arrive empty (no Message Content intent) is told why this often.
UNREADABLE_NOTICE_INTERVAL = 3600.0
THREAD_ARCHIVE_MINUTES = 1440


class ChatCog(commands.Cog):
    def __init__(self, bot: ChatBot) -> None:
        self.bot = bot
        # Questions opening a thread, by (channel, member): they count against the channel's
        # queue caps, which the new threads' own queues do not see.
        self._opening: collections.Counter[tuple[int, int]] = collections.Counter()
        self._unreadable_told: dict[int, float] = {}  # chat channel -> when it was last told
        # Each channel's newest question still getting its files (see `_Place`).
        self._arrivals: dict[int, _Place] = {}
        # Messages taken as questions that are not yet in their channel's queue, by id.
        self._preparing: dict[int, _Place] = {}

    async def cog_load(self) -> None:
        # Each channel's mode is kept in memory: read them before the first message arrives.
        await self.bot.service.load_modes()

    @app_commands.command(name="ask")
    @app_commands.describe(
        question="What you want to ask, in this channel's conversation",
        file="An image or a text file to ask about (optional)",
    )
    async def ask(
        self,
        interaction: discord.Interaction,
        question: app_commands.Range[str, 1, 4000],
        file: discord.Attachment | None = None,
    ) -> None:
        """Ask the model a question in this channel's conversation."""
        locale = interaction_locale(interaction)
        text = clean_text(question)
        if not text:
            await interaction.response.send_message(sentence(locale, "ask.empty"), ephemeral=True)
            return
        asked_by = sentence(locale, "ask.asked", who=interaction.user.mention)

        async def files() -> Files:
            return await gather([file] if file is not None else [], self.limits)

        await self.answer_interaction(
            interaction, text, locale=locale, header=f"{asked_by}\n{quote(text)}", files=files
        )

    @property
    def limits(self) -> Limits:
        """The caps on what comes with a question (per file, per question, text characters)."""
        return self.bot.service.config.attachments

    async def answer_interaction(
        self,
        interaction: discord.Interaction[Any],
        text: str,
        *,
        locale: str,
        header: str,
        about: Quote | None = None,
        files: Callable[[], Awaitable[Files]] | None = None,
    ) -> None:
        """/ask's flow, for any command that asks (also "Ask chatlab"): claim, admit, queue
        check, then the answer under `header`. `files` are gathered (downloaded) only once the
        question is admitted; each file left out is named under the header."""
        place = _Place(self._arrivals, interaction.channel_id or 0)  # in turn with messages
        try:
            await self._answer_interaction(
                interaction,
                text,
                locale=locale,
                header=header,
                about=about,
                files=files,
                place=place,
            )
        finally:
            place.release()

    async def _answer_interaction(
        self,
        interaction: discord.Interaction[Any],
        text: str,
        *,
        locale: str,
        header: str,
        about: Quote | None,
        files: Callable[[], Awaitable[Files]] | None,
        place: _Place,
    ) -> None:
        if not await self.bot.service.claim(interaction.id):
            return  # another process (or a replay) has it
        refusal = await self.bot.access.admit(asker_of(interaction.user, interaction.channel))
        if refusal is not None:
            await interaction.response.send_message(
                refusal_sentence(refusal, locale), ephemeral=True
            )
            return
        asked = self._question(interaction.user, interaction.channel, text, interaction.id)
        full = self.bot.service.queue_refusal(asked.channel_id, asked.author_id)
        if full is not None:
            await interaction.response.send_message(explain(full, locale), ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        await place.turn()
        attached = await files() if files is not None else Files()
        asked = dataclasses.replace(asked, files=attached, about=about)
        told = "".join(f"\n-# {line}" for line in problem_lines(attached, locale))
        reply: StreamedReply[Any] = StreamedReply(
            InteractionSink(interaction), header=f"{header}{told}\n\n", locale=locale
        )

        async def refused(error: QueueFull) -> None:
            # The queue filled while this was being acknowledged: answer privately after all.
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
            await interaction.followup.send(explain(error, locale), ephemeral=True)

        await self._converse(
            asked,
            reply,
            locale=locale,
            on_queued=lambda ahead: reply.notice(queue_notice(ahead, locale)),
            on_refused=refused,
            on_joined=place.release,
        )

    @app_commands.command(name="stop")
    async def stop(self, interaction: discord.Interaction) -> None:
        """Stop the answer being written in this channel (yours, or any if you moderate)."""
        channel = interaction.channel
        assert channel is not None
        moderator = interaction.guild is None or interaction.permissions.manage_messages
        outcome = self.bot.service.stop(channel.id, by_id=interaction.user.id, moderator=moderator)
        await interaction.response.send_message(
            sentence(interaction_locale(interaction), f"stop.{outcome.value}"), ephemeral=True
        )

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.webhook_id is not None or message.is_system():
            return
        assert self.bot.user is not None
        addressed = self._addressed(message)
        mode = await self._mode(message)
        chatting = answers_every_message(
            mode,
            in_thread=_parent_id(message.channel) is not None,
            members_thread=members_thread(message.channel, self.bot.user.id),
        )
        if not (addressed or chatting):
            return
        prefix = self.bot.service.config.chat_ignore_prefix
        if chatting and prefix and message.content.startswith(prefix):
            return  # members talking among themselves in a chat channel
        text = clean_text(_readable(strip_mentions(message.content, self.bot.user.id), message))
        pinged = self.bot.user in message.mentions
        in_dm = isinstance(message.channel, discord.DMChannel)
        # Files count as words: an image alone is a question. (Without the message-content
        # intent Discord sends a message's attachments empty too, as it does its text.)
        asks = bool(text or message.attachments)
        if not asks and chatting and not pinged:
            # Nothing to answer; without the message-content intent, every message here is
            # empty: say so (rarely) rather than fall silent.
            if not self.bot.intents.message_content:
                await self._tell_unreadable(message)
            return
        if not asks and not pinged and not in_dm:
            # A reply to the bot with its ping switched off: without the message-content intent
            # Discord sends it empty, so there is nothing to answer and nobody to hint.
            return
        # Its place among the channel's questions, taken as it arrives: a file's download must
        # not let a later message (a screenshot, then "what is wrong here?") overtake it.
        place = _Place(self._arrivals, message.channel.id)
        self._preparing[message.id] = place  # deleted before it is in the queue: see _forget
        try:
            await self._take(message, text, mode=mode, chatting=chatting, place=place)
        finally:
            place.release()
            del self._preparing[message.id]

    async def _take(
        self, message: discord.Message, text: str, *, mode: Mode, chatting: bool, place: _Place
    ) -> None:
        """A message that asks: claim, admit, check the queue, download its files (in its turn
        among the channel's), then answer it."""
        assert self.bot.user is not None
        if not await self.bot.service.claim(message.id):
            return  # delivered twice (a gateway replay, or another process has it)
        locale = message_locale(message)
        asker = asker_of(message.author, message.channel)
        refusal = self.bot.access.may_use(asker)
        # A mention replying to a message with files asks about them.
        attachments = [*message.attachments, *_replied_attachments(message)]
        if refusal is None and not text and not attachments:
            hint = sentence(locale, "ask.hint", name=self.bot.user.display_name)
            await self._notify(message, hint)
            return
        if refusal is None and (refusal := await self.bot.access.admit(asker)) is not None:
            # In a chat channel members talk in bursts: a cooldown is a reaction, never a post.
            said = None if chatting else refusal_sentence(refusal, locale)
            await self._notify(message, said, reaction=TOO_FAST)
            return
        if refusal is not None:
            if not refusal.quiet:
                await self._notify(
                    message,
                    refusal_sentence(refusal, locale),
                    reaction=NOT_ALLOWED if chatting else None,
                )
            return
        # Threads open from messages in text and announcement channels (a voice channel's chat
        # set to threads before that was refused answers its mentions where they are).
        opens_thread = mode is Mode.THREADS and isinstance(message.channel, discord.TextChannel)
        question = self._question(message.author, message.channel, text, message.id)
        full = self._queue_refusal(question, opening=opens_thread)
        if full is None and place.waits:
            # Files are downloaded once the channel's earlier questions have theirs and are in
            # the queue: the caps are checked again then, so that no file is downloaded (or
            # held in memory) for a question the queue will not take.
            await place.turn()
            full = self._queue_refusal(question, opening=opens_thread)
        if full is not None:
            said = None if chatting else explain(full, locale)
            await self._notify(message, said, reaction=QUEUE_FULL)
            return
        attached = await gather(attachments, self.limits)
        if place.deleted:
            return  # the member deleted it while its files downloaded: nobody to answer
        problems = problem_lines(attached, locale)
        if not text and not attached:
            await _say(message, "\n".join(problems))  # every file was left out: each is named
            return
        question = dataclasses.replace(question, files=attached)
        told = "".join(f"-# {line}\n" for line in problems)
        if opens_thread:
            place.release()  # it is answered in a thread of its own, not in this channel
            key = (message.channel.id, message.author.id)
            self._opening[key] += 1
            try:
                await self._answer_in_thread(message, question, text, locale, header=told)
            finally:
                self._opening[key] -= 1
                if not self._opening[key]:
                    del self._opening[key]
            return
        await self._answer_message(
            message, question, locale, chatting=chatting, header=told, on_joined=place.release
        )

    async def _answer_in_thread(
        self,
        message: discord.Message,
        question: Question,
        text: str,
        locale: str,
        *,
        header: str = "",
    ) -> None:
        """Open a public thread on the question and answer there (the thread then continues
        as a chat channel); without the permissions for it, answer in the channel and say so."""
        thread = await self._open_thread(message, text, locale)
        if thread is None:
            note = "-# " + sentence(locale, "channel_setting.thread.no_permission") + "\n"
            await self._answer_message(message, question, locale, header=note + header)
            return
        # The thread's conversation, with everything that came with the question.
        asked = dataclasses.replace(question, channel_id=thread.id, parent_id=message.channel.id)
        reply: StreamedReply[discord.Message] = StreamedReply(
            ThreadSink(thread), header=header, locale=locale
        )

        async def mark_queued(ahead: int) -> None:
            await message.add_reaction(WAITING)

        await self._converse(
            asked,
            reply,
            on_queued=mark_queued,
            locale=locale,
            typing_in=thread,
            on_start=lambda: self._unmark(message),
            on_refused=lambda error: self._notify(message, None, reaction=QUEUE_FULL),
        )

    async def _open_thread(
        self, message: discord.Message, text: str, locale: str
    ) -> discord.Thread | None:
        channel = message.channel
        guild = message.guild
        if not isinstance(channel, discord.TextChannel) or guild is None:
            return None  # not reached: only text and announcement channels open threads (_take)
        allowed = channel.permissions_for(guild.me)
        if not (allowed.create_public_threads and allowed.send_messages_in_threads):
            log.info("No permission to open threads in channel %s; answering there", channel.id)
            return None
        who = message.author.display_name
        name = thread_name(text, sentence(locale, "channel_setting.thread.fallback_name", name=who))
        try:
            return await message.create_thread(
                name=name, auto_archive_duration=THREAD_ARCHIVE_MINUTES
            )
        except discord.HTTPException as exc:
            log.info("Could not open a thread in channel %s (HTTP %s)", channel.id, exc.status)
            return None

    async def _answer_message(
        self,
        message: discord.Message,
        question: Question,
        locale: str,
        *,
        chatting: bool = False,
        header: str = "",
        on_joined: Callable[[], object] | None = None,
    ) -> None:
        reply: StreamedReply[discord.Message] = StreamedReply(
            ChannelSink(message), header=header, locale=locale
        )

        async def mark_queued(ahead: int) -> None:
            await message.add_reaction(WAITING)

        await self._converse(
            question,
            reply,
            on_queued=mark_queued,
            locale=locale,
            typing_in=message.channel,
            on_start=lambda: self._unmark(message),
            on_joined=on_joined,
            # The queue filled while this one waited for Discord: quiet, like the check above.
            on_refused=lambda error: self._notify(
                message, None if chatting else explain(error, locale), reaction=QUEUE_FULL
            ),
        )

    async def _mode(self, message: discord.Message) -> Mode:
        """The mode of the message's channel (a thread's from its parent until it has its own);
        a DM answers every message anyway."""
        if message.guild is None:
            return Mode.MENTION
        channel = message.channel
        return await self.bot.service.channel_mode(channel.id, _parent_id(channel))

    def _queue_refusal(self, question: Question, *, opening: bool) -> QueueFull | None:
        """The channel's queue caps; for a question that opens a thread, the caps of the
        channel it is asked in, counting the thread openers under way there."""
        if not opening:
            return self.bot.service.queue_refusal(question.channel_id, question.author_id)
        config = self.bot.service.config
        channel = question.channel_id
        if self._opening[(channel, question.author_id)] >= config.max_waiting_per_member:
            return QueueFull(config.max_waiting_per_member, per_member=True)
        under_way = sum(n for (c, _), n in self._opening.items() if c == channel)
        if under_way > config.max_waiting_per_channel:
            return QueueFull(config.max_waiting_per_channel, per_member=False)
        return None

    async def _tell_unreadable(self, message: discord.Message) -> None:
        """A chat channel without the Message Content intent: say why nothing is answered, at
        most once per UNREADABLE_NOTICE_INTERVAL per channel."""
        now = asyncio.get_running_loop().time()
        told = self._unreadable_told.get(message.channel.id)
        if told is not None and now - told < UNREADABLE_NOTICE_INTERVAL:
            return
        self._unreadable_told[message.channel.id] = now
        log.warning(
            "Chat channel %s gets messages without their content: this session has no Message"
            " Content intent",
            message.channel.id,
        )
        notice = sentence(message_locale(message), "channel_setting.intent.cannot_read")
        try:
            await message.channel.send(notice)
        except discord.HTTPException as exc:
            log.debug("Could not post in channel %s: %s", message.channel.id, exc)

    @commands.Cog.listener()
    async def on_raw_message_delete(self, event: discord.RawMessageDeleteEvent) -> None:
        """A member who deletes their question expects the bot to forget it."""
        await self._forget(event.channel_id, [event.message_id], event.guild_id)

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, event: discord.RawBulkMessageDeleteEvent) -> None:
        await self._forget(event.channel_id, sorted(event.message_ids), event.guild_id)

    async def _forget(self, channel_id: int, message_ids: list[int], guild_id: int | None) -> None:
        forgotten = 0
        for message_id in message_ids:
            preparing = self._preparing.get(message_id)
            if preparing is not None:  # not in the queue yet (its files are downloading)
                preparing.deleted = True
            # A question that opened a thread was answered in that thread, whose id is the
            # question's: the deletion is reported in the channel, the turn is in the thread.
            places = [channel_id]
            if self._opened_thread(guild_id, message_id):
                places.append(message_id)
            for place in places:
                try:
                    forgotten += await self.bot.service.forget_question(place, message_id)
                except StoreError as exc:
                    log.error("Could not forget a deleted question in %s: %s", place, exc)
                    return
        if forgotten:
            log.info("Forgot %d deleted question(s) in channel %s", forgotten, channel_id)

    def _opened_thread(self, guild_id: int | None, message_id: int) -> bool:
        """Whether the bot opened a thread on this message (thread mode)."""
        guild = self.bot.get_guild(guild_id) if guild_id is not None else None
        thread = guild.get_thread(message_id) if guild is not None else None
        me = self.bot.user
        return thread is not None and me is not None and thread.owner_id == me.id

    async def _notify(
        self, message: discord.Message, sentence: str | None, *, reaction: str | None = None
    ) -> None:
        """A public notice, at most once per interval per member; otherwise (or with no
        sentence) a quiet reaction."""
        if sentence is not None and self.bot.access.may_notify(message.author.id):
            await _say(message, sentence)
        elif reaction is not None:
            with contextlib.suppress(discord.HTTPException):
                await message.add_reaction(reaction)

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

    def _question(
        self, user: discord.abc.User, channel: Any, text: str, message_id: int
    ) -> Question:
        return Question(
            channel_id=channel.id,
            author_id=user.id,
            author_name=user.display_name,
            text=text,
            parent_id=_parent_id(channel),
            message_id=message_id,
            guild_id=getattr(getattr(channel, "guild", None), "id", None),
        )

    async def _converse(
        self,
        question: Question,
        reply: StreamedReply[Any],
        *,
        locale: str,
        on_queued: Callable[[int], Awaitable[None]],
        on_refused: Callable[[QueueFull], Awaitable[None]],
        typing_in: discord.abc.Messageable | None = None,
        on_start: Callable[[], Awaitable[None]] | None = None,
        on_joined: Callable[[], object] | None = None,
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
                async with contextlib.aclosing(self.bot.service.ask(question, on_joined)) as events:
                    async for event in events:
                        if isinstance(event, Queued):
                            await shown(lambda e=event: on_queued(e.ahead), courtesy=True)
                            continue
                        if on_start is not None:
                            await shown(on_start, courtesy=True)
                            on_start = None
                        await typing.aclose()
                        if isinstance(event, Thinking):
                            await shown(lambda e=event: reply.thinking(e.since))
                        elif isinstance(event, Delta):
                            await shown(lambda e=event: reply.add(e.text))
                        elif isinstance(event, Answer):
                            length = event.max_tokens or self.bot.service.config.max_tokens
                            footer = answer_footer(event, length, locale)
                            if event.images_left_out:
                                note = sentence(
                                    locale, "attachment.images_left_out", model=event.model
                                )
                                footer = (footer or "\n") + f"\n-# {note}"
                            await shown(lambda e=event, f=footer: reply.finish(e.text, f), tries=3)
                return
            except QueueFull as exc:
                log.info("Queue full in channel %s", question.channel_id)
                await typing.aclose()
                await shown(functools.partial(on_refused, exc), courtesy=True)
                return
            except Stopped as exc:
                log.info("Answer stopped in channel %s (%s)", question.channel_id, exc.reason)
                ending: Callable[[], Awaitable[None]] | None = functools.partial(
                    reply.stopped, explain(exc, locale)
                )
            except Dropped as exc:
                log.info("Question dropped in channel %s (%s)", question.channel_id, exc.reason)
                # A deleted question has nobody left to answer.
                ending = (
                    None
                    if exc.reason is Reason.DELETED
                    else functools.partial(reply.fail, explain(exc, locale))
                )
            except ChatlabError as exc:
                if isinstance(exc, StoreError):
                    log.error("Storage failed in channel %s: %s", question.channel_id, exc)
                else:
                    log.info("No answer in channel %s: %r", question.channel_id, exc)
                ending = functools.partial(reply.fail, explain(exc, locale))
            except Exception as exc:  # the catch-all: the question must not stay ⏳ for ever
                log.exception("Unexpected error answering in channel %s", question.channel_id)
                ending = functools.partial(reply.fail, explain(exc, locale))
            await typing.aclose()
            if on_start is not None:
                await shown(on_start, courtesy=True)
            if ending is not None:
                await shown(ending, tries=3)


class _Place:
    """A question's place in its channel from its arrival until it has its files: it gets them
    (`turn`) after the questions that came before it in the channel, so that one whose files
    take long to download is not overtaken by the next, and they join the channel's queue in
    the order they were sent."""

    def __init__(self, arrivals: dict[int, _Place], channel_id: int) -> None:
        self._arrivals = arrivals
        self._channel_id = channel_id
        self._before = arrivals.get(channel_id)
        self._done = asyncio.get_running_loop().create_future()
        self.deleted = False  # the member deleted the message meanwhile
        arrivals[channel_id] = self

    @property
    def waits(self) -> bool:
        """Whether a question before this one in the channel is still getting its files."""
        return self._before is not None and not self._before._done.done()

    async def turn(self) -> None:
        """Wait until the questions before this one in the channel have their files."""
        before = self._before
        if before is not None and not before._done.done():
            await asyncio.wait([before._done])  # (being cancelled must not cancel theirs)
        self._before = None

    def release(self) -> None:
        """This question has its files (or gave up): the next one's turn once the ones before
        it have theirs too. Idempotent."""
        before, self._before = self._before, None
        if before is not None and not before._done.done():
            before._done.add_done_callback(lambda _: self._finish())
        else:
            self._finish()
        if self._arrivals.get(self._channel_id) is self:
            del self._arrivals[self._channel_id]

    def _finish(self) -> None:
        if not self._done.done():
            self._done.set_result(None)


class ThreadSink:
    """Writes an answer into the thread opened for its question."""

    def __init__(self, thread: discord.Thread) -> None:
        self._thread = thread

    async def send(self, text: str) -> discord.Message:
        return await self._thread.send(text, allowed_mentions=NO_PINGS)

    async def edit(self, handle: discord.Message, text: str) -> discord.Message:
        try:
            return await handle.edit(content=text, allowed_mentions=NO_PINGS)
        except discord.NotFound:
            log.info("A reply message was deleted while streaming; sending it again")
            return await self._thread.send(text, allowed_mentions=NO_PINGS)


def _parent_id(channel: object) -> int | None:
    """A thread's parent channel; None for anything else."""
    return getattr(channel, "parent_id", None) if isinstance(channel, discord.Thread) else None


async def _say(message: discord.Message, text: str) -> None:
    """A short reply (a hint, a refusal); if Discord will not take it, there is no one to tell."""
    try:
        await message.reply(text, mention_author=False)
    except discord.HTTPException as exc:
        log.debug("Could not reply in channel %s: %s", message.channel.id, exc)


def _replied_attachments(message: discord.Message) -> list[discord.Attachment]:
    """The attachments of the message this one replies to (a question about those files)."""
    reference = message.reference
    resolved = reference.resolved if reference else None
    return list(resolved.attachments) if isinstance(resolved, discord.Message) else []


def _readable(text: str, message: discord.Message) -> str:
    """Other members', roles' and channels' mentions as names the model can read.

    A channel is named only if the asker can see it: a private channel's or thread's name is
    not the asker's to learn (nor the model's).
    """
    names = {f"@{u.id}": f"@{u.display_name}" for u in message.mentions}
    names |= {f"@&{r.id}": f"@{r.name}" for r in message.role_mentions}
    names |= {f"#{c.id}": f"#{c.name}" for c in message.channel_mentions if _visible(c, message)}
    return readable_mentions(text, names)


def _visible(channel: Any, message: discord.Message) -> bool:
    """Whether the message's author can see `channel`."""
    if channel.id == message.channel.id:
        return True
    author = message.author
    if not isinstance(author, discord.Member):
        return False
    permissions = channel.permissions_for(author)
    if isinstance(channel, discord.Thread) and channel.is_private():
        # Its members are not always cached; name it only for those who manage threads.
        return permissions.manage_threads
    return permissions.view_channel


async def setup(bot: ChatBot) -> None:
    await bot.add_cog(ChatCog(bot))
