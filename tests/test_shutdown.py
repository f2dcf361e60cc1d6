"""SIGTERM: take no new questions, let answers in flight finish, then close the bot."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from bot.__main__ import _stop_on_signals
from bot.chat import Question
from bot.errors import ShuttingDown
from tests.conftest import ask_events


class ClosingBot:
    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def close(self) -> None:
        self.closed.set()


async def test_sigterm_waits_for_answers_in_flight_then_closes(service, llm_server):
    bot = ClosingBot()
    llm_server.gate.clear()
    question = Question(1, 7, "Ann", "a question in flight")

    in_flight = asyncio.create_task(ask_events(service, question))
    await llm_server.wait_for_requests(1)
    stopped = _stop_on_signals(bot, service, grace=5)  # type: ignore[arg-type]
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(50):
            await asyncio.sleep(0)

        assert not bot.closed.is_set()  # still answering
        with pytest.raises(ShuttingDown):
            await ask_events(service, Question(2, 7, "Ann", "a new question"))
        llm_server.gate.set()
        await asyncio.wait_for(stopped, timeout=5)

        assert bot.closed.is_set()
        assert (await in_flight)[-1].text  # the answer in flight was finished and stored
        assert len(await service.history(1, 10)) == 1
    finally:
        loop = asyncio.get_running_loop()
        loop.remove_signal_handler(signal.SIGTERM)
        loop.remove_signal_handler(signal.SIGINT)
