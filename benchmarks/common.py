"""What the benchmarks share: the configuration, the stand-in server, a turn, figures."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import openai

from bot.chat import Answer, ChatConfig, ChatService, Question
from bot.llm import OpenAIChatModel, open_client
from bot.settings import Settings
from bot.storage.sqlite import SQLiteStore

CONFIG = ChatConfig(
    model="gpt-4o-mini",
    models=("gpt-4o-mini",),
    max_tokens=512,
    context_window=16_000,
    max_rounds=5,
    temperature=0.0,
    top_p=1.0,
    system_prompt="You are a helpful assistant.",
    # The benchmarks measure the queue itself, not its caps.
    max_waiting_per_channel=1000,
    max_waiting_per_member=100,
)


@dataclass
class Row:
    figure: str
    result: str
    target: str
    details: dict[str, object] = field(default_factory=dict)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(samples: list[float], unit: float = 1e3) -> dict[str, float]:
    """p50/p99 in milliseconds (unit=1e3) or microseconds (unit=1e6), and the sample count."""
    return {
        "p50": percentile(samples, 0.5) * unit,
        "p99": percentile(samples, 0.99) * unit,
        "n": len(samples),
    }


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@asynccontextmanager
async def stand_in(
    latency: float = 0.0, *, text: str | None = None, chunk: int = 8
) -> AsyncIterator[str]:
    """A stand-in model server in its own process; yields its base URL.

    It echoes the question, or with `text` answers that text in events of `chunk` characters.
    """
    answer = ["--echo"] if text is None else ["--text", text, "--chunk", str(chunk)]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_openai", *answer, "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.to_thread(process.stdout.readline)
        yield f"http://127.0.0.1:{int(line.split()[1])}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


# The model client's HTTP stack (HTTP_BACKEND): the settings' default unless `--http-backend`.
HTTP_BACKEND: str = str(Settings.model_fields["http_backend"].default)


@asynccontextmanager
async def client_for(url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    """The client the bot would make (bot.llm.open_client), on `HTTP_BACKEND`."""
    async with open_client(
        api_key="sk-bench", base_url=url, max_retries=0, timeout=60, http_backend=HTTP_BACKEND
    ) as client:
        yield client


@asynccontextmanager
async def chat_service(url: str, database: Path) -> AsyncIterator[ChatService]:
    """A ChatService over a new client to the stand-in and a store at `database`."""
    async with client_for(url) as client, SQLiteStore.open(database) as store:
        yield ChatService(store, OpenAIChatModel(client, answer_deadline=60), CONFIG)


async def turn(service: ChatService, channel: int, text: str, user: int = 1) -> Answer:
    final = None
    async with aclosing(service.ask(Question(channel, user, f"user{user}", text))) as events:
        async for event in events:
            if isinstance(event, Answer):
                final = event
    assert final is not None
    return final


async def timed(work: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started
