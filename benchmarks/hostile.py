"""A hostile model server: it ignores max_tokens and streams a huge answer.

    python -m benchmarks.hostile [--megabytes 10]

Streams the answer through ChatService and StreamedReply (an in-memory sink standing in for
Discord, edits paced at the usual once a second) while a ticker measures how long the event loop
was blocked at a stretch — what every other channel of the bot would feel. Prints the longest
stall, the wall time, and how much of the answer was stored. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
from contextlib import aclosing
from pathlib import Path

import openai

from benchmarks.__main__ import CONFIG
from bot.chat import Answer, ChatService, Delta, Question
from bot.llm import OpenAIChatModel
from bot.storage.sqlite import SQLiteStore
from cogs._reply import StreamedReply
from tests.fake_openai import FakeOpenAI, Reply
from tests.screen import Screen


async def longest_stall(stop: asyncio.Event, tick: float = 0.01) -> float:
    loop = asyncio.get_running_loop()
    worst = 0.0
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(tick)
        worst = max(worst, loop.time() - before - tick)
    return worst


async def run(megabytes: float) -> None:
    text = ("All work and no play makes a dull answer. " * 30 + "\n\n") * int(
        megabytes * 1024 * 1024 / 1262
    )
    config = dataclasses.replace(CONFIG, max_tokens=1024, context_window=128_000)
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            FakeOpenAI(Reply(text=text, chunk_size=8192)) as server,
            openai.AsyncOpenAI(
                api_key="sk-bench", base_url=server.base_url, max_retries=0
            ) as client,
            SQLiteStore.open(Path(tmp) / "hostile.db") as store,
        ):
            service = ChatService(store, OpenAIChatModel(client, answer_deadline=600), config)
            reply: StreamedReply[int] = StreamedReply(Screen())
            stop = asyncio.Event()
            ticker = asyncio.create_task(longest_stall(stop))
            started = time.perf_counter()
            stored = 0
            async with aclosing(service.ask(Question(1, 1, "Ann", "write a lot"))) as events:
                async for event in events:
                    if isinstance(event, Delta):
                        await reply.add(event.text)
                    elif isinstance(event, Answer):
                        await reply.finish(event.text)
                        stored = len(event.text)
            wall = time.perf_counter() - started
            stop.set()
            stall = await ticker
    print(f"server streamed   {len(text) / 2**20:.1f} MiB in 8 KiB chunks")
    print(f"longest stall     {stall * 1000:.0f} ms (event loop blocked at a stretch)")
    print(f"wall time         {wall:.2f} s")
    print(f"answer stored     {stored:,} characters")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=10.0)
    asyncio.run(run(parser.parse_args().megabytes))


if __name__ == "__main__":
    main()
