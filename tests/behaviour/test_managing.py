"""Managing a channel's conversation, and who may do it."""

from __future__ import annotations

import asyncio

import pytest
from simcord.backend.errors import SetupError

from tests.fake_openai import Reply
from tests.speakers import said


async def test_moderators_set_show_and_clear_the_system_prompt(world, llm_server):
    llm_server.default = Reply(echo=True)

    set_result = await world.mod.slash(world.channel, "system set", prompt="Be terse.")
    await world.alice.send(world.channel, f"{world.bot_mention} hi")
    shown = await world.mod.slash(world.channel, "system show")
    await world.mod.slash(world.channel, "system clear")
    await world.alice.send(world.channel, f"{world.bot_mention} hi again")

    assert "set this channel's system prompt" in set_result.response.content
    assert llm_server.requests[0]["messages"][0]["content"].startswith("Be terse.")
    assert shown.ephemeral
    assert "Be terse." in shown.response.content and "Moderator set to" in shown.response.content
    assert llm_server.requests[1]["messages"][0]["content"].startswith("You are a test assistant.")


async def test_members_do_not_see_moderator_commands(world):
    visible = set(world.alice.available_commands(world.channel))

    assert visible == {"ask", "export", "history", "info", "stop", "usage"}
    for name in ("reset", "model", "system set", "system show", "system clear"):
        with pytest.raises(SetupError, match="not visible"):
            await world.alice.slash(world.channel, name)


async def test_the_runtime_check_refuses_members_even_if_a_command_reaches_them(world, llm_server):
    # An admin grants /reset to everyone in Server Settings → Integrations: Discord shows it,
    # but chatlab still requires Manage Messages.
    commands = await world.env.bot.tree.fetch_commands()
    reset = next(c for c in commands if c.name == "reset")
    world.guild.set_command_permissions(reset, {world.guild.default_role: True})
    await world.alice.send(world.channel, f"{world.bot_mention} hello")

    result = await world.alice.slash(world.channel, "reset")

    assert result.ephemeral
    assert result.response.content == "Only moderators (Manage Messages) can do that here."
    assert len(llm_server.requests) == 1
    history = await world.env.bot.service.history(world.channel.id, 10)
    assert len(history) == 1


async def test_reset_says_how_much_it_forgot_and_keeps_the_prompt(world, llm_server):
    await world.mod.slash(world.channel, "system set", prompt="Be kind.")
    for n in range(3):
        await world.alice.send(world.channel, f"{world.bot_mention} q{n}")

    result = await world.mod.slash(world.channel, "reset")
    await world.alice.send(world.channel, f"{world.bot_mention} fresh start")

    assert "forgot 3 rounds" in result.response.content
    sent = llm_server.requests[-1]["messages"]
    assert sent[0]["content"].startswith("Be kind.") and len(sent) == 2


async def test_reset_is_acknowledged_before_the_service_does_anything(
    world, simcord_bot, monkeypatch
):
    reset = simcord_bot.service.reset

    async def slow_reset(channel_id):
        await asyncio.sleep(30)  # virtual: parks until time is advanced
        return await reset(channel_id)

    monkeypatch.setattr(simcord_bot.service, "reset", slow_reset)

    result = await world.mod.slash(world.channel, "reset")
    acknowledged_at_once = result.acknowledged
    await world.env.advance_time(30)

    assert acknowledged_at_once
    assert "reset the conversation: forgot 0 rounds." in result.response.content


async def test_reset_in_a_busy_channel_answers_at_once_and_drops_the_waiting_questions(
    world, llm_server, service_history
):
    await world.alice.send(world.channel, f"{world.bot_mention} an old question")
    llm_server.gate.clear()  # the next answer is in progress until the gate opens
    backend = world.env.backend
    backend.create_message(world.channel.id, world.alice.id, f"{world.bot_mention} long one")
    await asyncio.wait_for(llm_server.wait_for_requests(2), timeout=5)
    for n in range(2):
        backend.create_message(world.channel.id, world.bob.id, f"{world.bot_mention} wait {n}")
    for _ in range(1000):  # until both wait in the queue (a few turns of the loop on SQLite;
        if world.env.bot.service.waiting(world.channel.id) == 3:  # a few ms on PostgreSQL)
            break
        await asyncio.sleep(0.002)

    result = await world.mod.slash(world.channel, "reset")
    llm_server.gate.set()
    await world.env.settle()

    assert result.response.content == (
        f"{world.mod.mention} reset the conversation: forgot 1 round, dropped 2 waiting "
        "questions, stopped the answer in progress. The system prompt stays."
    )
    assert len(llm_server.requests) == 2  # the waiting questions never reached the model
    assert await service_history(world.channel.id) == []


async def test_history_is_private_and_shows_who_said_what(world, llm_server):
    llm_server.default = Reply(echo=True)
    await world.alice.send(world.channel, f"{world.bot_mention} about cats")
    await world.bob.send(world.channel, f"{world.bot_mention} about dogs")

    result = await world.bob.slash(world.channel, "history")

    assert result.ephemeral
    content = result.response.content
    assert content.index("**Alice:** about cats") < content.index("**Bob:** about dogs")
    assert "echo: " + said("Bob", world.bob.id, "about dogs") in content


async def test_usage_reports_the_tokens_the_server_counted(world, llm_server):
    llm_server.default = Reply(text="12345678", prompt_tokens=100)  # 2 completion tokens
    await world.alice.send(world.channel, f"{world.bot_mention} one")
    await world.alice.send(world.channel, f"{world.bot_mention} two")

    result = await world.alice.slash(world.channel, "usage")

    assert result.ephemeral
    assert "2 answers, 200 prompt + 4 completion = **204 tokens**" in result.response.content


async def test_export_sends_the_conversation_as_a_file(world, llm_server):
    llm_server.default = Reply(echo=True)
    await world.alice.send(world.channel, f"{world.bot_mention} export me")

    result = await world.alice.slash(world.channel, "export")

    # After a "thinking" defer, the first follow-up becomes the response itself.
    assert result.ephemeral and result.followups == []
    (attachment,) = result.response.attachments
    assert attachment.filename == f"chatlab-{world.channel.id}.md"
    data = (await attachment.read()).decode()
    assert (
        "export me" in data
        and "echo: " + said("Alice", world.alice.id, "export me") in data
        and "Alice (" in data
    )


async def test_moderators_choose_the_channel_model_from_the_configured_list(world, llm_server):
    result = await world.mod.slash(world.channel, "model", name="gpt-4.1")
    await world.alice.send(world.channel, f"{world.bot_mention} which model?")
    refused = await world.mod.slash(world.channel, "model", name="gpt-99")
    info = await world.alice.slash(world.channel, "info")

    assert result.response.content == "This channel now uses `gpt-4.1`."
    assert llm_server.requests[-1]["model"] == "gpt-4.1"
    assert refused.ephemeral and "Unknown model" in refused.response.content
    assert "`gpt-4.1`" in info.response.content


async def test_model_names_are_offered_by_autocomplete(world):
    choices = await world.mod.autocomplete(world.channel, "model", "name", "4.1")

    assert [c["value"] for c in choices] == ["gpt-4.1"]
