"""Discord misbehaving: nothing crashes, no turn is lost, one log line, a sensible fallback."""

from __future__ import annotations

import logging

import discord
import pytest

from cogs._reply import MAX_MESSAGES
from tests.fake_openai import Reply
from tests.scripted_model import ScriptedModel

TOKENS = [f"part{n} " for n in range(6)]


@pytest.mark.simcord(settle_timeout=0.5)
@pytest.mark.parametrize("chat_model", [ScriptedModel(TOKENS, pace=2.0, first_delay=0.6)])
async def test_an_answer_deleted_mid_stream_is_sent_again(world):
    env = world.env
    env.backend.create_message(world.channel.id, world.alice.id, f"{world.bot_mention} talk")
    await env.advance_time(1.0)
    (first,) = world.bot_messages()

    await world.mod.delete(first)
    await env.advance_time(15)

    (again,) = world.bot_messages()
    assert again.id != first.id and again.content == "".join(TOKENS).strip()
    (stored,) = await env.bot.service.history(world.channel.id, 10)
    assert stored.answer.content == "".join(TOKENS)


async def test_no_permission_to_answer_logs_one_line_and_keeps_the_turn(world, llm_server, caplog):
    muted = world.guild.create_text_channel(
        "read-only",
        overwrites={world.env.bot.user: discord.PermissionOverwrite(send_messages=False)},
    )
    llm_server.then(Reply(text="You will not see this here."))

    with caplog.at_level(logging.INFO, logger="cogs"):
        await world.alice.send(muted, f"{world.bot_mention} can you answer?")

    assert world.bot_messages(muted) == []
    lines = [r for r in caplog.records if "Discord refused a write of the answer" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelname == "WARNING"
    (stored,) = await world.env.bot.service.history(muted.id, 10)
    assert stored.answer.content == "You will not see this here."


@pytest.mark.simcord(settle_timeout=0.5)
@pytest.mark.parametrize("chat_model", [ScriptedModel(["slow ", "answer"], first_delay=16 * 60)])
async def test_an_answer_after_the_interaction_token_expired_goes_to_the_channel(world):
    env = world.env

    result = await world.alice.slash(world.channel, "ask", question="take your time")
    await env.advance_time(16 * 60 + 1)  # past the 15 minutes an interaction token lives

    assert result.deferred
    last = world.channel.last_message
    assert last.author.id == env.bot.user.id
    assert last.content.endswith("slow answer")
    assert "take your time" in last.content  # the quoted question came along
    (stored,) = await env.bot.service.history(world.channel.id, 10)
    assert stored.answer.content == "slow answer"


@pytest.mark.simcord(settle_timeout=1.0)  # the retry's 2 s wait parks until time advances
async def test_a_rate_limited_final_edit_is_tried_again(world, llm_server):
    llm_server.then(Reply(text="edited despite a 429", chunk_size=5))
    # A 429 without Discord's Via header (a Cloudflare limit): discord.py does not retry those.
    world.env.inject_error("PATCH", "/channels/*/messages/*", status=429, times=1)

    await world.alice.send(world.channel, f"{world.bot_mention} go")
    await world.env.advance_time(3)

    assert world.bot_messages()[-1].content == "edited despite a 429"


@pytest.mark.parametrize("config_overrides", [{"max_tokens": 8192, "context_window": 32768}])
async def test_a_100000_character_answer_is_capped_in_the_channel_and_whole_in_export(
    world, llm_server
):
    text = ("All work and no play makes a very long answer. " * 2200)[:100_000]
    llm_server.then(Reply(text=text, chunk_size=2000))

    await world.alice.send(world.channel, f"{world.bot_mention} write a novel")
    exported = await world.alice.slash(world.channel, "export")

    messages = world.bot_messages()
    assert len(messages) == MAX_MESSAGES
    assert messages[-1].content.endswith("/export has all of it.")
    assert all(len(m.content) <= 2000 for m in messages)
    data = (await exported.response.attachments[0].read()).decode()
    assert text in data
