"""Secrets never reach logs or Discord: recognisable fake secrets, every log line searched."""

from __future__ import annotations

import json
import logging

import openai
import pytest

from bot.llm import OpenAIChatModel
from tests.fake_openai import Reply, rate_limited, server_error, unauthorized

API_KEY = "sk-FAKE-SECRET-0123456789abcdef"


@pytest.fixture
async def openai_client(llm_server):
    async with openai.AsyncOpenAI(
        api_key=API_KEY, base_url=llm_server.base_url, max_retries=1, timeout=5
    ) as client:
        yield client


@pytest.fixture
def chat_model(openai_client):
    return OpenAIChatModel(openai_client, answer_deadline=5)


@pytest.fixture
def everything_logged(caplog):
    caplog.set_level(logging.DEBUG)  # every logger, every level
    return caplog


async def test_the_api_key_appears_in_no_log_line_and_no_message(
    everything_logged, world, llm_server
):
    llm_server.then(
        Reply(text="fine"),
        unauthorized(),
        server_error(),
        server_error(),
        rate_limited("1"),
        rate_limited("1"),
        Reply(text="abc", cut_after=0),
    )
    for n in range(5):
        await world.alice.send(world.channel, f"{world.bot_mention} question {n} {API_KEY[:6]}")
    await world.alice.slash(world.channel, "ask", question="and via slash")
    await world.alice.slash(world.channel, "usage")

    assert llm_server.requests  # the key was really used, against the stand-in
    logged = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.args!r}"
        for phase in ("setup", "call")
        for r in everything_logged.get_records(phase)
    )
    assert len(logged) > 1000
    assert API_KEY not in logged and API_KEY[3:] not in logged
    sent = json.dumps([r.json for r in world.env.http_requests], default=str)
    assert API_KEY not in sent
