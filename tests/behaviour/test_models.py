"""Every current model works through the real bot: OpenAI's reasoning families get the
parameters they accept, and local thinking models' thoughts are never shown, stored or sent back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.llm import Finished, Reasoning, StreamEvent
from bot.messages import text
from tests.fake_openai import Reply

THOUGHT = "Let me think about this very carefully. The user wants a greeting."
ANSWER = "Hello there!"


def family(model: str) -> dict[str, object]:
    return {"model": model, "models": (model, "gpt-4o-mini")}


@pytest.mark.parametrize(
    ("config_overrides", "reasoning_field"),
    [
        (family("gpt-5-mini"), None),  # OpenAI reasoning models keep their thoughts
        (family("o4-mini"), None),
        (family("deepseek-r1"), "reasoning_content"),  # DeepSeek, vLLM
        (family("gpt-oss:20b"), "reasoning"),  # Ollama, OpenRouter
        (family("qwen3:8b"), "think"),  # <think>…</think> in the content
        (family("qwq"), "think_no_open"),  # the template opened <think> itself
    ],
)
async def test_each_family_is_answered_and_no_thought_is_shown_stored_or_sent_back(
    world, llm_server, config_overrides, reasoning_field
):
    model = config_overrides["model"]
    reply = Reply(text=ANSWER, chunk_size=4)
    if reasoning_field:
        reply = Reply(text=ANSWER, chunk_size=4, reasoning=THOUGHT, reasoning_field=reasoning_field)
    llm_server.then(reply, Reply(text="Again."))

    await world.alice.send(world.channel, f"{world.bot_mention} greet me")
    await world.alice.send(world.channel, f"{world.bot_mention} once more")

    first, second = llm_server.requests
    if model.startswith(("gpt-5", "o4")):
        assert "max_completion_tokens" in first and "max_tokens" not in first
        assert "temperature" not in first and "top_p" not in first
    else:
        assert "max_tokens" in first and "temperature" in first
    answer = world.bot_messages()[0].content
    assert answer.startswith(ANSWER)
    assert "think" not in answer.lower() or "Thought for" in answer
    assert "carefully" not in answer
    (stored, _) = await world.env.bot.service.history(world.channel.id, 10)
    assert stored.answer.content == ANSWER
    assert all("carefully" not in m["content"] for m in second["messages"])
    assert second["messages"][2] == {"role": "assistant", "content": ANSWER}


@pytest.mark.parametrize("config_overrides", [family("deepseek-r1")])
async def test_a_model_that_thinks_away_its_whole_budget_is_told_so(world, llm_server):
    llm_server.then(
        Reply(
            text="",
            reasoning=THOUGHT * 20,
            reasoning_field="reasoning_content",
            finish_reason="length",
        )
    )

    await world.alice.send(world.channel, f"{world.bot_mention} a hard question")

    shown = world.bot_messages()[-1].content
    assert text("en-US", "error.thinking_exhausted", max_tokens=256) in shown
    assert "carefully" not in shown
    assert await world.env.bot.service.history(world.channel.id, 10) == []


class ThinkingModel:
    """Thinks for a while (virtual seconds), then answers."""

    def __init__(self, thoughts: int, pace: float) -> None:
        self.thoughts, self.pace = thoughts, pace

    async def stream(self, messages, **_: object) -> AsyncIterator[StreamEvent]:
        for n in range(self.thoughts):
            await asyncio.sleep(self.pace)
            yield Reasoning(f"thought {n} ")
        yield "The answer."
        yield Finished("stop", 10, 5, reasoning_tokens=321)


@pytest.mark.simcord(settle_timeout=0.5)
@pytest.mark.parametrize("chat_model", [ThinkingModel(thoughts=8, pace=1.5)])
async def test_while_the_model_thinks_the_member_sees_it_then_the_answer_replaces_it(world):
    env = world.env
    env.backend.create_message(world.channel.id, world.alice.id, f"{world.bot_mention} hmm")

    for _ in range(150):  # 15 virtual seconds, in steps of 0.1
        await env.advance_time(0.1)
    contents = [
        r.json.get("content", "")
        for r in env.http_requests
        if r.method in ("POST", "PATCH") and "/messages" in r.path and r.json
    ]

    thinking = [c for c in contents if "Thinking…" in c]
    assert len(thinking) >= 3  # updated at the normal edit pace
    assert any(" 1 s" in c or " 2 s" in c for c in thinking)
    assert all("thought" not in c for c in contents)
    final = world.bot_messages()[0].content
    assert final.startswith("The answer.") and "Thinking…" not in final
    # From its first thought (1.5 s in) to its answer (12 s in).
    assert "Thought for 10 s (321 reasoning tokens)." in final


@pytest.mark.parametrize("config_overrides", [family("o4-mini")])
async def test_moderators_set_a_channels_reasoning_effort_and_info_shows_it(world, llm_server):
    result = await world.mod.slash(world.channel, "settings effort", level="high")
    await world.alice.send(world.channel, f"{world.bot_mention} think hard")
    info = await world.alice.slash(world.channel, "info")
    offered = await world.mod.autocomplete(world.channel, "model", "name", "o4")
    await world.mod.slash(world.channel, "settings effort", level="default")
    await world.alice.send(world.channel, f"{world.bot_mention} think normally")

    assert result.response.content == text("en-US", "settings.effort_set", effort="high")
    assert llm_server.requests[0]["reasoning_effort"] == "high"
    assert "reasoning_effort" not in llm_server.requests[1]
    assert text("en-US", "info.reasoning", effort="high") in info.response.content
    assert [c["name"] for c in offered] == ["o4-mini — reasoning; effort: high"]


async def test_members_cannot_change_a_channels_settings(world):
    assert "settings" not in " ".join(world.alice.available_commands(world.channel))
