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
from bot.store import ConversationStore
from cogs._discord import NO_PINGS, asker_of, respond_privately
from cogs._render import explain

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.chat", "cogs.manage")
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


def command_tree_fingerprint(tree: app_commands.CommandTree[ChatBot]) -> str:
    payload = [command.to_dict(tree) for command in tree.get_commands()]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
