"""Members read chatlab in their language: zh-CN and zh-TW end to end, through the real bot.

Commands answer in the member's client language (the interaction's locale); mentions in the
server's preferred language; the synced command tree carries every command's translations.
"""

from __future__ import annotations

import pytest
import simcord.interactions

from bot import messages
from bot.client import command_tree_fingerprint
from bot.messages import text
from tests.fake_openai import Reply


@pytest.fixture
def speaks(monkeypatch):
    """`speaks(member, "zh-CN")`: that member's Discord client is in that language."""
    chosen: dict[str, str] = {}
    real = simcord.interactions.base_payload

    def base_payload(*args, **kwargs):
        record, payload = real(*args, **kwargs)
        user = (payload.get("member") or {}).get("user") or payload.get("user") or {}
        payload["locale"] = chosen.get(str(user.get("id")), payload["locale"])
        return record, payload

    monkeypatch.setattr(simcord.interactions, "base_payload", base_payload)

    def set_locale(member, locale: str) -> None:
        chosen[str(member.id)] = locale

    return set_locale


@pytest.mark.parametrize("locale", ["zh-CN", "zh-TW"])
async def test_a_chinese_member_reads_every_command_in_their_language(
    world, llm_server, speaks, locale
):
    speaks(world.alice, locale)
    speaks(world.mod, locale)
    llm_server.then(Reply(text="答案"))

    empty = await world.alice.slash(world.channel, "ask", question="   ")
    nothing = await world.alice.slash(world.channel, "stop")
    history = await world.alice.slash(world.channel, "history")
    asked = await world.alice.slash(world.channel, "ask", question="你好")
    usage = await world.alice.slash(world.channel, "usage")
    info = await world.alice.slash(world.channel, "info")
    refused = await world.alice.slash(world.channel, "ask", question="   ")
    shown = await world.mod.slash(world.channel, "system show")
    reset = await world.mod.slash(world.channel, "reset")

    assert empty.response.content == text(locale, "ask.empty") != text("en-US", "ask.empty")
    assert nothing.response.content == text(locale, "stop.nothing")
    assert history.response.content == text(locale, "history.empty")
    assert asked.response.content.startswith(
        text(locale, "ask.asked", who=world.alice.mention) + "\n> 你好"
    )
    assert usage.response.content == text(
        locale, "usage.summary", count=1, prompt_tokens=11, completion_tokens=1, total_tokens=12
    )
    assert text(locale, "info.history", rounds=5) in info.response.content
    assert refused.response.content == text(locale, "ask.empty")
    source = text(locale, "system.source.default")
    assert shown.response.content.startswith(text(locale, "system.heading", source=source))
    expected_reset = text(
        locale,
        "reset.done",
        who=world.mod.mention,
        actions=text(locale, "reset.forgot", count=1),
    )
    assert reset.response.content == expected_reset


async def test_simplified_and_traditional_differ_where_usage_differs(world, speaks):
    speaks(world.alice, "zh-CN")
    speaks(world.bob, "zh-TW")

    simplified = await world.alice.slash(world.channel, "info")
    traditional = await world.bob.slash(world.channel, "info")

    assert simplified.response.content != traditional.response.content
    assert "频道" in text("zh-CN", "system.source.channel")
    assert "頻道" in text("zh-TW", "system.source.channel")


async def test_a_refusal_and_a_permission_error_speak_the_members_language(world, speaks):
    speaks(world.alice, "zh-TW")
    commands = await world.env.bot.tree.fetch_commands()
    reset = next(c for c in commands if c.name == "reset")
    world.guild.set_command_permissions(reset, {world.guild.default_role: True})

    result = await world.alice.slash(world.channel, "reset")

    assert result.response.content == text("zh-TW", "command_error.missing_permission")


async def test_mentions_are_answered_in_the_servers_preferred_language(world, llm_server):
    guild = world.env.create_guild(preferred_locale="zh-TW")
    channel = guild.create_text_channel("聊天")
    member = guild.add_member(world.env.create_user("mei", global_name="Mei"))
    mention = f"<@{world.env.bot.user.id}>"
    llm_server.then(Reply(status=500, error_type="server_error", error_message="boom"))

    await member.send(channel, mention)
    await member.send(channel, f"{mention} 你好")

    hint, failed = (m.content for m in world.bot_messages(channel))
    assert hint == text("zh-TW", "ask.hint", name=world.env.bot.user.display_name)
    assert failed == "⚠️ " + text("zh-TW", "error.model_server")


async def test_the_synced_commands_carry_chinese_names_and_descriptions(world):
    (sync,) = world.requests_to("PUT", "/commands")
    by_name = {command["name"]: command for command in sync.json}

    for name in ("ask", "stop", "reset", "system", "history"):
        command = by_name[name]
        for locale in ("zh-CN", "zh-TW"):
            assert command["name_localizations"][locale] == text(locale, f"command.{name}.name")
            assert command["description_localizations"][locale] == text(
                locale, f"command.{name}.description"
            )
    question = by_name["ask"]["options"][0]
    assert question["name_localizations"]["zh-TW"] == text(
        "zh-TW", "command.ask.option.question.name"
    )


async def test_a_changed_translation_changes_the_tree_fingerprint(world, monkeypatch):
    tree = world.env.bot.tree
    before = await command_tree_fingerprint(tree)
    real = messages.translated

    def retranslated(locale: str, key: str):
        found = real(locale, key)
        return f"{found}!" if key == "command.ask.description" and locale == "zh-TW" else found

    monkeypatch.setattr(messages, "translated", retranslated)

    assert await command_tree_fingerprint(tree) != before


async def test_the_default_model_choice_is_offered_and_understood_in_chinese(world, speaks):
    speaks(world.mod, "zh-CN")
    await world.mod.slash(world.channel, "model", name="gpt-4.1")

    choices = await world.mod.autocomplete(world.channel, "model", "name", "")
    typed = await world.mod.slash(world.channel, "model", name="默认")

    assert {"name": "默认", "value": "default"} in [
        {"name": c["name"], "value": c["value"]} for c in choices
    ]
    assert typed.response.content == text("zh-CN", "model.set", model="gpt-4o-mini")
