"""chatlab against the floor: the least any client can spend on the same work, in the same run.

The floor is a raw aiohttp POST of the same body and a line-by-line parse of the SSE answer
(orjson when installed, else json), against the same stand-in server in another process. For
the process figures (RSS, start-up), the floor is a process that imports discord.py and openai
and constructs a `commands.Bot` and an `AsyncOpenAI` client. Nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai

from benchmarks import common
from benchmarks.common import CONFIG, Row, chat_service, client_for, turn
from bot.conversation import user_content
from bot.storage.sqlite import TurnRecord

try:
    import orjson

    loads: Callable[[bytes], Any] = orjson.loads
    PARSER = "orjson"
except ImportError:  # pragma: no cover - depends on the environment
    loads = json.loads
    PARSER = "json"

WORD = "tok "  # one token's worth of answer: 4 characters
SHORT, LONG = 20, 300  # events per answer (one per token, as a real server streams)
CONCURRENCY = 32
MODELS = "gpt-4o-mini,gpt-4"


def answer_text(events: int) -> str:
    return WORD * events


# -- the floor's client --------------------------------------------------------------------


def prompt_body(question: str) -> bytes:
    """The body a turn sends once its channel has a full window (system + 5 rounds + question)."""
    messages = [{"role": "system", "content": CONFIG.system_prompt}]
    for n in range(CONFIG.max_rounds):
        asked = user_content("user1", f"question {n}", 1)
        messages.append({"role": "user", "content": asked})
        messages.append({"role": "assistant", "content": f"answer {n}"})
    messages.append({"role": "user", "content": user_content("user1", question, 1)})
    body = {
        "model": CONFIG.model,
        "messages": messages,
        "max_tokens": CONFIG.max_tokens,
        "temperature": CONFIG.temperature,
        "top_p": CONFIG.top_p,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    return json.dumps(body).encode()


async def raw_turn(session: aiohttp.ClientSession, url: str, question: str) -> str:
    """POST the body, read the SSE answer line by line, return the text (the floor's turn)."""
    parts: list[str] = []
    async with session.post(
        f"{url}/chat/completions",
        data=prompt_body(question),
        headers={"Content-Type": "application/json", "Authorization": "Bearer sk-bench"},
    ) as response:
        response.raise_for_status()
        async for line in response.content:
            if not line.startswith(b"data: "):
                continue
            data = line[6:].strip()
            if data == b"[DONE]":
                break
            for choice in loads(data)["choices"]:
                piece = choice["delta"].get("content")
                if piece:
                    parts.append(piece)
    return "".join(parts)


def floor_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


async def sdk_turn(client: openai.AsyncOpenAI, question: str) -> str:
    """The same turn through the SDK's documented streaming surface and nothing else: what a
    client keeping the SDK cannot spend less than (`with_streaming_response`, the body as it is
    through `extra_body`, `iter_lines`, the floor's JSON parse; no store, no service)."""
    body = json.loads(prompt_body(question))
    model = body.pop("model")
    del body["stream"]
    parts: list[str] = []
    async with client.chat.completions.with_streaming_response.create(
        model=model, messages=[], stream=True, extra_body=body
    ) as response:
        async for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                break
            for choice in loads(line[6:])["choices"]:
                piece = choice["delta"].get("content")
                if piece:
                    parts.append(piece)
    return "".join(parts)


# -- CPU per turn --------------------------------------------------------------------------


async def cpu_per_turn(one: Callable[[int, int], Awaitable[str]], turns: int) -> float:
    """CPU seconds of this process (all its threads) per turn, `CONCURRENCY` turns at a time."""
    pending = iter(range(turns))

    async def worker(w: int) -> None:
        for n in pending:
            await one(w, n)

    await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))  # warm-up: the same again
    pending = iter(range(turns))
    cpu = time.process_time()
    await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))
    return (time.process_time() - cpu) / turns


async def cpu_figures(short_url: str, long_url: str, tmp: Path, turns: int) -> dict[str, float]:
    """CPU per turn of chatlab, of the floor and of the SDK alone, 20- and 300-event answers."""
    figures: dict[str, float] = {}
    for label, url, count in (("short", short_url, turns), ("long", long_url, turns // 3)):
        expected = answer_text(SHORT if label == "short" else LONG)
        async with chat_service(url, tmp / f"cpu-{label}-{time.monotonic_ns()}.db") as service:

            async def ours(w: int, n: int, service=service, expected=expected) -> str:
                answer = await turn(service, w * 1000 + n % 20, f"q{n}")
                assert answer.text == expected
                return answer.text

            figures[f"ours_{label}"] = await cpu_per_turn(ours, count)
        async with floor_session() as session:

            async def floor(w: int, n: int, session=session, url=url, expected=expected) -> str:
                text = await raw_turn(session, url, f"q{n}")
                assert text == expected
                return text

            figures[f"floor_{label}"] = await cpu_per_turn(floor, count)
        async with client_for(url) as client:

            async def sdk(w: int, n: int, client=client, expected=expected) -> str:
                text = await sdk_turn(client, f"q{n}")
                assert text == expected
                return text

            figures[f"sdk_{label}"] = await cpu_per_turn(sdk, count)
    for who in ("ours", "floor", "sdk"):
        figures[f"{who}_per_chunk"] = (figures[f"{who}_long"] - figures[f"{who}_short"]) / (
            LONG - SHORT
        )
    return figures


def cpu_rows(f: dict[str, float], turns: int) -> list[Row]:
    short = f["ours_short"] / f["floor_short"]
    long = f["ours_long"] / f["floor_long"]
    chunk = f["ours_per_chunk"] / f["floor_per_chunk"]
    return [
        Row(
            "CPU per turn, 20 events",
            f"{f['ours_short'] * 1e3:.2f} ms vs floor {f['floor_short'] * 1e3:.2f} ms = "
            f"×{short:.1f} ({CONCURRENCY} concurrent, n={turns}); the SDK alone "
            f"{f['sdk_short'] * 1e3:.2f} ms",
            "≤ 8× the floor",
            {
                "ours_ms": f["ours_short"] * 1e3,
                "floor_ms": f["floor_short"] * 1e3,
                "ratio": short,
                "sdk_ms": f["sdk_short"] * 1e3,
            },
        ),
        Row(
            "CPU per turn, 300 events",
            f"{f['ours_long'] * 1e3:.2f} ms vs floor {f['floor_long'] * 1e3:.2f} ms = "
            f"×{long:.1f}; {1 / f['ours_long']:.0f} turns per CPU-second "
            f"(floor {1 / f['floor_long']:.0f}; n={turns // 3}); the SDK alone "
            f"{f['sdk_long'] * 1e3:.2f} ms",
            "≤ 4× the floor; ≥ 150 turns per CPU-second",
            {
                "ours_ms": f["ours_long"] * 1e3,
                "sdk_ms": f["sdk_long"] * 1e3,
                "floor_ms": f["floor_long"] * 1e3,
                "ratio": long,
                "turns_per_cpu_s": 1 / f["ours_long"],
                "floor_turns_per_cpu_s": 1 / f["floor_long"],
            },
        ),
        Row(
            "CPU per streamed event",
            f"{f['ours_per_chunk'] * 1e6:.1f} µs vs floor {f['floor_per_chunk'] * 1e6:.1f} µs = "
            f"×{chunk:.1f} (300- minus 20-event turns, over 280 events); the SDK alone "
            f"{f['sdk_per_chunk'] * 1e6:.1f} µs",
            "≤ 15 µs",
            {
                "ours_us": f["ours_per_chunk"] * 1e6,
                "sdk_us": f["sdk_per_chunk"] * 1e6,
                "floor_us": f["floor_per_chunk"] * 1e6,
                "ratio": chunk,
            },
        ),
    ]


# -- fan-out -------------------------------------------------------------------------------


async def fan_out(url: str, tmp: Path, channels: int, events: int) -> Row:
    """`channels` questions at once, model latency 1 s: chatlab's wall time, the floor's, and
    the SDK's alone (`sdk_turn`), each on a new client (new connections)."""
    expected = answer_text(events)
    async with floor_session() as session:
        started, cpu = time.perf_counter(), time.process_time()
        texts = await asyncio.gather(*(raw_turn(session, url, f"q{c}") for c in range(channels)))
        floor_wall = time.perf_counter() - started
        floor_cpu = time.process_time() - cpu
    assert all(t == expected for t in texts)
    async with client_for(url) as client:
        started, cpu = time.perf_counter(), time.process_time()
        texts = await asyncio.gather(*(sdk_turn(client, f"q{c}") for c in range(channels)))
        sdk_wall = time.perf_counter() - started
        sdk_cpu = time.process_time() - cpu
    assert all(t == expected for t in texts)
    async with chat_service(
        url, tmp / f"fan-{channels}-{events}-{time.monotonic_ns()}.db"
    ) as service:
        started, cpu = time.perf_counter(), time.process_time()
        answers = await asyncio.gather(*(turn(service, c, f"q{c}", c) for c in range(channels)))
        wall = time.perf_counter() - started
        ours_cpu = time.process_time() - cpu
        stored = sum([len(await service.history(c, 5)) == 1 for c in range(channels)])
    correct = sum(a.text == expected for a in answers)
    target = {(200, SHORT): "≤ 1.3 s", (200, LONG): "≤ 2.0 s"}.get((channels, events), "≤ 2.5 s")
    return Row(
        f"fan-out {channels:,} × {events} events",
        f"wall {wall:.2f} s at 1 s latency vs floor {floor_wall:.2f} s = ×{wall / floor_wall:.2f};"
        f" client CPU {ours_cpu:.2f} s vs floor {floor_cpu:.2f} s;"
        f" the SDK alone {sdk_wall:.2f} s, CPU {sdk_cpu:.2f} s;"
        f" {correct}/{channels} correct, {stored}/{channels} stored",
        target,
        {
            "wall_s": wall,
            "floor_wall_s": floor_wall,
            "ratio": wall / floor_wall,
            "cpu_s": ours_cpu,
            "floor_cpu_s": floor_cpu,
            "sdk_wall_s": sdk_wall,
            "sdk_cpu_s": sdk_cpu,
        },
    )


# -- a process ready to connect ------------------------------------------------------------


def ready_process(kind: str, database: Path) -> tuple[float, float, str]:
    """Start `python -m benchmarks.startup <kind>`; (seconds to its READY line, its RSS in MB,
    the heavy optional modules it had imported by then, or "-")."""
    env = {
        **os.environ,
        "DISCORD_TOKEN": "bench-token",
        "OPENAI_API_KEY": "sk-bench",
        "MODEL": "gpt-4o-mini",
        "MODELS": MODELS,
        "DATABASE_PATH": str(database),
        "HTTP_BACKEND": common.HTTP_BACKEND,
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.startup", kind],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    elapsed = time.perf_counter() - started
    process.wait(timeout=30)
    word, rss, imported = line.split()
    if word != "READY" or process.returncode != 0:
        raise RuntimeError(f"the {kind} process did not get ready: {line!r}")
    return elapsed, float(rss), imported


async def ready_rows(tmp: Path, launches: int) -> list[Row]:
    """RSS ready to connect and start-up to ready, of the bot vs the floor, fresh processes."""
    figures: dict[str, list[float]] = {"bot_s": [], "bot_mb": [], "floor_s": [], "floor_mb": []}
    imported = "-"
    for n in range(launches + 1):  # interleaved; the first pair warms the file cache
        for kind in ("floor", "bot"):
            seconds, mb, heavy = await asyncio.to_thread(ready_process, kind, tmp / f"ready-{n}.db")
            if kind == "bot":
                imported = heavy
            if n:
                figures[f"{kind}_s"].append(seconds)
                figures[f"{kind}_mb"].append(mb)
    m = {k: statistics.median(v) for k, v in figures.items()}
    return [
        Row(
            "RSS ready to connect",
            f"{m['bot_mb']:.1f} MB vs floor {m['floor_mb']:.1f} MB = "
            f"×{m['bot_mb'] / m['floor_mb']:.2f} (MODELS={MODELS}; median of {launches}; "
            f"Pillow/asyncpg/tiktoken imported: {'none' if imported == '-' else imported})",
            "≤ 1.2× the floor",
            {
                "bot_mb": m["bot_mb"],
                "floor_mb": m["floor_mb"],
                "ratio": m["bot_mb"] / m["floor_mb"],
                "heavy_imported": imported,
            },
        ),
        Row(
            "start-up to ready",
            f"{m['bot_s'] * 1e3:.0f} ms vs floor {m['floor_s'] * 1e3:.0f} ms = "
            f"×{m['bot_s'] / m['floor_s']:.2f} (median of {launches})",
            "≤ 1.2× the floor",
            {
                "bot_ms": m["bot_s"] * 1e3,
                "floor_ms": m["floor_s"] * 1e3,
                "ratio": m["bot_s"] / m["floor_s"],
            },
        ),
    ]


# -- trips to the database thread ----------------------------------------------------------


def count_trips(store: Any) -> list[int]:
    """Count the calls into aiosqlite's thread on the store's connection (see README)."""
    counter = [0]
    connection = store._db
    real = connection._execute

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        counter[0] += 1
        return await real(fn, *args, **kwargs)

    connection._execute = counted
    return counter


async def database_trips(url: str, tmp: Path, turns: int = 50) -> Row:
    async with chat_service(url, tmp / "trips.db") as service:
        store = service._store
        for n in range(5):
            await turn(service, n, "warm")
        counter = count_trips(store)
        for n in range(turns):
            await turn(service, n % 5, f"question {n}")
        per_turn = counter[0] / turns
        # What the store offers a turn: its context in one read, and the write.
        store_level: int | None = None
        if hasattr(store, "turn_context"):
            (last,) = await store.history(0, 1)
            counter[0] = 0
            await store.turn_context(0, None, CONFIG.max_rounds)
            await store.add_turn(TurnRecord(0, CONFIG.model, last.question, last.answer, 1, 1))
            store_level = counter[0]
    shown = "n/a (no turn_context)" if store_level is None else f"{store_level}"
    return Row(
        "database trips per turn",
        f"{per_turn:.1f} through ChatService (n={turns}); the store's turn_context + add_turn:"
        f" {shown}",
        "≤ 2",
        {"service_per_turn": per_turn, "store_per_turn": store_level},
    )
