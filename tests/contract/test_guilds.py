"""Guild ids: every write takes the guild (None in DMs), and nothing else changes with it.

Where each engine keeps them is checked in its own tests (tests/test_store_trips.py for SQLite):
the interface reads no guild id back.
"""

from __future__ import annotations

from dataclasses import replace

from bot.conversation import Message
from bot.storage import TurnRecord

GUILD = 2**63 - 1  # Discord snowflakes use all 63 bits


def turn(channel: int, n: int, guild_id: int | None) -> TurnRecord:
    return TurnRecord(
        channel_id=channel,
        model="gpt-4o-mini",
        question=Message("user", f"question {n}", 7, author_id=1, author_name="ann"),
        answer=Message("assistant", f"answer {n}", 3),
        prompt_tokens=10,
        completion_tokens=5,
        question_message_id=1000 + n,
        guild_id=guild_id,
    )


async def test_turns_in_a_guild_and_in_a_dm_are_stored_alike(store):
    await store.add_turn(turn(1, 1, GUILD))
    await store.add_turn(turn(1, 2, None))

    history = await store.history(1, 5)

    assert [r.question.content for r in history] == ["question 1", "question 2"]
    assert (await store.usage(1)).answers == 2
    assert await store.forget_question(1, 1001)


async def test_every_setter_takes_the_guild_and_settings_read_as_without_it(store):
    await store.set_system_prompt(1, "be brief", by_id=9, by_name="mod", guild_id=GUILD)
    await store.set_channel_model(1, "gpt-4o", guild_id=GUILD)
    await store.set_channel_effort(1, "low", guild_id=GUILD)
    await store.set_channel_option(1, "mode", "chat", guild_id=GUILD)
    await store.set_system_prompt(2, "be brief", by_id=9, by_name="mod")
    await store.set_channel_model(2, "gpt-4o")
    await store.set_channel_effort(2, "low")
    await store.set_channel_option(2, "mode", "chat")

    in_guild, without = await store.channel_settings(1), await store.channel_settings(2)

    assert replace(in_guild, prompt=None) == replace(without, prompt=None)
    assert in_guild.options == {"mode": "chat"}
    assert await store.channels_with_option("mode", ["chat"]) == [1, 2]
    await store.set_channel_option(1, "mode", None, guild_id=GUILD)
    assert await store.channels_with_option("mode", ["chat"]) == [2]
