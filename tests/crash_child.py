"""Answers turns forever, to be SIGKILLed by tests/test_crash.py.

It prints READY once serving, then `COMPLETE <channel> <question>` for every answer the moment
`ChatService.ask` reports it — after the turn is committed, which is when the Discord edge makes
its final edit showing the answer as complete.
"""

from __future__ import annotations

import asyncio
import os
import sys
from contextlib import aclosing

import openai

from bot.chat import Answer, ChatService, Question
from bot.llm import OpenAIChatModel
from bot.storage.sqlite import SQLiteStore
from tests.conftest import make_config
from tests.fake_openai import FakeOpenAI, Reply


async def main(database: str) -> None:
    async with (
        FakeOpenAI(Reply(echo=True, chunk_size=3)) as server,
        openai.AsyncOpenAI(api_key="sk-test", base_url=server.base_url, max_retries=0) as client,
        SQLiteStore.open(database) as store,
    ):
        service = ChatService(store, OpenAIChatModel(client, answer_deadline=10), make_config())
        print("READY", flush=True)

        async def worker(number: int) -> None:
            for n in range(10**9):
                channel = number % 4
                text = f"p{os.getpid()}-w{number}-n{n}"
                async with aclosing(service.ask(Question(channel, number, "w", text))) as events:
                    async for event in events:
                        if isinstance(event, Answer):
                            print(f"COMPLETE {channel} {text}", flush=True)

        await asyncio.gather(*(worker(w) for w in range(8)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
