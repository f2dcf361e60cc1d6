"""Every failure is one friendly sentence, and leaves the conversation as it was."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import pytest

from bot.errors import ModelTimedOut
from tests.fake_openai import (
    Reply,
    context_too_long,
    rate_limited,
    server_error,
    unauthorized,
)
from tests.scripted_model import ScriptedModel

SENTENCES = {
    "rate-limited": (
        rate_limited("20"),
        "The model is rate-limited; try again in about 20 seconds.",
    ),
    "context": (
        context_too_long(),
        "This conversation is too long for the model even after dropping old rounds; "
        "ask a shorter question or use /reset.",
    ),
    "auth": (
        unauthorized(),
        "The model server rejected the bot's API key; the bot's owner needs to fix it.",
    ),
    "server": (server_error(), "The model server had an error; please try again in a moment."),
    "interrupted": (
        Reply(text="The beginning of an answer that", chunk_size=4, cut_after=3),
        "The answer was cut off before it finished and was not saved; please ask again.",
    ),
    "empty": (Reply(text=""), "The model returned an empty answer; please try again or rephrase."),
}


@pytest.mark.parametrize("case", SENTENCES)
async def test_a_failed_mention_is_explained_in_one_sentence_and_stores_nothing(
    world, llm_server, case
):
    reply, sentence = SENTENCES[case]
    llm_server.then(Reply(text="A fine first answer."))
    await world.alice.send(world.channel, f"{world.bot_mention} first")
    llm_server.then(*([reply] * 5))

    await world.alice.send(world.channel, f"{world.bot_mention} second")

    last = world.bot_messages()[-1].content
    assert last.endswith(f"⚠️ {sentence}")
    assert "Traceback" not in last and "⏳" not in last
    history = await world.env.bot.service.history(world.channel.id, 10)
    assert [r.question.content for r in history] == ["first"]
    llm_server.script.clear()
    llm_server.then(Reply(text="Working again."))
    await world.alice.send(world.channel, f"{world.bot_mention} third")
    assert world.bot_messages()[-1].content == "Working again."


async def test_a_failed_slash_ask_keeps_the_question_and_explains(world, llm_server):
    llm_server.then(rate_limited("5"))

    result = await world.alice.slash(world.channel, "ask", question="Will this work?")

    assert result.response.content == (
        f"{world.alice.mention} asked:\n> Will this work?\n\n"
        "⚠️ The model is rate-limited; try again in about 5 seconds."
    )


@pytest.mark.parametrize("config_overrides", [{"context_window": 600, "max_tokens": 100}])
async def test_a_question_too_long_for_the_model_is_refused_without_a_call(world, llm_server):
    result = await world.alice.slash(world.channel, "ask", question="word " * 790)

    assert llm_server.requests == []
    assert "That question is too long for the model" in result.response.content
    assert "please shorten it." in result.response.content


@pytest.mark.parametrize("chat_model", [ScriptedModel(error=ModelTimedOut("too slow"))])
async def test_a_model_timeout_is_explained(world):
    # The real stalled-stream deadline is proven with the real client in tests/test_llm.py;
    # here the edge's rendering of it.
    await world.alice.send(world.channel, f"{world.bot_mention} hello?")

    assert world.bot_messages()[-1].content == (
        "⚠️ The model took too long to answer; please try again."
    )


@dataclass
class ClosedServer:
    base_url: str


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there once the probe is closed


@pytest.mark.parametrize("llm_server", [ClosedServer(closed_port_url())])
async def test_an_unreachable_model_server_is_explained(world):
    await world.alice.send(world.channel, f"{world.bot_mention} anyone there?")

    assert world.bot_messages()[-1].content == (
        "⚠️ I can't reach the model server right now; please try again in a few minutes."
    )


async def test_an_unexpected_error_is_logged_once_and_answered_politely(
    world, simcord_bot, monkeypatch, caplog
):
    async def broken(channel_id: int):
        raise RuntimeError("a bug with an internal detail")

    monkeypatch.setattr(simcord_bot.service, "usage", broken)

    result = await world.alice.slash(world.channel, "usage")

    assert result.ephemeral
    assert result.response.content == "Something went wrong on my side; please try again."
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "/usage" in errors[0].getMessage()
    assert "internal detail" not in result.response.content
