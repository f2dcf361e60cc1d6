"""Hardening through the real bot: /stop, quiet refusals, gates on every command, deleted
questions, private channel names, the catch-all — on simcord with real SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import discord
import pytest
from simcord.backend.models.message import AllowedMentions

from bot.access import AccessPolicy
from bot.llm import Finished, StreamEvent
from tests.fake_openai import Reply
from tests.scripted_model import ScriptedModel

TOKENS = [f"part{n} " for n in range(6)]


def bot_posts(world, channel=None) -> list[str]:
    return [m.content for m in world.bot_messages(channel)]


@pytest.mark.simcord(settle_timeout=0.5)
@pytest.mark.parametrize("chat_model", [ScriptedModel(TOKENS, pace=2.0, first_delay=0.6)])
async def test_stop_by_the_asker_keeps_what_was_shown_marked_and_stores_nothing(world):
    env = world.env
    env.backend.create_message(world.channel.id, world.alice.id, f"{world.bot_mention} talk")
    await env.advance_time(1.0)  # the first words are on screen

    not_bobs = await world.bob.slash(world.channel, "stop")
    stopped = await world.alice.slash(world.channel, "stop")
    await env.advance_time(15)

    assert not_bobs.ephemeral and "member who asked" in not_bobs.response.content
    assert stopped.ephemeral and stopped.response.content.startswith("Stopped")
    (answer,) = world.bot_messages()
    assert answer.content.startswith("part0")
    assert "part5" not in answer.content and "⏳" not in answer.content
    assert f"Stopped by {world.alice.mention}; not kept." in answer.content
    assert await env.bot.service.history(world.channel.id, 10) == []
    nothing = await world.alice.slash(world.channel, "stop")
    assert "No answer is being written" in nothing.response.content


@pytest.mark.simcord(settle_timeout=0.5)
@pytest.mark.parametrize("chat_model", [ScriptedModel(TOKENS, pace=2.0, first_delay=0.6)])
async def test_a_moderator_stops_anyones_answer(world):
    env = world.env
    env.backend.create_message(world.channel.id, world.alice.id, f"{world.bot_mention} talk")
    await env.advance_time(1.0)

    result = await world.mod.slash(world.channel, "stop")
    await env.advance_time(15)

    assert result.response.content.startswith("Stopped")
    assert f"Stopped by {world.mod.mention}" in world.bot_messages()[0].content


@pytest.mark.parametrize("typing_pauses", [False, True])
async def test_a_member_flooding_a_busy_channel_is_refused_quietly(
    world, llm_server, monkeypatch, typing_pauses
):
    if typing_pauses:  # as real HTTP does: every question passes the edge's check before any
        entered = discord.context_managers.Typing.__aenter__  # of them reaches the queue

        async def pausing(self):
            await asyncio.sleep(0)
            return await entered(self)

        monkeypatch.setattr(discord.context_managers.Typing, "__aenter__", pausing)
    llm_server.default = Reply(text="an answer", latency=0.2)
    for n in range(8):
        world.env.backend.create_message(
            world.channel.id, world.alice.id, f"{world.bot_mention} q{n}"
        )
    await world.env.settle()

    posts = bot_posts(world)
    notices = [c for c in posts if "questions waiting" in c]
    hands = world.requests_to("PUT", "/reactions/%E2%9C%8B")  # ✋
    assert len(notices) == 1  # one public notice, then only reactions
    assert len(hands) == 5  # 8 asked: 2 taken (one answering, one waiting), 6 refused
    assert posts.count("an answer") == 2 and len(llm_server.requests) == 2
    assert len(await world.env.bot.service.history(world.channel.id, 10)) == 2


@pytest.mark.parametrize("access", [AccessPolicy(cooldown=60)])
async def test_cooldown_refusals_do_not_make_the_bot_post_at_the_spammers_rate(world, llm_server):
    for n in range(10):
        await world.alice.send(world.channel, f"{world.bot_mention} spam {n}")

    posts = bot_posts(world)
    assert len(llm_server.requests) == 1
    assert len(posts) == 2  # the answer, and one notice
    assert sum("asking too fast" in p for p in posts) == 1
    assert len(world.requests_to("PUT", "/reactions/")) == 8  # the rest: a quiet ⏱️


async def test_empty_mentions_get_one_hint_per_interval(world, llm_server):
    for _ in range(5):
        await world.alice.send(world.channel, f"{world.bot_mention}")

    assert sum("Ask me something" in p for p in bot_posts(world)) == 1
    assert llm_server.requests == []
    await world.env.advance_time(31)
    await world.alice.send(world.channel, f"{world.bot_mention}")
    assert sum("Ask me something" in p for p in bot_posts(world)) == 2


async def test_a_reply_to_the_bot_with_its_ping_switched_off_is_ignored(world, llm_server):
    await world.alice.send(world.channel, f"{world.bot_mention} first")
    answer = world.channel.last_message
    reference = {"channel_id": str(world.channel.id), "message_id": str(answer.id)}

    world.env.backend.create_message(
        world.channel.id,
        world.bob.id,
        "a follow-up without the ping",
        reference=reference,
        allowed_mentions=AllowedMentions(replied_user=False),
    )
    await world.env.settle()

    assert len(llm_server.requests) == 1
    assert bot_posts(world) == [answer.content]  # no hint, no answer


async def test_a_whitespace_only_ask_is_refused_privately(world, llm_server):
    result = await world.alice.slash(world.channel, "ask", question="   \x00 ")

    assert result.ephemeral and "no question there" in result.response.content
    assert llm_server.requests == []


async def test_a_private_channel_is_named_only_for_members_who_can_see_it(world, llm_server):
    llm_server.default = Reply(echo=True)
    secret = world.guild.create_text_channel(
        "secret-plans",
        overwrites={
            world.guild.default_role: discord.PermissionOverwrite(view_channel=False),
            world.mods: discord.PermissionOverwrite(view_channel=True),
        },
    )

    await world.alice.send(world.channel, f"{world.bot_mention} what is in {secret.mention}?")
    await world.mod.send(world.channel, f"{world.bot_mention} and now {secret.mention}?")

    alices, mods = (r["messages"][-1]["content"] for r in llm_server.requests)
    assert "secret-plans" not in alices and secret.mention in alices
    assert "#secret-plans" in mods


async def test_a_deleted_question_is_forgotten(world, llm_server):
    question = await world.alice.send(world.channel, f"{world.bot_mention} forget this")
    await world.alice.send(world.channel, f"{world.bot_mention} keep this")
    assert len(await world.env.bot.service.history(world.channel.id, 10)) == 2

    await world.alice.delete(question)

    (kept,) = await world.env.bot.service.history(world.channel.id, 10)
    assert kept.question.content == "keep this"


@pytest.mark.parametrize("access", [AccessPolicy(role_ids=frozenset({424242}))])
@pytest.mark.parametrize("command", ["history", "export", "info", "usage"])
async def test_the_role_gate_covers_every_command(world, llm_server, command):
    result = await world.alice.slash(world.channel, command)

    assert result.ephemeral and "roles" in result.response.content


@pytest.mark.parametrize("access", [AccessPolicy(allow_dms=False)])
async def test_with_dms_off_no_command_works_in_a_dm(world, llm_server, store):
    user = world.env.create_user("dmuser")
    world.guild.add_member(user)

    result = await user.slash("system set", prompt="You are a pirate.")

    assert result.ephemeral and "DMs" in result.response.content
    prompt = await world.env.bot.service.system_prompt(user.dm_channel.id)
    assert prompt.source == "default"


class ExplodingModel:
    """Writes a few words, then fails in a way nobody foresaw."""

    def __init__(self) -> None:
        self.calls = 0

    async def stream(
        self, messages: Sequence[dict[str, str]], **_: object
    ) -> AsyncIterator[StreamEvent]:
        self.calls += 1
        if self.calls == 1:
            yield "half an "
            raise RuntimeError("an unforeseen failure")
        yield "fine"
        yield Finished("stop")


@pytest.mark.parametrize("chat_model", [ExplodingModel()])
async def test_an_unforeseen_failure_ends_with_a_sentence_and_the_next_question_works(
    world, caplog
):
    backend = world.env.backend
    first = backend.create_message(world.channel.id, world.alice.id, f"{world.bot_mention} one")
    second = backend.create_message(world.channel.id, world.bob.id, f"{world.bot_mention} two")
    await world.env.settle()

    failed, answered = bot_posts(world)
    assert failed.startswith("half an") and "Something went wrong on my side" in failed
    assert "not kept" in failed  # the partial words are marked as not the answer
    assert answered == "fine"
    assert world.requests_to("DELETE", f"/messages/{second.id}/reactions/"), "⏳ removed"
    assert not world.requests_to("PUT", f"/messages/{first.id}/reactions/")
    assert any(r.exc_info and "unforeseen" in str(r.exc_info[1]) for r in caplog.records)
    (stored,) = await world.env.bot.service.history(world.channel.id, 10)
    assert stored.answer.content == "fine"


async def test_a_database_deleted_while_running_is_said_not_hidden(world, llm_server, db_path):
    await world.alice.send(world.channel, f"{world.bot_mention} before")
    db_path.unlink()

    await world.alice.send(world.channel, f"{world.bot_mention} after")

    assert "database file is gone" in world.channel.last_message.content
    assert "restart me" in world.channel.last_message.content
