"""Answers turns forever, to be SIGKILLed by tests/test_crash.py.

It prints READY once serving, then `COMPLETE <channel> <question>` for every answer the moment
`ChatService.ask` reports it — after the turn is committed, which is when the Discord edge makes
its final edit showing the answer as complete. Beside them, one worker writes turns with an image
straight into the store (schema 5: the record in messages, the bytes in blobs, the link in
message_blobs), half of them a new image and half an image stored already.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from contextlib import aclosing

import openai

from bot.chat import Answer, ChatService, Question
from bot.conversation import Attachment, Message
from bot.llm import OpenAIChatModel
from bot.storage.sqlite import SQLiteStore, TurnRecord
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

        async def with_images() -> None:
            for n in range(10**9):
                data = f"image {n // 2} of {os.getpid()}".encode() * 2000  # each one twice
                digest = hashlib.sha256(data).hexdigest()
                picture = Attachment("i.png", "image", "image/png", len(data), digest, 85)
                text = f"p{os.getpid()}-image-n{n}"
                await store.add_turn(
                    TurnRecord(
                        channel_id=9,
                        model="m",
                        question=Message("user", text, 3, 1, "w", attachments=(picture,)),
                        answer=Message("assistant", "seen", 1),
                        prompt_tokens=1,
                        completion_tokens=1,
                        blobs={digest: data},
                    )
                )
                print(f"COMPLETE 9 {text}", flush=True)

        await asyncio.gather(*(worker(w) for w in range(8)), with_images())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
