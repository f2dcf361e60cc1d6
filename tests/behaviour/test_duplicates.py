"""A question delivered twice (a gateway replay, two processes in a rolling deploy): one answer."""

from __future__ import annotations

from tests.fake_openai import Reply


async def test_a_message_delivered_twice_is_answered_once(world, llm_server):
    llm_server.default = Reply(text="once")
    question = await world.alice.send(world.channel, f"{world.bot_mention} hello?")
    assert len(llm_server.requests) == 1

    backend = world.env.backend  # the same MESSAGE_CREATE, delivered again by the gateway
    backend.announce_message_create(backend.messages[world.channel.id][question.id])
    await world.env.settle()

    assert len(llm_server.requests) == 1
    assert [m.content for m in world.bot_messages()] == ["once"]
    assert len(await world.env.bot.service.history(world.channel.id, 10)) == 1
