"""chatlab's benchmarks: one command, one table (and JSON when asked). Nothing is asserted.

    .venv/bin/python -m benchmarks [--json results.json] [--profile profile.txt] [--quick]
                                   [--repeat 3] [--http-backend httpx|aiohttp]

The model is the loopback OpenAI-compatible stand-in (tests/fake_openai.py) in separate
processes, like a remote server whose CPU is not billed to the bot. Figures that depend on the
machine are given as ratios to a baseline measured in the same run, with p50, p99 and the number
of samples.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

from benchmarks import common, floor
from benchmarks.common import (
    CONFIG,
    Row,
    chat_service,
    client_for,
    rss_mb,
    stand_in,
    summary,
    timed,
    turn,
)
from bot.app import settle_collector
from bot.chat import ChatService
from bot.conversation import choose_window, user_content
from bot.llm import OpenAIChatModel
from bot.storage.sqlite import SQLiteStore


def insert_rows(db: sqlite3.Connection, turns: list[tuple], messages: list[tuple]) -> None:
    """Write prepared turns and messages straight into a chatlab database (to fill it fast)."""
    db.executemany(
        "INSERT INTO turns (id, channel_id, user_id, model, prompt_tokens,"
        " completion_tokens, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        turns,
    )
    db.executemany(
        "INSERT INTO messages (channel_id, turn_id, role, author_id, author_name,"
        " content, tokens, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        messages,
    )


# -- figures -------------------------------------------------------------------------------


async def turn_overhead(url: str, tmp: Path, samples: int) -> Row:
    # The baseline uses its own client; both are warmed up before measuring.
    async with client_for(url) as client, chat_service(url, tmp / "overhead.db") as service:
        # The same prompt a turn sends once a channel has five rounds of history.
        prompt = [{"role": "system", "content": CONFIG.system_prompt}]
        for n in range(CONFIG.max_rounds):
            asked = user_content("user1", f"question {n}", 1)
            prompt.append({"role": "user", "content": asked})
            prompt.append({"role": "assistant", "content": f"echo: {asked}"})
        prompt.append({"role": "user", "content": user_content("user1", "question", 1)})

        async def bare() -> None:
            stream = await client.chat.completions.create(
                model=CONFIG.model,
                messages=prompt,  # type: ignore[arg-type]
                max_tokens=CONFIG.max_tokens,
                stream=True,
                stream_options={"include_usage": True},
            )
            async with stream:
                async for _ in stream:
                    pass

        ours_samples, bare_samples = [], []
        for n in range(samples + 20):  # interleaved, after 20 warm-up pairs
            b = await timed(bare)
            o = await timed(lambda n=n: turn(service, n % 50, f"question {n}"))
            if n >= 20:
                bare_samples.append(b)
                ours_samples.append(o)
    ours, base = summary(ours_samples), summary(bare_samples)
    ratio = ours["p50"] / base["p50"]
    return Row(
        "turn overhead",
        f"p50 {ours['p50']:.2f} ms vs bare {base['p50']:.2f} ms = ×{ratio:.2f} "
        f"(p99 {ours['p99']:.2f} vs {base['p99']:.2f}; n={ours['n']})",
        "p50 ratio ≤ 1.3",
        {"ours_ms": ours, "bare_ms": base, "ratio_p50": ratio},
    )


def populate(path: Path, *, channels: int, turns_each: int, big_channel_turns: int) -> int:
    """Bulk-load a database (the schema made by SQLiteStore); returns messages written."""
    db = sqlite3.connect(path)
    now = time.time()
    turn_id = 0
    written = 0
    plan = [(c, turns_each) for c in range(10_000, 10_000 + channels)] + [(1, big_channel_turns)]
    with db:
        for channel, count in plan:
            turns, messages = [], []
            for _ in range(count):
                turn_id += 1
                turns.append((turn_id, channel, 1, CONFIG.model, 20, 10, now))
                messages.append((channel, turn_id, "user", 1, "user1", "a stored question", 8, now))
                messages.append(
                    (channel, turn_id, "assistant", None, None, "a stored answer", 4, now)
                )
            insert_rows(db, turns, messages)
            written += len(messages)
    db.close()
    return written


async def history_growth(url: str, tmp: Path, samples: int, scale: float) -> Row:
    big = tmp / "big.db"
    async with SQLiteStore.open(big):
        pass  # create the schema
    channels = int(10_000 * scale)
    written = populate(big, channels=channels, turns_each=45, big_channel_turns=int(50_000 * scale))
    async with (
        client_for(url) as client,
        SQLiteStore.open(tmp / "empty.db") as empty_store,
        SQLiteStore.open(big) as big_store,
    ):
        model = OpenAIChatModel(client, answer_deadline=60)
        empty = ChatService(empty_store, model, CONFIG)
        full = ChatService(big_store, model, CONFIG)
        base_s, crowd_s, hot_s = [], [], []
        for n in range(samples + 10):
            e = await timed(lambda n=n: turn(empty, 500 + n % 50, "q"))
            c = await timed(lambda: turn(full, 10_000 + random.randrange(channels), "q"))
            h = await timed(lambda: turn(full, 1, "q"))  # the channel holding 100,000
            if n >= 10:
                base_s.append(e)
                crowd_s.append(c)
                hot_s.append(h)
    base, crowd, hot = summary(base_s), summary(crowd_s), summary(hot_s)
    return Row(
        "history growth",
        f"{written:,} messages: ×{crowd['p50'] / base['p50']:.2f} (random channel of "
        f"{channels:,}), ×{hot['p50'] / base['p50']:.2f} (channel of "
        f"{int(100_000 * scale):,}) vs empty, p50 {base['p50']:.2f} ms (n={base['n']})",
        "p50 ratio ≤ 1.1",
        {
            "messages": written,
            "empty_ms": base,
            "random_channel_ms": crowd,
            "big_channel_ms": hot,
            "ratio_random": crowd["p50"] / base["p50"],
            "ratio_big": hot["p50"] / base["p50"],
        },
    )


async def busy_channel(url: str, tmp: Path, questions: int = 10, latency: float = 0.2) -> Row:
    async with chat_service(url, tmp / "busy.db") as service:
        started = time.perf_counter()
        await asyncio.gather(*(turn(service, 1, f"q{n}", n) for n in range(questions)))
        wall = time.perf_counter() - started
        order = [r.question.content for r in await service.history(1, questions)]
    in_order = order == [f"q{n}" for n in range(questions)]
    ideal = questions * latency
    return Row(
        "one busy channel",
        f"{questions} questions at {latency * 1e3:.0f} ms: wall {wall:.2f} s vs "
        f"{ideal:.2f} s = ×{wall / ideal:.2f}; in order: {in_order}",
        "≈ 10 × 200 ms, in order",
        {"wall_s": wall, "ratio": wall / ideal, "in_order": in_order},
    )


async def throughput(url: str, tmp: Path, turns: int, concurrency: int = 32) -> Row:
    async with chat_service(url, tmp / "tput.db") as service:
        queue = list(range(turns))

        async def worker(w: int) -> None:
            while queue:
                n = queue.pop()
                await turn(service, w * 1000 + n % 20, f"q{n}")

        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    per_cpu = turns / cpu
    return Row(
        "throughput",
        f"{turns / wall:.0f} turns/s wall at {concurrency} concurrent; "
        f"{per_cpu:.0f} turns per CPU-second of the bot process (n={turns})",
        "report; aim ≥ 300 per core",
        {"turns_per_s_wall": turns / wall, "turns_per_cpu_s": per_cpu, "turns": turns},
    )


async def memory(url: str, tmp: Path, channels: int) -> Row:
    async with chat_service(url, tmp / "memory.db") as service:
        for c in range(50):  # warm up: imports, caches, connection pool
            await turn(service, 10**9 + c, "warm")
        gc.collect()
        start = rss_mb()
        pending = iter(range(channels))

        async def worker() -> None:
            for c in pending:
                await turn(service, c, "one question")

        await asyncio.gather(*(worker() for _ in range(50)))
        after = rss_mb()
        gc.collect()
        idle = rss_mb()
        slots = service.busy_channels
    return Row(
        "memory",
        f"RSS +{after - start:.1f} MB after {channels:,} channels had a turn; "
        f"+{idle - start:.1f} MB once idle; per-channel slots left: {slots}",
        "≤ 50 MB growth; nothing per channel kept",
        {"start_mb": start, "after_mb": after, "idle_mb": idle, "slots_left": slots},
    )


async def window_choice(tmp: Path, samples: int) -> Row:
    path = tmp / "window.db"
    async with SQLiteStore.open(path):
        pass
    populate(path, channels=1, turns_each=5, big_channel_turns=5_000)  # channel 1: 10,000
    async with SQLiteStore.open(path) as store:
        big_s, small_s = [], []
        rows_read = 0
        for n in range(samples + 50):

            async def choose(channel: int) -> int:
                rounds = await store.history(channel, CONFIG.max_rounds)
                choose_window(rounds, budget=10_000, max_rounds=CONFIG.max_rounds)
                return len(rounds) * 2

            big = time.perf_counter()
            rows_read = await choose(1)
            big = time.perf_counter() - big
            small = await timed(lambda: choose(10_000))  # a channel of 10 messages
            if n >= 50:
                big_s.append(big)
                small_s.append(small)
    b, s = summary(big_s, 1e6), summary(small_s, 1e6)
    return Row(
        "window choice",
        f"{b['p50']:.0f} µs p50 (p99 {b['p99']:.0f}) for a channel of 10,000 messages vs "
        f"{s['p50']:.0f} µs for one of 10 = ×{b['p50'] / s['p50']:.2f}; rows read: {rows_read}",
        "report µs; must not read them all",
        {"big_us": b, "small_us": s, "rows_read": rows_read},
    )


async def discord_edge(url: str, tmp: Path, turns: int) -> Row:
    import simcord

    from bot.access import AccessPolicy
    from bot.client import ChatBot

    async with client_for(url) as client, SQLiteStore.open(tmp / "edge.db") as store:
        model = OpenAIChatModel(client, answer_deadline=60)
        core = ChatService(store, model, CONFIG)
        edge = ChatService(store, model, CONFIG)
        bot = ChatBot(service=edge, store=store, access=AccessPolicy())
        # The model client connects before the simulated Discord starts. simcord waits, after
        # each message, until every timer the bot's tasks started has run; aiohttp's connection
        # pool (HTTP_BACKEND=aiohttp) keeps one while a connection is idle (its keep-alive
        # clean-up), started by whichever request first returns a connection to the pool.
        await turn(core, 7, "connect")
        async with simcord.run(bot) as env:
            guild = env.create_guild()
            channel = guild.create_text_channel("bench")
            member = guild.add_member(env.create_user("bench"))
            mention = f"<@{env.bot.user.id}>"
            for n in range(5):
                await member.send(channel, f"{mention} warm {n}")
                await turn(core, 7, f"warm {n}")
            edge_cpu = core_cpu = 0.0
            for n in range(turns):  # interleaved
                cpu = time.process_time()
                await member.send(channel, f"{mention} question {n}")
                edge_cpu += time.process_time() - cpu
                cpu = time.process_time()
                await turn(core, 7, f"question {n}")
                core_cpu += time.process_time() - cpu
            answered = sum(1 for m in channel.history() if m.author.id == env.bot.user.id)
    ratio = edge_cpu / core_cpu
    return Row(
        "Discord edge",
        f"mention → streamed reply: {edge_cpu / turns * 1e3:.2f} ms CPU vs core turn "
        f"{core_cpu / turns * 1e3:.2f} ms = ×{ratio:.2f} (n={turns}; {answered} replies; "
        "includes simcord's simulated Discord)",
        "report ratio",
        {
            "edge_cpu_ms": edge_cpu / turns * 1e3,
            "core_cpu_ms": core_cpu / turns * 1e3,
            "ratio": ratio,
        },
    )


async def profile_turn(url: str, tmp: Path, path: Path) -> None:
    from pyinstrument import Profiler

    async with chat_service(url, tmp / "profile.db") as service:
        for n in range(20):
            await turn(service, n, "warm")
        profiler = Profiler(async_mode="enabled", interval=0.0002)
        with profiler:
            for n in range(300):
                await turn(service, n % 30, f"question {n}")
    path.write_text(profiler.output_text(unicode=True, show_all=False))


Step = Callable[[], Awaitable[Row | list[Row]]]


async def main(args: argparse.Namespace) -> list[Row]:
    quick = args.quick
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="chatlab-bench-") as tmpdir:
        tmp = Path(tmpdir)
        async with AsyncExitStack() as stack:

            async def server(latency: float, events: int | None = None) -> str:
                text = None if events is None else floor.answer_text(events)
                return await stack.enter_async_context(stand_in(latency, text=text, chunk=4))

            fast = await server(0.0)
            paced = await server(0.2)
            short, long = await server(0.0, floor.SHORT), await server(0.0, floor.LONG)
            slow_short, slow_long = await server(1.0, floor.SHORT), await server(1.0, floor.LONG)
            cpu_turns = 600 if quick else 3000

            async def cpu() -> list[Row]:
                figures = await floor.cpu_figures(short, long, tmp, cpu_turns)
                return floor.cpu_rows(figures, cpu_turns)

            def fan(url: str, channels: int, events: int) -> Awaitable[Row]:
                return floor.fan_out(url, tmp, channels, events)

            # (name, step, key): key figures are measured `--repeat` times, with their spread.
            steps: list[tuple[str, Step, bool]] = [
                ("CPU against the floor", cpu, True),
                ("fan-out 200 × 20", lambda: fan(slow_short, 200, floor.SHORT), True),
                ("fan-out 200 × 300", lambda: fan(slow_long, 200, floor.LONG), True),
                ("fan-out 1,000", lambda: fan(slow_short, 1000, floor.SHORT), True),
                ("ready to connect", lambda: floor.ready_rows(tmp, 2 if quick else 5), True),
                ("database trips", lambda: floor.database_trips(fast, tmp), False),
                ("turn overhead", lambda: turn_overhead(fast, tmp, 100 if quick else 400), False),
                (
                    "history growth",
                    lambda: history_growth(fast, tmp, 50 if quick else 200, 0.1 if quick else 1),
                    False,
                ),
                ("one busy channel", lambda: busy_channel(paced, tmp), False),
                ("throughput", lambda: throughput(fast, tmp, 500 if quick else 3000), False),
                ("memory", lambda: memory(fast, tmp, 1000 if quick else 10_000), False),
                ("window choice", lambda: window_choice(tmp, 200 if quick else 1000), False),
                ("Discord edge", lambda: discord_edge(fast, tmp, 30 if quick else 150), False),
            ]
            for name, step, key in steps:
                runs: list[list[Row]] = []
                for n in range(args.repeat if key else 1):
                    print(f"… {name}" + (f" ({n + 1})" if key else ""), file=sys.stderr, flush=True)
                    result = await step()
                    runs.append(result if isinstance(result, list) else [result])
                rows.extend(spread(runs))
            if args.profile:
                print("… profile", file=sys.stderr, flush=True)
                await profile_turn(fast, tmp, Path(args.profile))
    return rows


def spread(runs: list[list[Row]]) -> list[Row]:
    """One row per figure: the run with the median ratio, followed by every run's figures."""
    if len(runs) == 1:
        return runs[0]
    rows = []
    for same in zip(*runs, strict=True):
        ordered = sorted(same, key=lambda r: float(r.details["ratio"]))  # type: ignore[arg-type]
        middle = ordered[len(ordered) // 2]
        first = next(iter(middle.details))  # each row's own figure comes first
        values = ", ".join(f"{r.details[first]:.4g} (×{r.details['ratio']:.2f})" for r in same)
        details = {**middle.details, "runs": [r.details for r in same]}
        result = f"{middle.result}; {len(same)} runs, {first}: {values}"
        rows.append(Row(middle.figure, result, middle.target, details))
    return rows


def run() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--profile", help="profile the core turn with pyinstrument into this file")
    parser.add_argument("--quick", action="store_true", help="fewer samples, smaller database")
    parser.add_argument(
        "--repeat", type=int, default=1, help="measure the key figures this many times (spread)"
    )
    parser.add_argument(
        "--http-backend",
        choices=("httpx", "aiohttp"),
        default=common.HTTP_BACKEND,
        help=f"the model client's HTTP stack (HTTP_BACKEND; default {common.HTTP_BACKEND})",
    )
    parser.add_argument(
        "--collector",
        choices=("bot", "python"),
        default="bot",
        help="the cyclic garbage collector as `python -m bot` sets it once set up (default;"
        " bot.app.settle_collector), or Python's default; the floor runs in the same process",
    )
    args = parser.parse_args()
    common.HTTP_BACKEND = args.http_backend
    if args.collector == "bot":
        settle_collector()
    started = time.perf_counter()
    rows = asyncio.run(main(args))
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"HTTP_BACKEND={common.HTTP_BACKEND}, collector: "
        + ("as the bot's" if args.collector == "bot" else "Python's default")
    )
    width = max(len(r.figure) for r in rows)
    print(f"chatlab benchmarks — {machine} — {time.perf_counter() - started:.0f} s")
    print(f"{'figure'.ljust(width)}  result  [target]")
    for row in rows:
        print(f"{row.figure.ljust(width)}  {row.result}  [{row.target}]")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"machine": machine, "figures": {r.figure: r.details for r in rows}},
                indent=2,
                default=str,
            )
        )


if __name__ == "__main__":
    run()
