"""The Discord client: intents, shards, allowed mentions, extensions, the command tree, sync.

Mentions need no privileged intent: Discord delivers the content of messages that mention the
bot, of replies that ping it, and of DMs without it. Chat and thread channels (answered without
a mention) need the Message Content intent: `choose_intents` asks for it when MESSAGE_CONTENT is
`on`, or `auto` and some channel is in such a mode at start; the portal must allow it.

Sharding is discord.py's own: `ShardedChatBot` (an `AutoShardedBot`) runs the shards SHARD_IDS of
SHARD_COUNT in this process; unset, `ChatBot` is one connection and Discord routes every guild
to it. Either way `gateway_connected()` says whether every connection of the process is up (the
heartbeat's test, bot/health.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.access import AccessPolicy
from bot.channels import Mode
from bot.chat import ChatService
from bot.errors import ChatlabError, StoreError
from bot.messages import text
from bot.storage import Store
from cogs._discord import NO_PINGS, asker_of, respond_privately
from cogs._locale import CatalogueTranslator, interaction_locale
from cogs._render import explain, refusal_sentence

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.chat", "cogs.manage", "cogs.settings", "cogs.context")
# The channel modes in which members talk to the bot without mentioning it.
UNMENTIONED_MODES = (Mode.CHAT.value, Mode.THREADS.value)
TREE_FINGERPRINT_KEY = "command_tree_fingerprint"
# What the bot needs in a channel, and nothing more: read and answer (in threads too), reply to
# the question (read history), mark a queued question, attach an export.
INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    read_message_history=True,
    add_reactions=True,
    attach_files=True,
)


class ChatTree(app_commands.CommandTree["ChatBot"]):
    """The command tree: every command passes the access rules (channels, roles, DMs) first,
    and every error a command raises ends here, as one private sentence in the member's
    language."""

    async def interaction_check(self, interaction: discord.Interaction[ChatBot], /) -> bool:
        refusal = self.client.access.may_use(asker_of(interaction.user, interaction.channel))
        if refusal is None:
            return True
        if interaction.type is discord.InteractionType.application_command:
            sentence = refusal_sentence(refusal, interaction_locale(interaction))
            await respond_privately(interaction, sentence)
        elif interaction.type is discord.InteractionType.autocomplete:
            await interaction.response.autocomplete([])
        return False

    async def explain_error(
        self, interaction: discord.Interaction[ChatBot], error: app_commands.AppCommandError, /
    ) -> None:
        """The one place command errors are explained (and the unforeseen logged)."""
        locale = interaction_locale(interaction)
        if isinstance(error, app_commands.CommandOnCooldown):
            seconds = max(1, round(error.retry_after))
            sentence = text(locale, "command_error.cooldown", seconds=seconds)
        elif isinstance(error, app_commands.MissingPermissions):
            sentence = text(locale, "command_error.missing_permission")
        elif isinstance(error, app_commands.CheckFailure):
            sentence = text(locale, "command_error.generic")
        elif isinstance(error, app_commands.CommandInvokeError):
            original = error.original
            if not isinstance(original, ChatlabError) or isinstance(original, StoreError):
                name = interaction.command.qualified_name if interaction.command else "?"
                log.error("Unexpected error in /%s", name, exc_info=original)
            sentence = explain(original, locale)
        else:
            log.error("Command error", exc_info=error)
            sentence = text(locale, "error.unexpected")
        await respond_privately(interaction, sentence)


class ChatBot(commands.Bot):
    tree: ChatTree

    def __init__(
        self,
        *,
        service: ChatService,
        store: Store,
        access: AccessPolicy,
        dev_guild_id: int | None = None,
        intents: discord.Intents | None = None,
        sync_on_start: bool = True,
        export_cooldown: float = 60.0,
        on_set_up: Callable[[], object] | None = None,
        **client_options: Any,
    ) -> None:
        # chatlab has no voice features: no warnings about voice libraries at every start.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents or discord.Intents.default(),
            allowed_mentions=NO_PINGS,
            help_command=None,
            tree_cls=ChatTree,
            **client_options,
        )
        self.service = service
        self.store = store
        self.access = access
        self.dev_guild_id = dev_guild_id
        self.sync_on_start = sync_on_start
        self.export_cooldown = export_cooldown  # seconds between two /export of one member
        self._on_set_up = on_set_up  # called at the end of setup_hook (python -m bot: collector)

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.tree.set_translator(CatalogueTranslator())
        # The tree's one error handler, installed last: an error it explains is handled there.
        self.tree.on_error = self.tree.explain_error  # type: ignore[method-assign]
        if self.sync_on_start:
            await self.sync_commands()
        if self._on_set_up is not None:
            self._on_set_up()

    def gateway_connected(self) -> bool:
        """Whether the gateway connection is ready and open (the heartbeat beats only then)."""
        if self.is_closed() or not self.is_ready():
            return False
        websocket = self.ws
        return websocket is not None and bool(websocket.open)

    def beat_on_connect(self, beat: Callable[[], object]) -> None:
        """Call `beat` whenever the gateway (or one shard) connects, is ready, or resumes, so
        the heartbeat is fresh at once, not one beat interval later (`beat` checks that every
        connection is up)."""

        async def listener(*_: object) -> None:
            beat()

        for event in ("connect", "ready", "resumed"):
            self.add_listener(listener, f"on_{event}")
            self.add_listener(listener, f"on_shard_{event}")

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
        fingerprint = await command_tree_fingerprint(self.tree)
        if not force_global and await self.store.get_meta(TREE_FINGERPRINT_KEY) == fingerprint:
            log.info("Command tree unchanged since the last global sync; not syncing")
            return
        synced = await self.tree.sync()
        await self.store.set_meta(TREE_FINGERPRINT_KEY, fingerprint)
        log.info("Synced %d commands globally (may take up to an hour to show)", len(synced))


class ShardedChatBot(ChatBot, commands.AutoShardedBot):
    """The bot running `shard_ids` of `shard_count` shards in this process, one connection each.

    Discord routes each guild to one shard (`(guild_id >> 22) % shard_count`) and every DM to
    shard 0, so a channel's questions all reach the one process that runs its shard.
    """

    def __init__(self, *, shard_count: int, shard_ids: Sequence[int], **options: Any) -> None:
        super().__init__(shard_count=shard_count, shard_ids=list(shard_ids), **options)

    def gateway_connected(self) -> bool:
        """Whether every shard of this process is ready and its connection open."""
        if self.is_closed() or not self.is_ready() or not self.shards:
            return False
        return all(not shard.is_closed() for shard in self.shards.values())


def build_bot(
    *, shard_count: int | None = None, shard_ids: Sequence[int] | None = None, **options: Any
) -> ChatBot:
    """`ShardedChatBot` for SHARD_COUNT (running `shard_ids`, all by default); else `ChatBot`."""
    if shard_count is None:
        return ChatBot(**options)
    ids = tuple(range(shard_count)) if shard_ids is None else tuple(shard_ids)
    return ShardedChatBot(shard_count=shard_count, shard_ids=ids, **options)


async def choose_intents(message_content: str, store: Store) -> discord.Intents:
    """The gateway intents: the defaults, plus Message Content when MESSAGE_CONTENT is `on`, or
    `auto` and some channel is a chat or thread channel (they are answered without a mention)."""
    intents = discord.Intents.default()
    if message_content == "on":
        intents.message_content = True
    elif message_content == "auto":
        channels = await store.channels_with_option("mode", UNMENTIONED_MODES)
        intents.message_content = bool(channels)
        if channels:
            log.info(
                "Asking for the Message Content intent: %d chat or thread channel(s)", len(channels)
            )
    return intents


async def command_tree_fingerprint(tree: app_commands.CommandTree[ChatBot]) -> str:
    """What a global sync would send, translations included: a changed sentence is a change."""
    translator = tree.translator
    payload = [
        await command.get_translated_payload(tree, translator)
        if translator is not None
        else command.to_dict(tree)
        for command in tree.get_commands()
    ]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
