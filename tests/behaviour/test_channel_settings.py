"""/settings through simulated Discord: each setting set, validated, inherited by threads, shown
by /info with where it comes from, reset; and only moderators may change them."""

from __future__ import annotations

import pytest
from simcord.backend.errors import SetupError

from bot.messages import text
from tests.behaviour import test_languages
from tests.fake_openai import Reply

speaks = test_languages.speaks  # the fixture: a member's Discord client language


async def test_a_moderator_sets_the_channels_values_and_the_next_answer_uses_them(
    world, llm_server
):
    temperature = await world.mod.slash(world.channel, "settings temperature", value="1.3")
    length = await world.mod.slash(world.channel, "settings reply-length", tokens="512")
    rounds = await world.mod.slash(world.channel, "settings history-rounds", rounds="0")
    await world.alice.send(world.channel, f"{world.bot_mention} first")
    await world.alice.send(world.channel, f"{world.bot_mention} second")

    assert temperature.response.content == "This channel's temperature is now 1.3."
    assert length.response.content == "This channel's reply length is now 512 tokens."
    assert rounds.response.content == "This channel's history length is now 0 rounds."
    sent = llm_server.requests[-1]
    assert (sent["temperature"], sent["max_tokens"]) == (1.3, 512)
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]  # no history


@pytest.mark.parametrize(
    ("command", "option", "typed", "expected"),
    [
        (
            "settings temperature",
            "value",
            "3",
            "The temperature must be a number from 0 to 2; “3” isn't one.",
        ),
        (
            "settings reply-length",
            "tokens",
            "lots",
            "The reply length must be a whole number of tokens from 16 to 7,936; “lots” isn't one.",
        ),
        (
            "settings history-rounds",
            "rounds",
            "1001",
            "History rounds must be a whole number from 0 to 1,000; “1001” isn't one.",
        ),
    ],
)
async def test_a_value_out_of_bounds_is_explained_privately_and_changes_nothing(
    world, llm_server, command, option, typed, expected
):
    result = await world.mod.slash(world.channel, command, **{option: typed})
    await world.alice.send(world.channel, f"{world.bot_mention} hi")

    assert result.ephemeral and result.response.content == expected
    assert (llm_server.requests[0]["temperature"], llm_server.requests[0]["max_tokens"]) == (
        0.0,
        256,
    )


async def test_info_shows_each_value_and_where_it_comes_from(world):
    await world.mod.slash(world.channel, "settings temperature", value="0.4")
    await world.mod.slash(world.channel, "settings mode", mode="chat")
    thread = world.thread()
    await world.mod.slash(thread, "settings reply-length", tokens="300")

    info = await world.alice.slash(thread, "info")

    content = info.response.content
    assert info.ephemeral
    assert "- temperature: 0.4 (inherited from the parent channel)" in content
    assert "- reply length: 300 tokens (set in this channel)" in content
    assert "- history length: 5 rounds (the bot's default)" in content
    assert "- model: `gpt-4o-mini` (the bot's default)" in content
    assert "**Mode:** a thread that answers every message (inherited from the parent channel)" in (
        content
    )
    assert "replies up to 300" in content


async def test_a_thread_answers_with_its_parents_settings(world, llm_server):
    await world.mod.slash(world.channel, "settings temperature", value="1.7")
    await world.mod.slash(world.channel, "settings reply-length", tokens="99")
    thread = world.thread()

    await world.alice.send(thread, f"{world.bot_mention} in the thread")

    assert (llm_server.requests[0]["temperature"], llm_server.requests[0]["max_tokens"]) == (
        1.7,
        99,
    )


async def test_default_unsets_a_value_so_the_parents_is_in_force_again(world):
    await world.mod.slash(world.channel, "settings temperature", value="0.9")
    thread = world.thread()
    await world.mod.slash(thread, "settings temperature", value="0.1")

    result = await world.mod.slash(thread, "settings temperature", value="default")

    assert result.response.content == (
        "This channel's temperature is back to 0.9 (inherited from the parent channel)."
    )


async def test_reset_puts_every_setting_back_and_keeps_the_prompt_and_history(world, llm_server):
    llm_server.default = Reply(echo=True)
    await world.mod.slash(world.channel, "system set", prompt="Be brief.")
    await world.alice.send(world.channel, f"{world.bot_mention} remember this")
    await world.mod.slash(world.channel, "model", name="gpt-4.1")
    await world.mod.slash(world.channel, "settings temperature", value="2")
    await world.mod.slash(world.channel, "settings reply-length", tokens="64")
    await world.mod.slash(world.channel, "settings history-rounds", rounds="0")

    result = await world.mod.slash(world.channel, "settings reset")
    await world.alice.send(world.channel, f"{world.bot_mention} and now?")

    assert result.response.content.startswith(f"{world.mod.mention} reset this channel's settings")
    sent = llm_server.requests[-1]
    assert (sent["model"], sent["temperature"], sent["max_tokens"]) == ("gpt-4o-mini", 0.0, 256)
    assert sent["messages"][0]["content"].startswith("Be brief.")
    assert len(sent["messages"]) == 4  # the earlier round is still sent


@pytest.mark.parametrize("config_overrides", [{"model": "o4-mini", "models": ("o4-mini",)}])
async def test_a_temperature_set_for_a_reasoning_model_says_it_is_not_used(world, llm_server):
    result = await world.mod.slash(world.channel, "settings temperature", value="0.5")
    info = await world.alice.slash(world.channel, "info")
    await world.alice.send(world.channel, f"{world.bot_mention} think")

    assert "`o4-mini` is a reasoning model, which takes no temperature" in result.response.content
    assert "- temperature: 0.5, not sent to reasoning models (set in this channel)" in (
        info.response.content
    )
    assert "temperature" not in llm_server.requests[0]


async def test_the_values_are_suggested_with_default_first(world):
    suggested = await world.mod.autocomplete(world.channel, "settings reply-length", "tokens", "10")
    anything = await world.mod.autocomplete(world.channel, "settings temperature", "value", "")

    assert [c["value"] for c in suggested] == ["10", "1024"]
    assert [c["value"] for c in anything][:3] == ["default", "0", "0.2"]


async def test_settings_speak_the_members_language(world, speaks):
    speaks(world.mod, "zh-TW")

    result = await world.mod.slash(world.channel, "settings reply-length", tokens="2048")
    refused = await world.mod.slash(world.channel, "settings temperature", value="9")

    assert result.response.content == "這個頻道的回答長度現在是 2,048 個 token。"
    assert refused.response.content == "溫度必須是 0 到 2 之間的數字；「9」不是。"


async def test_members_cannot_see_or_use_the_settings(world, llm_server):
    assert not any(c.startswith("settings") for c in world.alice.available_commands(world.channel))
    with pytest.raises(SetupError, match="not visible"):
        await world.alice.slash(world.channel, "settings reset")
    # An admin shows /settings to everyone in Server Settings → Integrations: still refused.
    commands = await world.env.bot.tree.fetch_commands()
    settings = next(c for c in commands if c.name == "settings")
    world.guild.set_command_permissions(settings, {world.guild.default_role: True})

    result = await world.alice.slash(world.channel, "settings temperature", value="2")
    await world.alice.send(world.channel, f"{world.bot_mention} hi")

    assert result.ephemeral
    assert result.response.content == text("en-US", "command_error.missing_permission")
    assert llm_server.requests[0]["temperature"] == 0.0
