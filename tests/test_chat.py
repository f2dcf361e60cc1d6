"""ChatService: the product without Discord, over a real store and the loopback model."""

from __future__ import annotations

import asyncio
import io
import json
from contextlib import aclosing
from dataclasses import replace

import pytest
import tiktoken
from PIL import Image as PILImage

from bot import tokens
from bot.attachments import Files, Upload, read_uploads
from bot.chat import (
    MAX_SYSTEM_PROMPT_CHARS,
    Answer,
    ChatService,
    Delta,
    Mode,
    Question,
    Queued,
)
from bot.conversation import Quote, byte_bound
from bot.errors import (
    ContextTooLong,
    EmptyAnswer,
    EmptyPrompt,
    EmptyQuestion,
    ImagesNotSupported,
    Interrupted,
    InvalidModel,
    InvalidSetting,
    ModeUnavailable,
    PromptTooLong,
    QuestionTooLong,
    RateLimited,
    Refused,
    ShuttingDown,
)
from bot.llm import Finished
from bot.storage.sqlite import SQLiteStore
from bot.tokens import counter_for
from cogs._render import explain
from tests.conftest import ask_events, make_config
from tests.fake_openai import Reply, context_too_long, rate_limited
from tests.speakers import said


def ask_of(channel: int = 1, text: str = "hello", *, user: int = 7, name: str = "Ann", parent=None):
    return Question(channel, user, name, text, parent_id=parent)


run = ask_events


async def answer(service: ChatService, question: Question) -> Answer:
    events = await run(service, question)
    assert isinstance(events[-1], Answer)
    return events[-1]


async def test_ask_streams_deltas_then_stores_and_reports_the_answer(service, llm_server):
    llm_server.then(Reply(text="Paris is the capital.", chunk_size=6, prompt_tokens=30))

    events = await run(service, ask_of(text="Capital of France?"))

    deltas = [e.text for e in events if isinstance(e, Delta)]
    final = events[-1]
    assert deltas == ["Paris ", "is the", " capit", "al."]
    assert isinstance(final, Answer) and final.text == "Paris is the capital."
    assert (final.prompt_tokens, final.finish_reason, final.model) == (30, "stop", "gpt-4o-mini")
    (stored,) = await service.history(1, 10)
    assert stored.question.content == "Capital of France?"
    assert (stored.question.author_id, stored.question.author_name) == (7, "Ann")
    assert stored.answer.content == "Paris is the capital."


async def test_token_counts_are_stored_once_for_what_the_model_sees(service, llm_server):
    llm_server.then(Reply(text="An answer."))
    counter_for("gpt-4o-mini")  # its vocabulary loaded (and kept): counts are exact

    await answer(service, ask_of(text="A question?"))

    (stored,) = await service.history(1, 1)
    counter = counter_for("gpt-4o-mini")
    assert stored.question.tokens == counter.count(said("Ann", 7, "A question?"))
    assert stored.answer.tokens == counter.count("An answer.")


async def test_the_prompt_has_system_history_and_speakers(service, llm_server):
    llm_server.then(Reply(text="Hi Ann."), Reply(text="Hi Bob."))
    await service.set_system_prompt(1, "Talk like a pirate.", by_id=1, by_name="mod")

    await answer(service, ask_of(text="hello", user=1, name="Ann"))
    await answer(service, ask_of(text="me too", user=2, name="Bob"))

    messages = llm_server.requests[1]["messages"]
    assert messages[0]["role"] == "system"
    assert messages[0]["content"].startswith("Talk like a pirate.")
    assert messages[1:] == [
        {"role": "user", "content": said("Ann", 1, "hello")},
        {"role": "assistant", "content": "Hi Ann."},
        {"role": "user", "content": said("Bob", 2, "me too")},
    ]


async def test_history_is_capped_by_rounds(store, chat_model, llm_server):
    service = ChatService(store, chat_model, make_config(max_rounds=2))
    for n in range(4):
        await answer(service, ask_of(text=f"q{n}"))

    sent = llm_server.requests[-1]["messages"]

    assert [m["content"] for m in sent if m["role"] == "user"] == [
        said("Ann", 7, "q1"),
        said("Ann", 7, "q2"),
        said("Ann", 7, "q3"),
    ]


async def test_history_is_capped_by_the_token_budget(store, chat_model, llm_server):
    # Each round costs about 1,000 tokens; 3,000 - 200 for the reply - ~500 for the question
    # leaves room for two rounds of history, not three.
    service = ChatService(
        store, chat_model, make_config(context_window=3000, max_tokens=200, max_rounds=50)
    )
    llm_server.default = Reply(text="word " * 500)
    for n in range(5):
        await answer(service, ask_of(text=f"q{n} " + "word " * 490))

    sent = llm_server.requests[-1]["messages"]
    users = [json.loads(m["content"])["message"][:2] for m in sent if m["role"] == "user"]
    assert users == ["q2", "q3", "q4"]
    counter = counter_for("gpt-4o-mini")
    prompt_size = sum(counter.count(m["content"]) + 3 for m in sent) + 3
    assert prompt_size <= 3000 - 200


async def test_a_question_too_long_for_the_model_is_refused_before_any_call(
    store, chat_model, llm_server
):
    service = ChatService(store, chat_model, make_config(context_window=1000, max_tokens=200))

    with pytest.raises(QuestionTooLong):
        await run(service, ask_of(text="word " * 2000))

    assert llm_server.requests == []


async def test_empty_question_is_refused_before_any_call(service, llm_server):
    with pytest.raises(EmptyQuestion):
        await run(service, ask_of(text=" \n\t "))

    assert llm_server.requests == []


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (rate_limited(), RateLimited),
        (Reply(text="half an answ", chunk_size=3, cut_after=2), Interrupted),
        (Reply(text="", finish_reason="stop"), EmptyAnswer),
        (Reply(text="nope", finish_reason="content_filter"), Refused),
    ],
)
async def test_a_failed_answer_writes_nothing(service, llm_server, reply, error):
    llm_server.then(Reply(text="first answer"))
    await answer(service, ask_of(text="first"))
    llm_server.then(reply)

    with pytest.raises(error):
        await run(service, ask_of(text="second"))

    rounds = await service.history(1, 10)
    assert [r.question.content for r in rounds] == ["first"]
    assert (await service.usage(1)).answers == 1
    llm_server.then(Reply(text="third answer"))
    assert (await answer(service, ask_of(text="third"))).text == "third answer"


async def test_a_truncated_answer_is_kept_and_flagged(service, llm_server):
    llm_server.then(Reply(text="This answer stops mid", finish_reason="length"))

    final = await answer(service, ask_of())

    assert final.truncated
    assert len(await service.history(1, 10)) == 1


async def test_context_too_long_drops_the_oldest_round_and_retries(service, llm_server):
    for n in range(3):
        await answer(service, ask_of(text=f"q{n}"))
    llm_server.then(context_too_long(), Reply(text="ok now"))

    final = await answer(service, ask_of(text="q3"))

    retried = llm_server.requests[-1]["messages"]
    assert [m["content"] for m in retried if m["role"] == "user"] == [
        said("Ann", 7, "q1"),
        said("Ann", 7, "q2"),
        said("Ann", 7, "q3"),
    ]
    assert (final.text, final.rounds_dropped, final.rounds_used) == ("ok now", 1, 2)


async def test_context_too_long_gives_up_after_bounded_retries(service, llm_server):
    for n in range(5):
        await answer(service, ask_of(text=f"q{n}"))
    before = len(llm_server.requests)
    llm_server.then(*[context_too_long() for _ in range(10)])

    with pytest.raises(ContextTooLong):
        await run(service, ask_of(text="q5"))

    assert len(llm_server.requests) - before == 4  # the first try and three retries
    assert len(await service.history(1, 10)) == 5


async def test_questions_in_one_channel_are_answered_in_order(service, llm_server):
    llm_server.default = Reply(echo=True)
    llm_server.gate.clear()
    first = asyncio.create_task(run(service, ask_of(text="one")))
    await llm_server.wait_for_requests(1)
    second = asyncio.create_task(run(service, ask_of(text="two", user=8, name="Bob")))
    for _ in range(20):
        await asyncio.sleep(0)

    assert len(llm_server.requests) == 1  # the second waits for the first turn to finish
    assert service.waiting(1) == 2
    llm_server.gate.set()
    first_events, second_events = await asyncio.gather(first, second)

    assert second_events[0] == Queued(ahead=1)
    assert first_events[-1].text == "echo: " + said("Ann", 7, "one")
    # The second question saw the first turn complete in its history.
    assert llm_server.requests[1]["messages"][1:3] == [
        {"role": "user", "content": said("Ann", 7, "one")},
        {"role": "assistant", "content": "echo: " + said("Ann", 7, "one")},
    ]
    assert [r.question.content for r in await service.history(1, 10)] == ["one", "two"]


async def test_different_channels_are_answered_in_parallel(service, llm_server):
    llm_server.default = Reply(echo=True)
    llm_server.gate.clear()
    tasks = [asyncio.create_task(run(service, ask_of(channel=c, text=f"c{c}"))) for c in (1, 2, 3)]

    await asyncio.wait_for(llm_server.wait_for_requests(3), timeout=5)  # all three in flight
    llm_server.gate.set()
    results = await asyncio.gather(*tasks)

    assert [r[-1].text for r in results] == [
        "echo: " + said("Ann", 7, "c1"),
        "echo: " + said("Ann", 7, "c2"),
        "echo: " + said("Ann", 7, "c3"),
    ]


async def test_locks_of_idle_channels_do_not_accumulate(service, llm_server):
    llm_server.then(rate_limited())
    with pytest.raises(RateLimited):
        await run(service, ask_of(channel=99))
    for channel in range(20):
        await answer(service, ask_of(channel=channel))

    assert service.busy_channels == 0


async def test_an_abandoned_stream_releases_the_channel(service, llm_server):
    llm_server.then(Reply(text="a long answer " * 10, chunk_size=4))
    async with aclosing(service.ask(ask_of())) as events:
        async for event in events:
            if isinstance(event, Delta):
                break

    assert service.busy_channels == 0
    assert await service.history(1, 10) == []
    assert (await answer(service, ask_of(text="again"))).text


async def test_reset_forgets_only_this_channel(service, llm_server):
    await answer(service, ask_of(channel=1))
    await answer(service, ask_of(channel=1))
    await answer(service, ask_of(channel=2))

    assert (await service.reset(1)).rounds == 2
    assert await service.history(1, 10) == []
    assert len(await service.history(2, 10)) == 1


async def test_threads_inherit_the_parent_prompt_and_model(service, llm_server):
    await service.set_system_prompt(100, "Parent rules.", by_id=1, by_name="mod")
    await service.set_channel_model(100, "gpt-4.1")

    prompt = await service.system_prompt(200, parent_id=100)
    await answer(service, ask_of(channel=200, parent=100))

    assert (prompt.text, prompt.source) == ("Parent rules.", "parent")
    sent = llm_server.requests[-1]
    assert sent["model"] == "gpt-4.1"
    assert sent["messages"][0]["content"].startswith("Parent rules.")
    assert (await service.system_prompt(300)).source == "default"


async def test_prompt_limits_and_model_choices_are_enforced(service):
    with pytest.raises(PromptTooLong):
        await service.set_system_prompt(1, "x" * 5000, by_id=1, by_name="mod")
    with pytest.raises(EmptyPrompt):
        await service.set_system_prompt(1, " \x00 ", by_id=1, by_name="mod")
    with pytest.raises(InvalidModel):
        await service.set_channel_model(1, "gpt-99")
    assert await service.set_channel_model(1, None) == "gpt-4o-mini"


async def test_shutdown_lets_answers_in_flight_finish_and_refuses_new_ones(service, llm_server):
    llm_server.gate.clear()
    in_flight = asyncio.create_task(run(service, ask_of()))
    await llm_server.wait_for_requests(1)

    stopping = asyncio.create_task(service.shutdown(grace=5))
    await asyncio.sleep(0)
    with pytest.raises(ShuttingDown):
        await run(service, ask_of(channel=2))
    llm_server.gate.set()

    assert isinstance((await in_flight)[-1], Answer)
    assert await stopping is True


async def test_conversation_survives_a_restart(db_path, chat_model, llm_server):
    async with SQLiteStore.open(db_path) as store:
        await answer(ChatService(store, chat_model, make_config()), ask_of(text="remember 42"))

    async with SQLiteStore.open(db_path) as store:
        await answer(ChatService(store, chat_model, make_config()), ask_of(text="what number?"))

    users = [m["content"] for m in llm_server.requests[-1]["messages"] if m["role"] == "user"]
    assert users == [said("Ann", 7, "remember 42"), said("Ann", 7, "what number?")]


async def test_a_long_chinese_prompt_on_a_small_model_is_refused_in_tokens(store, chat_model):
    service = ChatService(store, chat_model, make_config(context_window=4096, max_tokens=1024))
    # 3,000 characters of everyday Chinese text, no run repeated (a BPE would merge repeats).
    prompt = "".join(chr(0x4E00 + (n * 37) % 2000) for n in range(3000))

    with pytest.raises(PromptTooLong) as refused:
        await service.set_system_prompt(1, prompt, by_id=1, by_name="mod")

    error = refused.value
    assert len(prompt) == 3000 < MAX_SYSTEM_PROMPT_CHARS
    assert error.message_key == "error.prompt_too_many_tokens"
    assert error.tokens is not None and error.tokens > error.room == 4096 - 1024 - 256
    sentence = explain(error)
    assert f"{error.tokens} tokens" in sentence and "4000 characters" not in sentence


async def test_an_empty_prompt_is_not_answered_as_an_empty_question(service):
    with pytest.raises(EmptyPrompt) as refused:
        await service.set_system_prompt(1, "  ", by_id=1, by_name="mod")

    assert "system prompt is empty" in explain(refused.value)
    assert "question" not in explain(refused.value)


# -- vocabularies: loaded only when a window needs exact counts, then kept ---------------------


@pytest.fixture
def loads(monkeypatch):
    """The vocabularies tiktoken is asked for from here on; none is loaded at the start."""
    counter_for.cache_clear()
    monkeypatch.setattr(tokens, "_tried_vocabularies", set(), raising=False)
    asked: list[str] = []
    real = tiktoken.get_encoding

    def get_encoding(name: str) -> tiktoken.Encoding:
        asked.append(name)
        return real(name)

    monkeypatch.setattr(tiktoken, "get_encoding", get_encoding)
    yield asked
    counter_for.cache_clear()


async def test_no_vocabulary_is_loaded_to_start_or_for_turns_the_bounds_settle(
    store, chat_model, llm_server, loads
):
    config = make_config(context_window=128_000, max_tokens=4096, max_rounds=5)
    service = ChatService(store, chat_model, config)
    await service.set_system_prompt(1, "Talk like a pirate.", by_id=1, by_name="mod")
    llm_server.default = Reply(text="Arr, an answer.")
    for n in range(7):
        await answer(service, ask_of(text=f"question {n}"))

    assert loads == []
    assert len(llm_server.requests[-1]["messages"]) == 1 + 2 * 5 + 1
    stored = (await service.history(1, 1))[0]
    # Stored counts are bounds, flagged as such (exact ones replace them when a window needs it).
    assert (stored.question.bound, stored.answer.bound) == (True, True)
    assert stored.question.tokens == byte_bound(said("Ann", 7, "question 6"))
    assert stored.answer.tokens == byte_bound("Arr, an answer.")


async def test_a_4k_window_is_chosen_with_exact_counts_and_the_vocabulary_kept(
    store, chat_model, llm_server, loads
):
    # A round of ~2,000 bytes is ~400 tokens: by bounds one round fits a 4k window, by count five.
    service = ChatService(
        store, chat_model, make_config(context_window=4096, max_tokens=1024, max_rounds=5)
    )
    llm_server.default = Reply(text="word " * 200)
    for n in range(7):
        await answer(service, ask_of(text=f"q{n} " + "word " * 200))

    sent = llm_server.requests[-1]["messages"]
    users = [json.loads(m["content"])["message"][:2] for m in sent if m["role"] == "user"]
    assert users == ["q1", "q2", "q3", "q4", "q5", "q6"]
    assert loads == ["o200k_base"]  # once, on the first turn whose window needed it, then kept
    counter = counter_for("gpt-4o-mini")
    assert sum(counter.count(m["content"]) + 3 for m in sent) + 3 <= 4096 - 1024
    stored = (await service.history(1, 1))[0]
    assert (stored.question.bound, stored.answer.bound) == (False, False)
    assert stored.question.tokens == counter.count(said("Ann", 7, f"q6 {'word ' * 200}".strip()))
    assert stored.answer.tokens == counter.count("word " * 200)


async def test_a_question_over_the_window_in_bytes_but_not_in_tokens_is_answered(
    store, chat_model, llm_server, loads
):
    service = ChatService(store, chat_model, make_config(context_window=4096, max_tokens=1024))
    llm_server.then(Reply(text="ok"))
    text = "word " * 1000  # 5,000 bytes, about 1,000 tokens

    assert (await answer(service, ask_of(text=text))).text == "ok"
    assert loads == ["o200k_base"]


async def test_a_system_prompt_is_checked_by_bound_and_counted_only_if_the_bound_is_over(
    store, chat_model, loads
):
    service = ChatService(store, chat_model, make_config(context_window=2048, max_tokens=512))
    await service.set_system_prompt(1, "Talk like a pirate.", by_id=1, by_name="mod")
    assert loads == []

    text = "word " * 600  # 3,000 bytes, about 600 tokens; the room is 2,048 - 512 - 256
    await service.set_system_prompt(1, text, by_id=1, by_name="mod")
    assert loads == ["o200k_base"]
    assert (await service.system_prompt(1)).text == text.strip()


# -- per-channel settings -------------------------------------------------------------------


async def test_a_turn_uses_the_channels_temperature_reply_length_and_history(
    store, chat_model, llm_server
):
    service = ChatService(store, chat_model, make_config(temperature=0.7, max_rounds=5))
    for n in range(3):
        await answer(service, ask_of(text=f"q{n}"))
    await service.set_channel_setting(1, "temperature", "1.5", guild_id=9)
    await service.set_channel_setting(1, "max_tokens", "100", guild_id=9)
    await service.set_channel_setting(1, "history_rounds", "1", guild_id=9)

    last = await answer(service, ask_of(text="now"))
    await answer(service, ask_of(channel=2, text="elsewhere"))

    tuned, other = llm_server.requests[-2:]
    assert (tuned["temperature"], tuned["max_tokens"]) == (1.5, 100)
    assert [m["content"] for m in tuned["messages"] if m["role"] == "user"] == [
        said("Ann", 7, "q2"),
        said("Ann", 7, "now"),
    ]
    assert last.max_tokens == 100
    assert (other["temperature"], other["max_tokens"]) == (0.7, 256)


async def test_no_history_rounds_sends_the_question_alone(store, chat_model, llm_server):
    service = ChatService(store, chat_model, make_config())
    await answer(service, ask_of(text="first"))
    await service.set_channel_setting(1, "history_rounds", "0", guild_id=9)

    await answer(service, ask_of(text="second"))

    assert [m["role"] for m in llm_server.requests[-1]["messages"]] == ["system", "user"]


async def test_a_thread_uses_its_parents_settings_until_it_has_its_own(
    store, chat_model, llm_server
):
    service = ChatService(store, chat_model, make_config())
    await service.set_channel_setting(1, "temperature", "0.2", guild_id=9)
    await service.set_channel_setting(1, "max_tokens", "64", guild_id=9)

    await answer(service, ask_of(channel=50, parent=1, text="in a thread"))
    values = await service.set_channel_setting(50, "max_tokens", "128", parent_id=1, guild_id=9)
    await answer(service, ask_of(channel=50, parent=1, text="again"))

    inherited, own = llm_server.requests
    assert (inherited["temperature"], inherited["max_tokens"]) == (0.2, 64)
    assert (own["temperature"], own["max_tokens"]) == (0.2, 128)
    assert values.sources["temperature"] == "parent" and values.sources["max_tokens"] == "channel"


async def test_the_answer_cap_follows_the_channels_reply_length(store, chat_model, llm_server):
    service = ChatService(store, chat_model, make_config(max_tokens=1000))
    await service.set_channel_setting(1, "max_tokens", "20", guild_id=9)
    llm_server.default = Reply(text="y" * 5000, chunk_size=500)

    result = await answer(service, ask_of(text="go on forever"))

    assert result.cut and len(result.text) == 20 * 16


async def test_the_system_prompt_must_leave_room_for_the_channels_reply_length(store, chat_model):
    service = ChatService(store, chat_model, make_config(context_window=2048, max_tokens=256))
    prompt = "word " * 700  # ~700 tokens: fits beside 256, not beside 1,700
    await service.set_system_prompt(1, prompt, by_id=1, by_name="Mod")
    await service.set_channel_setting(2, "max_tokens", "1700", guild_id=9)

    with pytest.raises(PromptTooLong):
        await service.set_system_prompt(2, prompt, by_id=1, by_name="Mod")


async def test_setting_a_value_out_of_bounds_changes_nothing(store, chat_model):
    service = ChatService(store, chat_model, make_config())

    with pytest.raises(InvalidSetting) as refused:
        await service.set_channel_setting(1, "temperature", "3", guild_id=9)

    assert refused.value.params["low"] == "0" and refused.value.params["high"] == "2"
    assert (await store.channel_settings(1)).options == {}


async def test_unsetting_a_value_brings_back_the_parents_or_the_default(store, chat_model):
    service = ChatService(store, chat_model, make_config(temperature=0.7))
    await service.set_channel_setting(1, "temperature", "0.1", guild_id=9)
    await service.set_channel_setting(50, "temperature", "1.9", parent_id=1, guild_id=9)

    thread = await service.set_channel_setting(50, "temperature", None, parent_id=1, guild_id=9)
    channel = await service.set_channel_setting(1, "temperature", None, guild_id=9)

    assert (thread.temperature, thread.sources["temperature"]) == (0.1, "parent")
    assert (channel.temperature, channel.sources["temperature"]) == (0.7, "default")


async def test_resetting_a_channels_settings_keeps_its_prompt_and_history(
    store, chat_model, llm_server
):
    service = ChatService(store, chat_model, make_config(reasoning_effort="low"))
    await service.set_system_prompt(1, "Be brief.", by_id=1, by_name="Mod")
    await answer(service, ask_of(text="remember me"))
    await service.set_channel_model(1, "gpt-4.1")
    await service.set_channel_effort(1, "high")
    for name, value in [("temperature", "2"), ("max_tokens", "99"), ("mode", "chat")]:
        await service.set_channel_setting(1, name, value, guild_id=9)

    values = await service.reset_channel_settings(1)

    assert set(values.sources.values()) == {"default"}
    assert await service.channel_model(1) == "gpt-4o-mini"
    assert values.reasoning_effort == "low"
    assert await service.channel_mode(1) is Mode.MENTION
    assert (await service.system_prompt(1)).text == "Be brief."
    assert await service.count_rounds(1) == 1


@pytest.mark.parametrize(
    ("mode", "where", "config", "reason"),
    [
        ("chat", {"guild_id": None}, {}, "dm"),
        ("mention", {"guild_id": None}, {}, "dm"),
        ("threads", {"guild_id": 9, "parent_id": 1}, {}, "thread"),
        ("chat", {"guild_id": 9}, {"message_content": "off"}, "off"),
        ("threads", {"guild_id": 9}, {"message_content": "off"}, "off"),
    ],
)
async def test_a_mode_that_cannot_work_here_is_refused(
    store, chat_model, mode, where, config, reason
):
    service = ChatService(store, chat_model, make_config(**config))

    with pytest.raises(ModeUnavailable) as refused:
        await service.set_channel_setting(50, "mode", mode, **where)

    assert refused.value.reason == reason
    assert await service.channel_mode(50, where.get("parent_id")) is Mode.MENTION


async def test_modes_are_read_from_the_store_once_then_from_memory(store, chat_model):
    await store.set_channel_option(1, "mode", "chat", guild_id=9)
    await store.set_channel_option(2, "mode", "threads", guild_id=9)
    await store.set_channel_option(3, "mode", "mention", guild_id=9)
    service = ChatService(store, chat_model, make_config())
    reads = 0
    channels_with_option = store.channels_with_option

    async def counted(name, values):
        nonlocal reads
        reads += 1
        return await channels_with_option(name, values)

    store.channels_with_option = counted  # type: ignore[method-assign]

    assert await service.channel_mode(1) is Mode.CHAT
    assert await service.channel_mode(20, parent_id=2) is Mode.THREADS
    assert await service.channel_mode(3, parent_id=1) is Mode.MENTION
    first = reads
    await service.set_channel_setting(4, "mode", "chat", guild_id=9)
    assert await service.channel_mode(4) is Mode.CHAT
    assert sorted(await service.chat_channels()) == [1, 2, 4]
    assert reads == first  # a mode set here is kept in memory: no read per message


# -- files and images with a question ---------------------------------------------------------


def picture(color: str = "red") -> Files:
    out = io.BytesIO()
    PILImage.new("RGB", (40, 20), color).save(out, "PNG")
    return read_uploads([Upload("cat.png", out.getvalue())], text_max_chars=100)


class RefusesImages:
    """A model server that answers 400 "no images" to any request with image parts."""

    def __init__(self) -> None:
        self.calls: list[list[dict]] = []

    async def stream(self, messages, **options):
        self.calls.append(list(messages))
        if any(isinstance(m["content"], list) for m in messages):
            raise ImagesNotSupported("the model takes no images", options["model"])
        yield "It is a picture."
        yield Finished("stop", 10, 3)


VISION = {"model": "gpt-4o", "models": ("gpt-4o",)}  # gpt-4o-mini charges 8,500 tokens a tile


@pytest.fixture
def vision(store, chat_model) -> ChatService:
    return ChatService(store, chat_model, make_config(**VISION))


def image_parts(messages) -> int:
    return sum(
        p["type"] == "image_url"
        for m in messages
        if isinstance(m["content"], list)
        for p in m["content"]
    )


async def test_a_question_of_an_image_alone_is_asked_and_its_bytes_stored_with_the_turn(
    vision, store, llm_server
):
    service = vision
    files = picture()
    (digest,) = files.blobs

    await answer(service, replace(ask_of(text=""), files=files))

    (part,) = llm_server.images[-1]
    assert part["image_url"]["url"].startswith("data:image/png;base64,")
    (stored,) = await service.history(1, 10)
    assert [a.sha256 for a in stored.question.images] == [digest]
    assert await store.blobs([digest]) == files.blobs


async def test_the_store_is_asked_for_images_only_when_the_window_holds_some(
    vision, store, llm_server
):
    service = vision
    fetched: list[set[str]] = []
    blobs = store.blobs

    async def counted(digests):
        fetched.append(set(digests))
        return await blobs(digests)

    store.blobs = counted  # type: ignore[method-assign]
    files = picture()
    await answer(service, ask_of(channel=1, text="no image"))
    await answer(service, ask_of(channel=1, text="still none"))
    assert fetched == []  # the question's own image comes with it, not from the store
    await answer(service, replace(ask_of(channel=2, text="look"), files=files))
    assert fetched == []
    await answer(service, ask_of(channel=2, text="and again?"))

    assert fetched == [set(files.blobs)]
    assert image_parts(llm_server.requests[-1]["messages"]) == 1  # sent again from the store


async def test_a_model_that_refuses_images_is_asked_once_more_without_them_and_remembered(
    store,
):
    model = RefusesImages()
    service = ChatService(store, model, make_config(**VISION))

    first = await answer(service, replace(ask_of(text="what is it?"), files=picture()))
    second = await answer(service, ask_of(text="and now?"))

    assert [image_parts(call) for call in model.calls] == [1, 0, 0]  # no second refusal
    assert first.images_left_out and second.images_left_out  # the image is in the window
    assert first.text == "It is a picture."
    (stored, _) = await service.history(1, 10)
    assert [a.name for a in stored.question.images] == ["cat.png"]  # kept for other models


async def test_a_refusal_of_images_when_none_were_sent_is_an_error(store):
    model = RefusesImages()
    model.stream = _always_refusing(model.calls)  # type: ignore[method-assign]
    service = ChatService(store, model, make_config())

    with pytest.raises(ImagesNotSupported):
        await run(service, ask_of(text="plain words"))
    assert len(model.calls) == 1
    assert await service.history(1, 10) == []


def _always_refusing(calls):
    async def stream(messages, **options):
        calls.append(list(messages))
        raise ImagesNotSupported("no images", options["model"])
        yield  # pragma: no cover (an async generator)

    return stream


async def test_a_text_only_model_reads_the_names_and_nothing_is_fetched(
    store, chat_model, llm_server
):
    service = ChatService(store, chat_model, make_config(**VISION, text_only_models=("gpt-4o*",)))
    fetched = []
    store.blobs = lambda digests: fetched.append(digests)  # type: ignore[method-assign]

    answered = await answer(service, replace(ask_of(text="what is it?"), files=picture()))

    assert answered.images_left_out
    assert llm_server.images == [[]] and fetched == []
    asked = json.loads(llm_server.requests[-1]["messages"][-1]["content"])
    assert asked["images"] == ["cat.png"] and asked["message"] == "what is it?"


async def test_text_files_and_a_quoted_message_are_framed_by_the_bot(service, llm_server):
    files = read_uploads([Upload("a.py", b"print(1)\n")], text_max_chars=100)
    about = Quote("Bob", 42, "my code")

    await answer(service, replace(ask_of(text="review"), files=files, about=about))

    asked = json.loads(llm_server.requests[-1]["messages"][-1]["content"])
    assert asked["about"] == {"from": "Bob", "id": "42", "message": "my code"}
    assert asked["files"] == [{"name": "a.py", "text": "print(1)\n"}]
    assert asked["message"] == "review"
    (stored,) = await service.history(1, 10)
    assert (stored.question.text, stored.question.about) == ("review", about)


async def test_a_text_only_model_is_not_charged_for_images_it_is_not_sent(
    store, chat_model, llm_server
):
    # gpt-4o-mini's price for any image (8,500 tokens) would not fit the 8k window; the model
    # never sees the image, so its cost must not count: the question is answered.
    mini = {"model": "gpt-4o-mini", "models": ("gpt-4o-mini",)}
    service = ChatService(store, chat_model, make_config(**mini, text_only_models=("gpt-4o*",)))

    answered = await answer(service, replace(ask_of(text="what is it?"), files=picture()))
    again = await answer(service, ask_of(text="and now?"))

    assert answered.images_left_out and again.text
    assert len(llm_server.requests) == 2  # the round with the image stayed in the window
    assert len(llm_server.requests[-1]["messages"]) == 4
    (stored, _) = await service.history(1, 10)
    assert stored.question.attachments[0].tokens > 8000  # kept for a model that sees images


async def test_images_in_history_are_charged_at_the_rate_of_the_model_now_in_force(
    store, chat_model, llm_server
):
    # Stored under gpt-4o (255 tokens); the channel then switches to gpt-4o-mini, which charges
    # 8,500 for the same image: more than the 8k window, so that round cannot go with the next
    # question (it went, counted at gpt-4o's rate, and a real server refused the prompt).
    both = {"model": "gpt-4o", "models": ("gpt-4o", "gpt-4o-mini")}
    service = ChatService(store, chat_model, make_config(**both))
    await answer(service, replace(ask_of(text="what is it?"), files=picture()))
    await service.set_channel_model(1, "gpt-4o-mini")

    again = await answer(service, ask_of(text="and now?"))

    assert again.rounds_used == 0
    assert len(llm_server.requests[-1]["messages"]) == 2  # the system prompt and the question
    assert llm_server.images[-1] == []
    (first, _) = await service.history(1, 10)
    assert first.question.images[0].tokens == 85 + 170  # the stored record is as it was
