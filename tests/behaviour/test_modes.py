"""Chat channels and thread channels through simulated Discord: the real bot, with and without the
privileged Message Content intent (simcord blanks content without it, as Discord does)."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time
from dataclasses import replace

import discord
import pytest
from PIL import Image as PIL

from bot.access import AccessPolicy
from bot.attachments import Limits
from bot.chat import ChatService
from bot.client import ChatBot
from bot.messages import text
from tests.conftest import make_config
from tests.fake_openai import Reply
from tests.speakers import said


@pytest.fixture
def message_content() -> bool:
    return True


@pytest.fixture
def simcord_bot(store, chat_model, access, config_overrides, message_content) -> ChatBot:
    """The bot with the Message Content intent (as MESSAGE_CONTENT=auto asks for it when a
    channel is a chat or thread channel at start), unless a test says otherwise."""
    intents = discord.Intents.default()
    intents.message_content = message_content
    service = ChatService(store, chat_model, make_config(**config_overrides))
    # A copy of the policy: a parametrised one is shared by both engines' runs of a test.
    return ChatBot(service=service, store=store, access=replace(access), intents=intents)


async def make_chat_channel(world, mode: str = "chat", channel=None):
    result = await world.mod.slash(channel or world.channel, "settings mode", mode=mode)
    assert not result.ephemeral, result.response.content
    return result


def answers(world, channel=None) -> list[discord.Message]:
    """The bot's own messages, without Discord's system messages (a thread was created)."""
    return [m for m in world.bot_messages(channel) if not m.is_system()]


def user_messages(request) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "user"]


# -- chat channels ----------------------------------------------------------------------------


async def test_a_chat_channel_answers_every_member_message_without_a_mention(world, llm_server):
    llm_server.default = Reply(echo=True)
    result = await make_chat_channel(world)

    await world.alice.send(world.channel, "what is a monad?")
    await world.bob.send(world.channel, "and a functor?")

    assert result.response.content == (
        "I now answer every message here, except those starting with `//` and those from bots."
    )
    answers = world.bot_messages()
    assert len(answers) == 3  # the mode's announcement, then one answer per message
    asked = world.channel.history()[1]
    assert answers[1].reference is not None and answers[1].reference.message_id == asked.id
    assert user_messages(llm_server.requests[1]) == [
        said("Alice", world.alice.id, "what is a monad?"),
        said("Bob", world.bob.id, "and a functor?"),
    ]


async def test_a_mention_channel_still_answers_only_mentions(world, llm_server):
    await world.alice.send(world.channel, "just talking")
    await world.alice.send(world.channel, f"{world.bot_mention} a question")

    assert len(llm_server.requests) == 1


async def test_messages_starting_with_the_ignore_prefix_are_skipped(world, llm_server):
    await make_chat_channel(world)

    await world.alice.send(world.channel, "// between us: the bot is slow today")
    await world.alice.send(world.channel, "//")
    await world.alice.send(world.channel, "a real question")

    assert [user_messages(r)[-1] for r in llm_server.requests] == [
        said("Alice", world.alice.id, "a real question")
    ]


@pytest.mark.parametrize("config_overrides", [{"chat_ignore_prefix": "!aside"}])
async def test_the_ignore_prefix_is_a_setting(world, llm_server):
    result = await make_chat_channel(world)

    await world.alice.send(world.channel, "!aside not for the bot")
    await world.alice.send(world.channel, "// for the bot")

    assert "`!aside`" in result.response.content
    assert len(llm_server.requests) == 1


async def test_bots_and_webhooks_are_not_answered_in_a_chat_channel(world, llm_server):
    await make_chat_channel(world)
    other_bot = world.guild.add_member(world.env.create_user("otherbot", bot=True))
    webhook = world.guild.create_webhook(world.channel, "CI")

    await other_bot.send(world.channel, "beep boop, a question?")
    await webhook.send("build failed, any ideas?")
    await world.env.settle()

    assert llm_server.requests == []


async def test_a_thread_of_a_chat_channel_is_a_chat_channel_too(world, llm_server):
    await make_chat_channel(world)
    thread = world.thread()

    await world.alice.send(thread, "asked in the thread")

    assert len(llm_server.requests) == 1
    assert len(world.bot_messages(thread)) == 1


async def test_a_thread_may_go_back_to_mentions_in_a_chat_channel(world, llm_server):
    await make_chat_channel(world)
    thread = world.thread()
    await world.mod.slash(thread, "settings mode", mode="mention")

    await world.alice.send(thread, "just talking here")
    await world.alice.send(world.channel, "but asking here")

    assert len(llm_server.requests) == 1


@pytest.mark.parametrize("access", [AccessPolicy(cooldown=30.0)])
async def test_a_cooldown_in_a_chat_channel_is_a_reaction_never_a_post(world, llm_server):
    await make_chat_channel(world)

    for n in range(4):
        await world.alice.send(world.channel, f"burst {n}")

    assert len(llm_server.requests) == 1
    assert len(world.bot_messages()) == 2  # the announcement and one answer: no refusal posts
    reacted = [m for m in world.channel.history()[2:] if m.author.id == world.alice.id]
    assert len(reacted) == 3
    assert all(any(str(r.emoji) == "⏱️" for r in m.reactions) for m in reacted)


@pytest.mark.parametrize("config_overrides", [{"max_waiting_per_member": 1}])
async def test_a_full_queue_in_a_chat_channel_is_a_reaction_never_a_post(world, llm_server):
    await make_chat_channel(world)
    llm_server.default = Reply(text="an answer", latency=0.2)  # talk goes on while it answers
    for n in range(4):
        world.env.backend.create_message(world.channel.id, world.alice.id, f"message {n}")
    await world.env.settle()

    assert len(llm_server.requests) == 1
    assert [m.content for m in world.bot_messages()][1:] == ["an answer"]
    assert len(world.requests_to("PUT", "/reactions/%E2%9C%8B")) == 3  # ✋


async def test_system_messages_are_not_answered(world, llm_server):
    await make_chat_channel(world)

    world.thread("planning")  # Discord posts "Alice started a thread: planning" in the channel
    await world.env.settle()

    (notice,) = [m for m in world.channel.history() if m.is_system()]
    assert notice.content == "planning" and notice.author.id == world.alice.id
    assert llm_server.requests == []


# -- thread channels --------------------------------------------------------------------------


async def test_a_mention_opens_a_thread_named_from_the_question_and_answers_there(
    world, llm_server
):
    llm_server.default = Reply(echo=True)
    result = await make_chat_channel(world, "threads")

    await world.alice.send(world.channel, f"{world.bot_mention} **How** do `threads` work?")

    assert result.response.content.startswith("A mention here now opens a public thread")
    (thread,) = world.channel.threads
    assert thread.name == "How do threads work?"
    (answer,) = answers(world, thread)
    assert answer.content.startswith("echo: ")
    assert len(answers(world)) == 1  # only the announcement in the channel itself


async def test_the_opened_thread_continues_without_mentions(world, llm_server):
    llm_server.default = Reply(echo=True)
    await make_chat_channel(world, "threads")
    await world.alice.send(world.channel, f"{world.bot_mention} first question")
    (thread,) = world.channel.threads

    await world.bob.send(thread, "a follow-up, no mention")
    await world.alice.send(world.channel, "chatting in the channel is not a question")

    assert len(llm_server.requests) == 2
    assert user_messages(llm_server.requests[1]) == [
        said("Alice", world.alice.id, "first question"),
        said("Bob", world.bob.id, "a follow-up, no mention"),
    ]
    assert len(world.bot_messages(thread)) == 2


async def test_members_own_threads_in_a_thread_channel_answer_only_mentions(world, llm_server):
    # Threads mode makes the threads the bot opens chat threads; a thread members open there for
    # themselves is their conversation, where the bot speaks when spoken to.
    await make_chat_channel(world, "threads")
    own = world.thread("members' own")

    await world.bob.send(own, "talking among ourselves")
    assert llm_server.requests == [] and answers(world, own) == []

    await world.bob.send(own, f"{world.bot_mention} now a question")
    assert len(llm_server.requests) == 1
    assert len(answers(world, own)) == 1  # answered there: no thread opened from a thread

    info = await world.alice.slash(own, "info")
    members = text("en-US", "channel_setting.mode.members_thread")
    assert f"**Mode:** {members} (inherited from the parent channel)" in info.response.content
    default = await world.mod.slash(own, "settings mode", mode="default")
    assert members in default.response.content


async def test_a_long_question_names_its_thread_within_discords_limit(world, llm_server):
    await make_chat_channel(world, "threads")

    await world.alice.send(world.channel, f"{world.bot_mention} " + "why " * 60 + f"<@{1}>")

    (thread,) = world.channel.threads
    assert len(thread.name) == 100 and thread.name.endswith("…") and "<@" not in thread.name


async def test_an_opened_thread_inherits_the_parents_prompt_and_settings(world, llm_server):
    await world.mod.slash(world.channel, "system set", prompt="Answer like a pirate.")
    await world.mod.slash(world.channel, "settings temperature", value="1.1")
    await make_chat_channel(world, "threads")

    await world.alice.send(world.channel, f"{world.bot_mention} ahoy?")
    (thread,) = world.channel.threads
    await world.alice.send(thread, "and then?")

    for request in llm_server.requests:
        assert request["messages"][0]["content"].startswith("Answer like a pirate.")
        assert request["temperature"] == 1.1


async def test_without_permission_to_open_threads_the_answer_comes_in_the_channel(
    world, llm_server
):
    channel = world.guild.create_text_channel(
        "no-threads",
        overwrites={world.guild.me: discord.PermissionOverwrite(create_public_threads=False)},
    )
    await make_chat_channel(world, "threads", channel=channel)

    await world.alice.send(channel, f"{world.bot_mention} still answered?")

    assert channel.threads == []
    (_, answer) = world.bot_messages(channel)
    first_line, _, rest = answer.content.partition("\n")
    assert first_line == "-# " + text("en-US", "channel_setting.thread.no_permission")
    assert rest.strip()
    assert len(llm_server.requests) == 1


@pytest.mark.parametrize("config_overrides", [{"max_waiting_per_member": 1}])
async def test_questions_opening_threads_count_against_the_channels_queue_caps(world, llm_server):
    await make_chat_channel(world, "threads")
    llm_server.default = Reply(text="an answer", latency=0.2)
    for n in range(3):
        world.env.backend.create_message(
            world.channel.id, world.alice.id, f"{world.bot_mention} thread {n}"
        )
    await world.env.settle()

    assert len(world.channel.threads) == 1 and len(llm_server.requests) == 1
    assert len(world.requests_to("PUT", "/reactions/%E2%9C%8B")) == 1  # ✋, then quiet
    refusal = text("en-US", "error.queue_full_member", limit=1)
    assert [m.content for m in answers(world)].count(refusal) == 1


async def test_a_thread_cannot_be_made_to_open_threads(world):
    thread = world.thread()

    result = await world.mod.slash(thread, "settings mode", mode="threads")

    assert result.ephemeral
    assert result.response.content == text("en-US", "channel_setting.unavailable.thread")


async def test_a_channel_that_cannot_have_threads_is_not_made_to_open_them(world, llm_server):
    voice = world.guild.create_voice_channel("lounge")  # its text chat takes slash commands

    result = await world.mod.slash(voice, "settings mode", mode="threads")

    assert result.ephemeral
    assert result.response.content == text("en-US", "channel_setting.unavailable.channel")
    chat = await world.mod.slash(voice, "settings mode", mode="chat")  # chat is fine there
    assert not chat.ephemeral


async def test_a_voice_channel_set_to_threads_before_that_was_refused_answers_where_asked(
    world, llm_server
):
    voice = world.guild.create_voice_channel("lounge")
    service = world.env.bot.service
    await service.set_channel_setting(voice.id, "mode", "threads", guild_id=world.guild.id)

    await world.alice.send(voice, f"{world.bot_mention} a question")

    (answer,) = answers(world, voice)
    assert answer.content == "Hello from the stand-in."  # no line about thread permissions


async def test_info_shows_the_mode(world):
    await make_chat_channel(world, "threads")

    info = await world.alice.slash(world.channel, "info")

    assert (
        "**Mode:** opens a thread for each mention (set in this channel)" in info.response.content
    )


# -- the Message Content intent ---------------------------------------------------------------


@pytest.mark.parametrize("message_content", [False])
async def test_a_chat_channel_with_the_intent_off_says_so_and_never_answers_empty_messages(
    world, llm_server
):
    result = await make_chat_channel(world)

    await world.alice.send(world.channel, "hello? (Discord delivers this empty)")
    await world.bob.send(world.channel, "anyone?")
    await world.alice.send(world.channel, f"{world.bot_mention} and with a mention?")

    assert result.response.content.endswith(text("en-US", "channel_setting.intent.missing"))
    assert len(llm_server.requests) == 1  # only the mention, whose content Discord delivers
    assert user_messages(llm_server.requests[0])[-1] == said(
        "Alice", world.alice.id, "and with a mention?"
    )
    notices = [
        m
        for m in world.bot_messages()
        if m.content == text("en-US", "channel_setting.intent.cannot_read")
    ]
    assert len(notices) == 1  # once, not once per message


@pytest.mark.parametrize("message_content", [False])
async def test_the_unreadable_notice_comes_again_after_an_hour(world, llm_server):
    await make_chat_channel(world)
    cannot_read = text("en-US", "channel_setting.intent.cannot_read")

    await world.alice.send(world.channel, "one")
    await world.env.advance_time(1800)
    await world.alice.send(world.channel, "two")
    await world.env.advance_time(1801)
    await world.alice.send(world.channel, "three")

    assert [m.content for m in world.bot_messages()].count(cannot_read) == 2


@pytest.mark.parametrize("message_content", [False])
async def test_thread_mode_with_the_intent_off_still_opens_threads_from_mentions(world, llm_server):
    result = await make_chat_channel(world, "threads")

    await world.alice.send(world.channel, f"{world.bot_mention} open one")

    assert text("en-US", "channel_setting.intent.missing") in result.response.content
    assert len(world.channel.threads) == 1 and len(llm_server.requests) == 1


@pytest.mark.parametrize("config_overrides", [{"message_content": "off"}])
async def test_chat_and_thread_modes_are_refused_when_the_intent_is_switched_off(world, llm_server):
    chat = await world.mod.slash(world.channel, "settings mode", mode="chat")
    threads = await world.mod.slash(world.channel, "settings mode", mode="threads")
    await world.alice.send(world.channel, "not answered")

    refused = text("en-US", "channel_setting.unavailable.off")
    assert chat.ephemeral and chat.response.content == refused
    assert threads.response.content == refused
    assert llm_server.requests == []
    voice = world.guild.create_voice_channel("lounge")  # not told to choose chat, which is off too
    in_voice = await world.mod.slash(voice, "settings mode", mode="threads")
    assert in_voice.response.content == refused


async def test_modes_are_not_for_dms(world):
    result = await world.alice.user.slash("settings mode", mode="chat")

    assert result.response.content == text("en-US", "channel_setting.unavailable.dm")


# -- files in chat and thread channels ----------------------------------------------------------

VISION = {"model": "gpt-4o", "models": ("gpt-4o",)}


def png() -> bytes:
    out = io.BytesIO()
    PIL.new("RGB", (16, 16), "red").save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("config_overrides", [VISION])
async def test_an_image_alone_in_a_chat_channel_is_a_question(world, llm_server):
    await make_chat_channel(world)

    await world.alice.send(world.channel, "", attachments=[("cat.png", png())])

    (part,) = llm_server.images[-1]
    assert part["type"] == "image_url"
    assert answers(world)[-1].content == "Hello from the stand-in."


@pytest.mark.parametrize("config_overrides", [VISION])
@pytest.mark.parametrize("message_content", [False])
async def test_without_the_intent_an_image_in_a_chat_channel_arrives_empty_and_is_explained(
    world, llm_server
):
    await make_chat_channel(world)

    await world.alice.send(world.channel, "", attachments=[("cat.png", png())])

    assert llm_server.requests == []
    assert answers(world)[-1].content == text("en-US", "channel_setting.intent.cannot_read")


@pytest.mark.parametrize("config_overrides", [VISION])
async def test_an_image_mention_in_a_thread_channel_opens_a_thread_with_the_image(
    world, llm_server, service_history
):
    await make_chat_channel(world, "threads")

    await world.alice.send(world.channel, world.bot_mention, attachments=[("cat.png", png())])

    (thread,) = world.channel.threads
    assert thread.name == text("en-US", "channel_setting.thread.fallback_name", name="Alice")
    assert len(llm_server.images[-1]) == 1
    (stored,) = await service_history(thread.id)
    assert [a.name for a in stored.question.images] == ["cat.png"]


@pytest.mark.parametrize("config_overrides", [{**VISION, "attachments": Limits(file_bytes=1024)}])
async def test_a_file_left_out_of_a_thread_question_is_named_above_the_answer_there(
    world, llm_server
):
    await make_chat_channel(world, "threads")

    await world.alice.send(
        world.channel, f"{world.bot_mention} see this", attachments=[("big.txt", b"x" * 2000)]
    )

    (thread,) = world.channel.threads
    (answer,) = answers(world, thread)
    assert answer.content.splitlines() == [
        "-# `big.txt` was left out: a file can be at most 1 KiB.",
        "Hello from the stand-in.",
    ]


async def test_deleting_the_message_that_opened_a_thread_forgets_the_threads_turn(
    world, llm_server, service_history
):
    await make_chat_channel(world, "threads")
    opener = await world.alice.send(world.channel, f"{world.bot_mention} forget me")
    (thread,) = world.channel.threads
    await world.bob.send(thread, "keep this one")
    assert len(await service_history(thread.id)) == 2

    await world.alice.delete(opener)

    (kept,) = await service_history(thread.id)
    assert kept.question.text == "keep this one"


async def test_deleting_a_message_in_a_thread_the_bot_did_not_open_forgets_only_that_message(
    world, llm_server, service_history
):
    thread = world.thread("members' own")  # its id is not a message's the bot answered
    await world.alice.send(thread, f"{world.bot_mention} in a thread")
    question = await world.alice.send(world.channel, f"{world.bot_mention} in the channel")

    await world.alice.delete(question)

    assert await service_history(world.channel.id) == []
    assert len(await service_history(thread.id)) == 1


@pytest.mark.parametrize("config_overrides", [VISION])
async def test_a_chat_channels_questions_are_answered_in_the_order_they_were_sent(
    world, llm_server, monkeypatch
):
    # A screenshot, then "what is wrong here?" a moment later: the image's download must not let
    # the second message overtake the first (answered without the image, the image after it).
    chat_cog = loaded_module(world, "ChatCog")
    downloads = chat_cog.gather

    async def slow(attachments, limits):
        if attachments:  # the CDN takes its time (real time: the other message goes on)
            await asyncio.to_thread(time.sleep, 0.1)
        return await downloads(attachments, limits)

    monkeypatch.setattr(chat_cog, "gather", slow)
    await make_chat_channel(world)
    llm_server.default = Reply(echo=True)
    files = world.env.backend.store_attachments(world.channel.id, [("shot.png", png())])
    world.env.backend.create_message(
        world.channel.id, world.alice.id, "my screenshot", attachments=files
    )
    world.env.backend.create_message(world.channel.id, world.bob.id, "what is wrong here?")
    await world.env.settle()

    first, second = llm_server.requests
    assert [json.loads(framed(m))["message"] for m in user_messages(second)] == [
        "my screenshot",  # in the window: the screenshot's round was answered first
        "what is wrong here?",
    ]
    assert json.loads(framed(user_messages(first)[-1]))["message"] == "my screenshot"


def loaded_module(world, cog: str):
    """The module of the cog as the bot loaded it (an extension's module is imported afresh
    when an earlier test's bot unloaded it)."""
    return sys.modules[type(world.env.bot.get_cog(cog)).__module__]


def framed(content) -> str:
    """A user message's framed text (the text part when it carries images)."""
    return content if isinstance(content, str) else content[0]["text"]


@pytest.mark.parametrize("config_overrides", [{**VISION, "max_waiting_per_member": 1}])
async def test_a_file_is_not_downloaded_for_a_question_the_queue_will_not_take(
    world, llm_server, monkeypatch
):
    chat_cog = loaded_module(world, "ChatCog")
    downloads = chat_cog.gather
    downloaded: list[str] = []

    async def slow(attachments, limits):
        downloaded.extend(a.filename for a in attachments)
        if attachments:  # the CDN takes its time (real time: the other message goes on)
            await asyncio.to_thread(time.sleep, 0.1)
        return await downloads(attachments, limits)

    monkeypatch.setattr(chat_cog, "gather", slow)
    await make_chat_channel(world)
    for name in ("one.png", "two.png"):
        files = world.env.backend.store_attachments(world.channel.id, [(name, png())])
        world.env.backend.create_message(world.channel.id, world.alice.id, name, attachments=files)
    await world.env.settle()

    assert downloaded == ["one.png"]  # the second waited its turn, then met the member's cap
    assert len(llm_server.requests) == 1
    assert len(world.requests_to("PUT", "/reactions/%E2%9C%8B")) == 1  # ✋, quietly


@pytest.mark.parametrize("config_overrides", [VISION])
async def test_a_question_deleted_while_its_files_download_is_never_answered(
    world, llm_server, monkeypatch
):
    chat_cog = loaded_module(world, "ChatCog")
    downloads = chat_cog.gather

    async def deleted_meanwhile(attachments, limits):
        (message,) = list(world.channel.history())[-1:]
        world.env.backend.delete_message(world.channel.id, message.id)  # the member deletes it
        await asyncio.to_thread(time.sleep, 0.05)  # while the CDN still sends the file
        return await downloads(attachments, limits)

    monkeypatch.setattr(chat_cog, "gather", deleted_meanwhile)
    await make_chat_channel(world)
    files = world.env.backend.store_attachments(world.channel.id, [("shot.png", png())])
    world.env.backend.create_message(world.channel.id, world.alice.id, "oops", attachments=files)
    await world.env.settle()

    assert llm_server.requests == []
    assert await world.env.bot.service.history(world.channel.id, 10) == []
