"""Who may ask where, and how often: the same rules for /ask and mentions."""

from __future__ import annotations

import pytest

from bot.access import AccessPolicy
from tests.fake_openai import Reply
from tests.speakers import said


@pytest.mark.parametrize("access", [AccessPolicy(cooldown=30)])
async def test_the_cooldown_spans_slash_and_mention_and_expires(world, llm_server):
    llm_server.default = Reply(echo=True)

    await world.alice.slash(world.channel, "ask", question="first")
    await world.alice.send(world.channel, f"{world.bot_mention} too soon")
    refused = world.channel.last_message.content
    slash_refused = await world.alice.slash(world.channel, "ask", question="also too soon")
    await world.bob.send(world.channel, f"{world.bot_mention} bob is not limited by alice")
    await world.env.advance_time(31)
    await world.alice.send(world.channel, f"{world.bot_mention} later")

    assert refused.startswith("You're asking too fast; try again in")
    assert slash_refused.ephemeral and "too fast" in slash_refused.response.content
    asked = [m["messages"][-1]["content"] for m in llm_server.requests]
    assert asked == [
        said("Alice", world.alice.id, "first"),
        said("Bob", world.bob.id, "bob is not limited by alice"),
        said("Alice", world.alice.id, "later"),
    ]


async def test_channel_restriction_holds_for_mentions_and_slash(world, llm_server, simcord_bot):
    allowed = world.guild.create_text_channel("ask-the-bot")
    simcord_bot.access.channel_ids = frozenset({allowed.id})
    thread = world.thread(parent=allowed)

    await world.alice.send(world.channel, f"{world.bot_mention} here?")
    slash = await world.alice.slash(world.channel, "ask", question="here?")
    await world.alice.send(allowed, f"{world.bot_mention} in the allowed channel")
    await world.alice.send(thread, f"{world.bot_mention} in its thread")

    assert world.bot_messages() == []  # a mention elsewhere is ignored quietly
    assert slash.ephemeral and slash.response.content == "I'm not enabled in this channel."
    assert len(llm_server.requests) == 2


async def test_role_restriction_holds_for_mentions_and_slash(world, llm_server, simcord_bot):
    simcord_bot.access.role_ids = frozenset({world.mods.id})

    await world.alice.send(world.channel, f"{world.bot_mention} may I?")
    slash = await world.alice.slash(world.channel, "ask", question="may I?")
    await world.mod.send(world.channel, f"{world.bot_mention} moderators may")

    assert "You need one of the roles" in world.bot_messages()[0].content
    assert slash.ephemeral and "You need one of the roles" in slash.response.content
    assert len(llm_server.requests) == 1
