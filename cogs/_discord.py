"""Discord objects turned into what the core takes (plain ids), and small Discord writes."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.access import Asker

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
MODERATORS = discord.Permissions(manage_messages=True)


def asker_of(
    user: discord.abc.User,
    channel: discord.abc.Messageable | discord.abc.GuildChannel | None,
) -> Asker:
    """Who is asking where, in the plain ids the access policy takes."""
    roles = [role.id for role in getattr(user, "roles", ())]
    return Asker(
        user_id=user.id,
        role_ids=roles,
        channel_id=getattr(channel, "id", 0),
        parent_id=getattr(channel, "parent_id", None),
        in_dm=isinstance(channel, discord.DMChannel),
    )


async def respond_privately(interaction: discord.Interaction, text: str) -> None:
    """Answer the invoker only, whether or not the interaction was already acknowledged."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_PINGS)
        else:
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_PINGS)
    except discord.HTTPException as exc:
        log.warning("Could not answer an interaction: %s", exc)


def moderators_only() -> app_commands.check:  # type: ignore[valid-type]
    """Manage Messages in the channel (in a DM its member manages their own conversation).

    Discord's default permissions hide these commands from others; this checks again when the
    command runs, so widening them in Server Settings → Integrations changes nothing.
    """

    def predicate(interaction: discord.Interaction) -> bool:
        if interaction.guild is None or interaction.permissions.manage_messages:
            return True
        raise app_commands.MissingPermissions(["manage_messages"])

    return app_commands.check(predicate)


def members_thread(channel: object, bot_id: int | None) -> bool:
    """Whether `channel` is a thread that members opened (not the bot, `bot_id`)."""
    return isinstance(channel, discord.Thread) and channel.owner_id != bot_id


def where(interaction: discord.Interaction) -> tuple[int, int | None]:
    """The interaction's channel, and its parent if it is a thread."""
    channel = interaction.channel
    assert channel is not None
    return channel.id, getattr(channel, "parent_id", None)
