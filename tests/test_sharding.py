"""Shards: discord.py's AutoShardedBot runs SHARD_IDS of SHARD_COUNT in this process, against
simcord's simulated gateway (one connection per shard, guilds routed by id like Discord)."""

from __future__ import annotations

import discord
import pytest
import simcord

from bot.access import AccessPolicy
from bot.chat import ChatService
from bot.client import ChatBot, ShardedChatBot, build_bot
from bot.health import Heartbeat
from tests.conftest import make_config
from tests.fake_openai import Reply


def bot_for(store, chat_model, **shards) -> ChatBot:
    service = ChatService(store, chat_model, make_config())
    return build_bot(service=service, store=store, access=AccessPolicy(), **shards)


def guild_on(env, shard_id: int):
    guild = env.create_guild(f"guild on shard {shard_id}", shard_id=shard_id)
    channel = guild.create_text_channel("general")
    alice = guild.add_member(env.create_user(f"alice{shard_id}", global_name="Alice"))
    return channel, alice


def test_without_a_shard_count_the_bot_is_one_connection_and_with_one_it_is_sharded(
    store, chat_model
):
    single = bot_for(store, chat_model)
    sharded = bot_for(store, chat_model, shard_count=4, shard_ids=(1, 2))
    every = bot_for(store, chat_model, shard_count=3)

    assert not isinstance(single, discord.AutoShardedClient)
    assert isinstance(sharded, ShardedChatBot) and isinstance(sharded, discord.AutoShardedClient)
    assert (sharded.shard_count, sharded.shard_ids) == (4, [1, 2])
    assert (every.shard_count, every.shard_ids) == (3, [0, 1, 2])


async def test_a_process_answers_in_the_guilds_of_its_shards_only(store, chat_model, llm_server):
    llm_server.default = Reply(text="Hello!")
    bot = bot_for(store, chat_model, shard_count=3, shard_ids=(0, 2))

    async with simcord.run(bot) as env:
        answered = [guild_on(env, 0), guild_on(env, 2)]
        elsewhere, carol = guild_on(env, 1)  # run by another process
        for channel, alice in answered:
            await alice.send(channel, f"<@{bot.user.id}> hi")
        await carol.send(elsewhere, f"<@{bot.user.id}> hi")

        for channel, _ in answered:
            assert channel.last_message.content == "Hello!"
        assert elsewhere.last_message.author.id == carol.id  # no answer here
        assert len(llm_server.requests) == 2


async def test_the_gateway_is_connected_only_while_every_shard_is(store, chat_model):
    bot = bot_for(store, chat_model, shard_count=2)

    async with simcord.run(bot) as env:
        assert bot.gateway_connected()

        await bot.get_shard(1).disconnect()
        await env.settle()
        assert not bot.gateway_connected()

        await bot.get_shard(1).reconnect()
        await env.settle()
        assert bot.gateway_connected()

    assert not bot.gateway_connected()  # closed


async def test_a_single_connection_is_connected_once_ready_until_closed(store, chat_model):
    bot = bot_for(store, chat_model)
    assert not bot.gateway_connected()  # not started

    async with simcord.run(bot) as env:
        assert bot.gateway_connected()
        await bot.ws.close()
        await env.settle()
        assert not bot.gateway_connected()

    assert not bot.gateway_connected()


@pytest.mark.parametrize(("shard_ids", "answers"), [((0,), True), ((1,), False)])
async def test_dms_reach_the_process_that_runs_shard_zero_only(
    store, chat_model, llm_server, shard_ids, answers
):
    llm_server.default = Reply(text="Hi in private.")
    bot = bot_for(store, chat_model, shard_count=2, shard_ids=shard_ids)

    async with simcord.run(bot) as env:
        user = env.create_user("dora", global_name="Dora")
        await user.send_dm("hello")

        replies = [m for m in bot.cached_messages if m.author.id == bot.user.id]
        assert [m.content for m in replies] == (["Hi in private."] if answers else [])


async def test_the_heartbeat_beats_as_soon_as_every_shard_is_ready_again(
    store, chat_model, tmp_path
):
    bot = bot_for(store, chat_model, shard_count=2)
    beats = Heartbeat(tmp_path / "heartbeat", bot.gateway_connected)
    bot.beat_on_connect(beats.beat)

    async with simcord.run(bot) as env:
        assert beats.path.exists()  # at once, not a beat interval later
        beats.path.unlink()
        await bot.get_shard(1).disconnect()
        await env.settle()
        assert not beats.beat() and not beats.path.exists()

        await bot.get_shard(1).reconnect()
        await env.settle()
        assert beats.path.exists()
