"""Discord objects turned into what the core takes (plain ids), and small Discord writes."""

from __future__ import annotations

import logging

import discord

from bot.access import Asker

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()


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
