"""Talking to the bot: /ask, mentions, replies, DMs, threads, queueing, long answers, no pings."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing

import pytest

from bot.access import AccessPolicy
from bot.storage.sqlite import SQLiteStore
from tests.behaviour.conftest import build_bot
from tests.fake_openai import Reply
from tests.speakers import said


async def test_ask_defers_at_once_then_streams_the_answer_under_the_quoted_question(
    world, llm_server, service_history
):
    llm_server.then(Reply(text="Forty-two, of course.", chunk_size=5))

    result = await world.alice.slash(world.channel, "ask", question="Meaning of life?")

    callbacks = world.requests_to("POST", "/callback")
    assert callbacks[0].json == {"type": 5}  # deferred before anything else happened
    edits = world.requests_to("PATCH", "/messages/@original")
    assert edits[0].json["content"].endswith(" ⏳")  # the first words, in progress
    final = result.response.content
    assert final == f"{world.alice.mention} asked:\n> Meaning of life?\n\nForty-two, of course."
    (stored,) = await service_history(world.channel.id)
    assert (stored.question.content, stored.question.author_name) == ("Meaning of life?", "Alice")


async def test_a_mention_is_answered_in_a_reply_with_the_mention_stripped(world, llm_server):
    llm_server.default = Reply(echo=True)

    question = await world.alice.send(world.channel, f"{world.bot_mention} what's up?")

    answer = world.channel.last_message
    assert answer.content == "echo: " + said("Alice", world.alice.id, "what's up?")
    assert answer.reference.message_id == question.id
    assert world.requests_to("POST", "/typing"), "the typing indicator was shown while waiting"


async def test_several_people_share_the_channel_conversation(world, llm_server):
    llm_server.default = Reply(echo=True)

    await world.alice.send(world.channel, f"{world.bot_mention} I like tea")
    await world.bob.send(world.channel, f"{world.bot_mention} I prefer coffee")

    sent = llm_server.requests[-1]["messages"]
    assert [m["content"] for m in sent[1:]] == [
        said("Alice", world.alice.id, "I like tea"),
        "echo: " + said("Alice", world.alice.id, "I like tea"),
        said("Bob", world.bob.id, "I prefer coffee"),
    ]


async def test_replying_to_an_answer_continues_the_conversation(world, llm_server):
    llm_server.default = Reply(echo=True)
    await world.alice.send(world.channel, f"{world.bot_mention} first")
    answer = world.channel.last_message

    await world.bob.send(world.channel, "and a follow-up", reply_to=answer)

    assert world.channel.last_message.content == "echo: " + said(
        "Bob", world.bob.id, "and a follow-up"
    )
    assert len(llm_server.requests[-1]["messages"]) == 4


async def test_ordinary_messages_and_mentions_of_others_are_ignored(world, llm_server):
    await world.alice.send(world.channel, "just chatting")
    await world.alice.send(world.channel, f"{world.bob.mention} hi bob")

    assert llm_server.requests == []
    assert world.bot_messages() == []


async def test_other_bots_and_webhooks_are_ignored(world, llm_server):
    other_bot = world.guild.add_member(world.env.create_user("otherbot", bot=True))
    hook = world.guild.create_webhook(world.channel)

    await other_bot.send(world.channel, f"{world.bot_mention} loop with me")
    await hook.send(f"{world.bot_mention} and me")

    assert llm_server.requests == []
    assert world.bot_messages() == []


async def test_an_empty_mention_gets_a_hint_not_a_model_call(world, llm_server):
    await world.alice.send(world.channel, f"{world.bot_mention}   ")

    assert llm_server.requests == []
    assert "Ask me something after the mention" in world.channel.last_message.content


async def test_dms_are_a_conversation_of_their_own(world, llm_server):
    llm_server.default = Reply(echo=True)
    await world.alice.send(world.channel, f"{world.bot_mention} in the channel")

    await world.alice.send_dm("hello privately")

    dm_answer = [m for m in world.env.bot.cached_messages if m.content.endswith('privately"}')]
    assert dm_answer and dm_answer[-1].content == "echo: " + said(
        "Alice", world.alice.id, "hello privately"
    )
    assert len(llm_server.requests[-1]["messages"]) == 2  # no channel history leaked into the DM


@pytest.mark.parametrize("access", [AccessPolicy(allow_dms=False)])
async def test_dms_can_be_turned_off(world, llm_server):
    await world.alice.send_dm("hello?")

    assert llm_server.requests == []
    replies = [m for m in world.env.bot.cached_messages if m.author == world.env.bot.user]
    assert "don't answer in DMs" in replies[-1].content


async def test_a_thread_is_its_own_conversation_and_inherits_the_prompt(world, llm_server):
    llm_server.default = Reply(echo=True)
    await world.mod.slash(world.channel, "system set", prompt="Answer in French.")
    await world.alice.send(world.channel, f"{world.bot_mention} channel question")
    thread = world.thread()

    await world.alice.send(thread, f"{world.bot_mention} thread question")

    sent = llm_server.requests[-1]["messages"]
    assert sent[0]["content"].startswith("Answer in French.")
    assert [m["content"] for m in sent[1:]] == [said("Alice", world.alice.id, "thread question")]
    assert thread.last_message.content == "echo: " + said(
        "Alice", world.alice.id, "thread question"
    )


async def test_a_busy_channel_queues_questions_visibly_and_answers_in_order(world, llm_server):
    llm_server.default = Reply(echo=True, latency=0.2)
    backend = world.env.backend

    first = backend.create_message(world.channel.id, world.alice.id, f"{world.bot_mention} one")
    second = backend.create_message(world.channel.id, world.bob.id, f"{world.bot_mention} two")
    await world.env.settle()

    reactions = world.requests_to("PUT", f"/messages/{second.id}/reactions/")
    assert reactions, "the waiting question was marked"
    assert world.requests_to("DELETE", f"/messages/{second.id}/reactions/"), "and unmarked"
    assert not world.requests_to("PUT", f"/messages/{first.id}/reactions/")
    answers = [m.content for m in world.bot_messages()]
    assert answers == [
        "echo: " + said("Alice", world.alice.id, "one"),
        "echo: " + said("Bob", world.bob.id, "two"),
    ]
    assert [m["content"] for m in llm_server.requests[1]["messages"][1:]] == [
        said("Alice", world.alice.id, "one"),
        "echo: " + said("Alice", world.alice.id, "one"),
        said("Bob", world.bob.id, "two"),
    ]


@pytest.mark.parametrize("config_overrides", [{"max_tokens": 4096}])  # room for a long answer
async def test_a_long_answer_arrives_whole_and_in_order_across_messages(world, llm_server):
    paragraphs = [f"Paragraph {n}:" + " lorem ipsum dolor sit amet" * 12 for n in range(20)]
    text = "\n\n".join(paragraphs)
    llm_server.then(Reply(text=text, chunk_size=400))

    await world.alice.send(world.channel, f"{world.bot_mention} tell me a lot")

    messages = [m.content for m in world.bot_messages()]
    assert len(messages) >= 3
    assert all(len(m) <= 2000 for m in messages)
    assert not any(m.endswith("⏳") for m in messages)
    assert "\n\n".join(messages) == text


async def test_a_code_block_split_across_messages_is_closed_and_reopened(world, llm_server):
    code = "\n".join(f"print('line {n}')  # a comment to make it long" for n in range(80))
    llm_server.then(Reply(text=f"Here you go:\n\n```python\n{code}\n```\n\nDone.", chunk_size=300))

    await world.alice.send(world.channel, f"{world.bot_mention} write code")

    messages = [m.content for m in world.bot_messages()]
    assert len(messages) >= 2
    for message in messages:
        assert message.count("```") % 2 == 0, message[-80:]
    assert messages[1].startswith("```python\n")
    assert messages[0].endswith("\n```")


async def test_nothing_the_model_writes_can_ping_anyone(world, llm_server):
    role = world.mods
    nasty = f"@everyone @here <@&{role.id}> <@{world.bob.id}> hello"
    llm_server.default = Reply(text=nasty)

    await world.alice.send(world.channel, f"{world.bot_mention} ping everyone")
    await world.alice.slash(world.channel, "ask", question="ping them")

    writes = [
        r
        for r in world.env.http_requests
        if r.method in ("POST", "PATCH") and "/messages" in r.path and r.json
    ]
    assert writes
    for request in writes:
        allowed = request.json["allowed_mentions"]
        assert allowed["parse"] == [], request.path
        assert not allowed.get("users") and not allowed.get("roles")
        assert not allowed.get("replied_user")
    # Discord still lists mentions written in the text, but none of them notified anyone.
    for message in world.bot_messages():
        assert not message.mention_everyone


async def test_the_conversation_survives_a_restart(world, llm_server, db_path, chat_model):
    llm_server.default = Reply(echo=True)
    await world.alice.send(world.channel, f"{world.bot_mention} remember 42")

    # A new process would open the same file; this one's first store still holds its lock, so
    # the new bot gets a faithful copy of the file.
    restarted = db_path.with_name("restarted.db")
    with closing(sqlite3.connect(db_path)) as live, closing(sqlite3.connect(restarted)) as copy:
        live.backup(copy)
    async with SQLiteStore.open(restarted) as fresh_store:
        await world.env.restart_bot(build_bot(fresh_store, chat_model, AccessPolicy()))
        await world.alice.send(world.channel, f"{world.bot_mention} what number?")

    sent = [m["content"] for m in llm_server.requests[-1]["messages"][1:]]
    assert sent == [
        said("Alice", world.alice.id, "remember 42"),
        "echo: " + said("Alice", world.alice.id, "remember 42"),
        said("Alice", world.alice.id, "what number?"),
    ]


async def test_other_mentions_reach_the_model_as_names(world, llm_server):
    llm_server.default = Reply(echo=True)

    await world.alice.send(
        world.channel, f"{world.bot_mention} what does {world.bob.mention} like?"
    )

    assert llm_server.requests[-1]["messages"][-1]["content"] == said(
        "Alice", world.alice.id, "what does @Bob like?"
    )


@pytest.mark.parametrize("config_overrides", [{"max_tokens": 4096}])  # room for a long answer
async def test_a_long_slash_answer_continues_in_follow_ups(world, llm_server):
    paragraphs = [f"Part {n}:" + " some words here" * 40 for n in range(8)]
    llm_server.then(Reply(text="\n\n".join(paragraphs), chunk_size=700))

    result = await world.alice.slash(world.channel, "ask", question="long please")

    shown = [result.response.content] + [f.content for f in result.followups]
    assert len(shown) >= 3 and all(len(m) <= 2000 for m in shown)
    assert shown[0].startswith(f"{world.alice.mention} asked:\n> long please\n\n")
    body = "\n\n".join(shown).split("\n\n", 1)[1]
    assert body == "\n\n".join(paragraphs)


async def test_a_queued_slash_question_says_it_is_waiting(world, llm_server):
    llm_server.default = Reply(echo=True, latency=0.2)
    world.env.backend.create_message(world.channel.id, world.bob.id, f"{world.bot_mention} first")
    await asyncio.wait_for(llm_server.wait_for_requests(1), timeout=5)  # "first" is answering

    result = await world.alice.slash(world.channel, "ask", question="second")

    notices = [
        r.json["content"]
        for r in world.env.http_requests
        if r.method == "PATCH" and r.path.endswith("/@original") and r.json
    ]
    assert "⏳ Waiting for 1 earlier question in this channel to be answered…" in notices[0]
    assert result.response.content.endswith("echo: " + said("Alice", world.alice.id, "second"))
    asked = [m["messages"][-1]["content"] for m in llm_server.requests]
    assert asked == [said("Bob", world.bob.id, "first"), said("Alice", world.alice.id, "second")]
