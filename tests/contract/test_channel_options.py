"""Per-channel options: kept as text, inherited by a thread one option at a time, reset at once."""

from __future__ import annotations

from bot.conversation import Message
from bot.storage import ChannelSettings, TurnRecord

PARENT, THREAD, OTHER = 100, 101, 200


def turn(channel: int, n: int) -> TurnRecord:
    return TurnRecord(
        channel_id=channel,
        model="gpt-4o-mini",
        question=Message("user", f"question {n}", 7, author_id=1, author_name="ann"),
        answer=Message("assistant", f"answer {n}", 3),
        prompt_tokens=10,
        completion_tokens=5,
        question_message_id=1000 + n,
    )


async def test_an_option_set_is_read_back_as_text_and_unset_with_none(store):
    await store.set_channel_option(PARENT, "temperature", "0.7")
    await store.set_channel_option(PARENT, "temperature", "1.2")  # the last value wins
    await store.set_channel_option(PARENT, "mode", "chat")

    assert (await store.channel_settings(PARENT)).options == {"temperature": "1.2", "mode": "chat"}

    await store.set_channel_option(PARENT, "temperature", None)
    await store.set_channel_option(PARENT, "max_tokens", None)  # never set: nothing happens

    settings = await store.channel_settings(PARENT)
    assert settings.options == {"mode": "chat"}
    assert settings.inherited == frozenset()
    assert await store.channel_settings(OTHER) == ChannelSettings(None, None)


async def test_a_thread_inherits_each_option_from_its_parent_until_it_sets_its_own(store):
    await store.set_channel_option(PARENT, "temperature", "0.2")
    await store.set_channel_option(PARENT, "mode", "threads")
    await store.set_channel_option(THREAD, "temperature", "0.9")
    await store.set_channel_option(THREAD, "max_tokens", "300")

    thread = await store.channel_settings(THREAD, parent_id=PARENT)

    assert thread.options == {"temperature": "0.9", "mode": "threads", "max_tokens": "300"}
    assert thread.inherited == {"mode"}
    alone = await store.channel_settings(THREAD)  # no parent given: its own only
    assert alone.options == {"temperature": "0.9", "max_tokens": "300"}
    assert alone.inherited == frozenset()

    await store.set_channel_option(THREAD, "temperature", None)  # unset: the parent's again

    thread = await store.channel_settings(THREAD, parent_id=PARENT)
    assert thread.options == {"temperature": "0.2", "mode": "threads", "max_tokens": "300"}
    assert thread.inherited == {"temperature", "mode"}


async def test_inherited_names_the_model_and_effort_that_came_from_the_parent(store):
    await store.set_channel_model(PARENT, "gpt-4o")
    await store.set_channel_effort(PARENT, "high")
    await store.set_channel_effort(THREAD, "low")

    thread = await store.channel_settings(THREAD, parent_id=PARENT)

    assert (thread.model, thread.reasoning_effort) == ("gpt-4o", "low")
    assert thread.inherited == {"model"}
    parent = await store.channel_settings(PARENT)
    assert parent.inherited == frozenset()


async def test_turn_context_reads_the_same_settings_as_channel_settings(store):
    await store.set_system_prompt(PARENT, "be brief", by_id=9, by_name="mod")
    await store.set_channel_model(PARENT, "gpt-4o")
    await store.set_channel_option(PARENT, "temperature", "0.2")
    await store.set_channel_option(PARENT, "mode", "chat")
    await store.set_channel_option(THREAD, "mode", "mention")

    for channel, parent in ((THREAD, PARENT), (THREAD, None), (PARENT, None), (OTHER, PARENT)):
        settings, _ = await store.turn_context(channel, parent, 5)

        assert settings == await store.channel_settings(channel, parent), (channel, parent)
    settings, _ = await store.turn_context(THREAD, PARENT, 5)
    assert settings.options == {"temperature": "0.2", "mode": "mention"}
    assert settings.inherited == {"model", "temperature"}


async def test_the_history_rounds_option_sets_how_many_rounds_a_turn_reads(store):
    for n in range(6):
        await store.add_turn(turn(THREAD, n))

    async def rounds_read(max_rounds: int) -> list[str]:
        _, history = await store.turn_context(THREAD, PARENT, max_rounds)
        return [r.question.content for r in history]

    assert len(await rounds_read(4)) == 4  # neither sets it: the argument
    await store.set_channel_option(PARENT, "history_rounds", "2")
    assert await rounds_read(4) == ["question 4", "question 5"]  # the parent's
    await store.set_channel_option(THREAD, "history_rounds", "3")
    assert await rounds_read(4) == ["question 3", "question 4", "question 5"]  # its own
    await store.set_channel_option(THREAD, "history_rounds", "0")
    assert await rounds_read(4) == []  # its own, even when it is none
    await store.set_channel_option(THREAD, "history_rounds", None)
    await store.set_channel_option(PARENT, "history_rounds", None)
    assert len(await rounds_read(5)) == 5
    _, history = await store.turn_context(OTHER, THREAD, 5)  # another channel's rows stay out
    assert history == []


async def test_resetting_settings_unsets_model_effort_and_options_but_keeps_prompt_and_history(
    store,
):
    await store.set_system_prompt(PARENT, "be brief", by_id=9, by_name="mod")
    await store.set_channel_model(PARENT, "gpt-4o")
    await store.set_channel_effort(PARENT, "high")
    await store.set_channel_option(PARENT, "temperature", "0.2")
    await store.set_channel_option(PARENT, "mode", "chat")
    await store.set_channel_option(OTHER, "mode", "chat")
    await store.add_turn(turn(PARENT, 1))

    await store.reset_channel_settings(PARENT)
    await store.reset_channel_settings(300)  # a channel with nothing set: nothing happens

    settings = await store.channel_settings(PARENT)
    assert settings.prompt is not None and settings.prompt.text == "be brief"
    assert (settings.model, settings.reasoning_effort, settings.options) == (None, None, {})
    assert [r.question.content for r in await store.history(PARENT, 5)] == ["question 1"]
    assert (await store.channel_settings(OTHER)).options == {"mode": "chat"}
    assert [c.prompt for c in await store.prompt_changes(PARENT)] == ["be brief"]


async def test_channels_with_option_finds_the_channels_that_set_it_themselves(store):
    await store.set_channel_option(3, "mode", "chat")
    await store.set_channel_option(1, "mode", "threads")
    await store.set_channel_option(2, "mode", "mention")
    await store.set_channel_option(4, "temperature", "chat")  # another option's value
    await store.set_channel_option(5, "mode", "chat")
    await store.set_channel_option(5, "mode", None)

    assert await store.channels_with_option("mode", {"chat", "threads"}) == [1, 3]
    assert await store.channels_with_option("mode", ["chat"]) == [3]
    assert await store.channels_with_option("mode", []) == []
    assert await store.channels_with_option("history_rounds", ["chat"]) == []


async def test_options_survive_a_restart(open_store):
    async with open_store() as store:
        await store.set_channel_option(PARENT, "mode", "threads", guild_id=7)
        await store.set_channel_option(THREAD, "temperature", "0.5")

    async with open_store() as reopened:
        thread = await reopened.channel_settings(THREAD, parent_id=PARENT)

    assert thread.options == {"mode": "threads", "temperature": "0.5"}
    assert thread.inherited == {"mode"}
