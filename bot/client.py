"""The Discord client: intents, allowed mentions, extensions, command sync, and reply sinks.

The bot needs no privileged intent: Discord delivers the content of messages that mention the
bot, of replies that ping it, and of DMs without the message-content intent. With that intent
enabled in the Developer Portal, replies to the bot that do not ping it are understood too.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable

import discord
from discord import app_commands
from discord.ext import commands

from bot.access import AccessPolicy, Asker
from bot.chat import ChatService
from bot.replies import explain
from bot.store import ConversationStore

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.chat", "cogs.manage")
TREE_FINGERPRINT_KEY = "command_tree_fingerprint"
NO_PINGS = discord.AllowedMentions.none()
# What the bot needs in a channel, and nothing more: read and answer (in threads too), reply to
# the question (read history), mark a queued question, attach an export.
FINAL_RETRY_DELAY = 2.0  # seconds, then twice that: the final render is worth a second try
INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    read_message_history=True,
    add_reactions=True,
    attach_files=True,
)


class ChatTree(app_commands.CommandTree["ChatBot"]):
    """The command tree: every command passes the access rules (channels, roles, DMs) first."""

    async def interaction_check(self, interaction: discord.Interaction[ChatBot], /) -> bool:
        refusal = self.client.access.may_use(asker_of(interaction.user, interaction.channel))
        if refusal is None:
            return True
        if interaction.type is discord.InteractionType.application_command:
            await respond_privately(interaction, refusal.sentence)
        elif interaction.type is discord.InteractionType.autocomplete:
            await interaction.response.autocomplete([])
        return False


class ChatBot(commands.Bot):
    tree: ChatTree  # type: ignore[assignment]

    def __init__(
        self,
        *,
        service: ChatService,
        store: ConversationStore,
        access: AccessPolicy,
        dev_guild_id: int | None = None,
        intents: discord.Intents | None = None,
        sync_on_start: bool = True,
        export_cooldown: float = 60.0,
    ) -> None:
        # chatlab has no voice features: no warnings about voice libraries at every start.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents or discord.Intents.default(),
            allowed_mentions=NO_PINGS,
            help_command=None,
            tree_cls=ChatTree,
        )
        self.service = service
        self.store = store
        self.access = access
        self.dev_guild_id = dev_guild_id
        self.sync_on_start = sync_on_start
        self.export_cooldown = export_cooldown  # seconds between two /export of one member

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        self.tree.on_error = self.on_app_command_error
        if self.sync_on_start:
            await self.sync_commands()

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info("Connected as %s (%s) to %d server(s)", self.user, self.user.id, len(self.guilds))
        log.info(
            "Invite URL: %s",
            discord.utils.oauth_url(
                self.user.id,
                permissions=INVITE_PERMISSIONS,
                scopes=("bot", "applications.commands"),
            ),
        )

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: conversations are handled by the chat cog's listener."""

    async def sync_commands(self, *, force_global: bool = False) -> None:
        """Sync deliberately: to the dev guild at every start when one is configured (and then
        not globally unless forced); otherwise globally only when the tree changed."""
        if self.dev_guild_id is not None and not force_global:
            guild = discord.Object(self.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("Synced %d commands to the dev guild %s", len(synced), self.dev_guild_id)
            return
        fingerprint = command_tree_fingerprint(self.tree)
        if not force_global and await self.store.get_meta(TREE_FINGERPRINT_KEY) == fingerprint:
            log.info("Command tree unchanged since the last global sync; not syncing")
            return
        synced = await self.tree.sync()
        await self.store.set_meta(TREE_FINGERPRINT_KEY, fingerprint)
        log.info("Synced %d commands globally (may take up to an hour to show)", len(synced))

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """The one place unexpected command errors are logged and answered politely."""
        if isinstance(error, app_commands.CommandOnCooldown):
            sentence = f"Please wait {max(1, round(error.retry_after))} s before doing that again."
        elif isinstance(error, app_commands.MissingPermissions):
            sentence = "Only moderators (Manage Messages) can do that here."
        elif isinstance(error, app_commands.CheckFailure):
            sentence = str(error) or "You can't use that command here."
        elif isinstance(error, app_commands.CommandInvokeError):
            original = error.original
            name = interaction.command.qualified_name if interaction.command else "?"
            log.error("Unexpected error in /%s", name, exc_info=original)
            sentence = explain(original)
        else:
            log.error("Command error", exc_info=error)
            sentence = "Something went wrong on my side; please try again."
        await respond_privately(interaction, sentence)


async def respond_privately(interaction: discord.Interaction, text: str) -> None:
    """Answer the invoker only, whether or not the interaction was already acknowledged."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_PINGS)
        else:
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_PINGS)
    except discord.HTTPException as exc:
        log.warning("Could not answer an interaction: %s", exc)


def command_tree_fingerprint(tree: app_commands.CommandTree[ChatBot]) -> str:
    payload = [command.to_dict(tree) for command in tree.get_commands()]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def asker_of(user: discord.abc.User, channel: discord.abc.Messageable | None) -> Asker:
    """Who is asking where, in the plain ids the access policy takes."""
    roles = [role.id for role in getattr(user, "roles", ())]
    return Asker(
        user_id=user.id,
        role_ids=roles,
        channel_id=getattr(channel, "id", 0),
        parent_id=getattr(channel, "parent_id", None),
        in_dm=isinstance(channel, discord.DMChannel),
    )


class ChannelSink:
    """Writes a reply into a channel: the first message replies to the question."""

    def __init__(self, question: discord.Message) -> None:
        self._question = question
        self._channel = question.channel

    async def send(self, text: str) -> discord.Message:
        if self._question is not None:
            question, self._question = self._question, None
            try:
                return await question.reply(text, mention_author=False, allowed_mentions=NO_PINGS)
            except discord.HTTPException:  # the question was deleted meanwhile
                pass
        return await self._channel.send(text, allowed_mentions=NO_PINGS)

    async def edit(self, handle: discord.Message, text: str) -> discord.Message:
        try:
            return await handle.edit(content=text, allowed_mentions=NO_PINGS)
        except discord.NotFound:
            log.info("A reply message was deleted while streaming; sending it again")
            return await self._channel.send(text, allowed_mentions=NO_PINGS)


class InteractionSink:
    """Writes a reply into a deferred interaction: the original response, then follow-ups.

    An interaction's token lasts 15 minutes; past that (or if a message was deleted) the reply
    continues as ordinary channel messages.
    """

    def __init__(self, interaction: discord.Interaction) -> None:
        self._interaction = interaction
        self._original_used = False

    async def send(self, text: str) -> discord.abc.Snowflake:
        try:
            if not self._original_used:
                self._original_used = True
                return await self._interaction.edit_original_response(
                    content=text, allowed_mentions=NO_PINGS
                )
            return await self._interaction.followup.send(text, wait=True, allowed_mentions=NO_PINGS)
        except (discord.NotFound, discord.Forbidden, discord.HTTPException) as exc:
            return await self._fallback(text, exc)

    async def edit(self, handle: discord.abc.Snowflake, text: str) -> discord.abc.Snowflake:
        try:
            return await handle.edit(content=text, allowed_mentions=NO_PINGS)  # type: ignore[attr-defined]
        except discord.HTTPException as exc:
            return await self._fallback(text, exc)

    async def _fallback(self, text: str, exc: discord.HTTPException) -> discord.Message:
        channel = self._interaction.channel
        if exc.status >= 500 or not isinstance(channel, discord.abc.Messageable):
            raise exc
        log.info("Interaction reply unavailable (%s); continuing in the channel", exc.status)
        return await channel.send(text, allowed_mentions=NO_PINGS)


class AnswerDisplay:
    """Runs the Discord writes of one answer. A failure never stops the conversation: the answer
    is still completed and stored. Without permission to write, it stops trying; after another
    failure (a rate limit, a Discord error) later writes — the final render rewrites every
    message — try again. One log line either way."""

    def __init__(self, channel_id: int) -> None:
        self._channel_id = channel_id
        self._logged = False
        self._forbidden = False

    async def __call__(
        self, write: Callable[[], Awaitable[object]], *, courtesy: bool = False, tries: int = 1
    ) -> None:
        for attempt in range(1, tries + 1):
            if self._forbidden:
                return
            try:
                await write()
                return
            except discord.HTTPException as exc:
                if courtesy:  # typing, reactions: nice to have
                    log.debug("Skipped a courtesy in channel %s: %s", self._channel_id, exc)
                    return
                self._failed(exc)
            if attempt < tries:
                await asyncio.sleep(FINAL_RETRY_DELAY * attempt)

    def _failed(self, exc: discord.HTTPException) -> None:
        self._forbidden = isinstance(exc, discord.Forbidden)
        if not self._logged:
            self._logged = True
            log.warning(
                "Discord refused a write of the answer in channel %s (HTTP %s, code %s); "
                "the answer is stored either way",
                self._channel_id,
                exc.status,
                exc.code,
            )
