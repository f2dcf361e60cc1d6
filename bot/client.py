"""The Discord client: intents, allowed mentions, extensions, the command tree, command sync.

The bot needs no privileged intent: Discord delivers the content of messages that mention the
bot, of replies that ping it, and of DMs without the message-content intent. With that intent
enabled in the Developer Portal, replies to the bot that do not ping it are understood too.
"""

from __future__ import annotations

import hashlib
import json
import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.access import AccessPolicy
from bot.chat import ChatService
from bot.errors import ChatlabError, StoreError
from bot.messages import text
from bot.storage import Store
from cogs._discord import NO_PINGS, asker_of, respond_privately
from cogs._locale import CatalogueTranslator, interaction_locale
from cogs._render import explain, refusal_sentence

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.chat", "cogs.manage", "cogs.settings")
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
        await self.tree.set_translator(CatalogueTranslator())
        # The tree's one error handler, installed last: an error it explains is handled there.
        self.tree.on_error = self.tree.explain_error  # type: ignore[method-assign]
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
        fingerprint = await command_tree_fingerprint(self.tree)
        if not force_global and await self.store.get_meta(TREE_FINGERPRINT_KEY) == fingerprint:
            log.info("Command tree unchanged since the last global sync; not syncing")
            return
        synced = await self.tree.sync()
        await self.store.set_meta(TREE_FINGERPRINT_KEY, fingerprint)
        log.info("Synced %d commands globally (may take up to an hour to show)", len(synced))


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
