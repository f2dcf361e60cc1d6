"""Meta-test: every extension loads offline; the command tree is exactly as documented."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.access import AccessPolicy
from bot.client import EXTENSIONS, ChatBot

EXPECTED = {
    "ask": ["question", "file"],
    "stop": [],
    "settings effort": ["level"],
    "settings temperature": ["value"],
    "settings reply-length": ["tokens"],
    "settings history-rounds": ["rounds"],
    "settings mode": ["mode"],
    "settings reset": [],
    "system set": ["prompt"],
    "system show": [],
    "system clear": [],
    "reset": [],
    "model": ["name"],
    "history": ["rounds"],
    "usage": [],
    "export": [],
    "info": [],
}
# Context-menu commands: name -> type (on a message or a member).
MENUS = {"Ask chatlab": discord.AppCommandType.message}
MODERATOR_ONLY = {"system", "reset", "model", "settings"}


def walk(commands):
    """Every slash command and group, depth first (context menus are not slash commands)."""
    for command in commands:
        if isinstance(command, app_commands.ContextMenu):
            continue
        if isinstance(command, app_commands.Group):
            yield command
            yield from walk(command.commands)
        else:
            yield command


async def test_extensions_load_offline_into_the_exact_command_tree(service, store):
    bot = ChatBot(service=service, store=store, access=AccessPolicy(), sync_on_start=False)
    for extension in EXTENSIONS:
        await bot.load_extension(extension)
    try:
        everything = list(walk(bot.tree.get_commands()))
        leaves = {
            c.qualified_name: [p.name for p in c.parameters]
            for c in everything
            if isinstance(c, app_commands.Command)
        }

        assert leaves == EXPECTED
        menus = bot.tree.get_commands(type=discord.AppCommandType.message)
        menus += bot.tree.get_commands(type=discord.AppCommandType.user)
        assert {m.name: m.type for m in menus} == MENUS
        for command in everything:
            assert command.description and command.description != "…", command.qualified_name
            for parameter in getattr(command, "parameters", []):
                assert parameter.description and parameter.description != "…", (
                    f"/{command.qualified_name} {parameter.name}"
                )
        for command in bot.tree.get_commands():
            needs = command.default_permissions
            if command.name in MODERATOR_ONLY:
                assert needs == discord.Permissions(manage_messages=True), command.name
            else:
                assert needs is None, command.name
    finally:
        await bot.close()


async def test_the_bot_asks_for_no_privileged_intent_and_pings_nobody(service, store):
    bot = ChatBot(service=service, store=store, access=AccessPolicy())
    try:
        assert not bot.intents.message_content
        assert not bot.intents.members and not bot.intents.presences
        mentions = bot.allowed_mentions
        assert mentions is not None
        assert (mentions.everyone, mentions.users, mentions.roles, mentions.replied_user) == (
            False,
            False,
            False,
            False,
        )
    finally:
        await bot.close()
