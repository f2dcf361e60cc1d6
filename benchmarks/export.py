"""/export of a long conversation: peak memory and time, the old way and the new.

    .venv/bin/python -m benchmarks.export [--rounds 20000] [--keep DIR]

Builds a conversation of 20,000 rounds (questions of 0.2–1.2 KB, answers of 3–8 KB of varied
prose: a Markdown file of about 116 MiB) in a temporary SQLite file, then runs each variant in a
fresh Python process and reports its peak RSS growth (`ru_maxrss` after the export minus before
it), its wall time and the longest stall of the event loop meanwhile (a 5 ms ticker's lateness:
how long every other channel would have waited). Nothing is asserted.

- old: the code /export ran before (copied below): every row in one list, the whole document
  in one string, encoded into one `BytesIO` — whatever its size.
- new: `build_export` over `SQLiteStore.export_pages`, for a given upload limit: the file
  /export sends (Markdown, zip, or the newest rounds that fit, zipped).
- pages only: the same pages read and dropped. The store's page cache (`PRAGMA cache_size`,
  32 MB) fills as they are read, as it does in any bot that has run a while; the new variants'
  growth beyond this row is the export's own.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import aclosing
from pathlib import Path

import aiosqlite

from benchmarks.__main__ import insert_rows
from bot.conversation import Message
from bot.storage.sqlite import SQLiteStore, StoredMessage
from cogs._export import MIB, build_export, upload_size

CHANNEL = 1
LIMITS = {"new, 10 MiB limit": 10 * MIB, "new, 50 MiB limit": 50 * MIB, "new, no limit": 1 << 40}


# -- the conversation -----------------------------------------------------------------------


def prose(rng: random.Random) -> list[str]:
    """20,000 sentences over a Zipf-weighted vocabulary of 5,000 words: compresses like text."""
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = [1 / (n + 1) for n in range(len(letters))]
    words = ["".join(rng.choices(letters, weights, k=rng.randint(2, 9))) for _ in range(5000)]
    rank = [1 / (n + 1) for n in range(len(words))]
    sentences = []
    for _ in range(20_000):
        chosen = rng.choices(words, rank, k=rng.randint(6, 22))
        sentences.append(" ".join(chosen).capitalize() + rng.choice([".", ".", ".", "?", ":"]))
    return sentences


def text_of(rng: random.Random, sentences: Sequence[str], size: int) -> str:
    parts: list[str] = []
    length = 0
    while length < size:
        part = rng.choice(sentences)
        if rng.random() < 0.03:
            part = f"\n\n```python\nprint({part!r})\n```\n\n"
        elif rng.random() < 0.1:
            part += "\n\n"
        parts.append(part)
        length += len(part) + 1
    return " ".join(parts)[:size]


def populate(path: Path, rounds: int) -> None:
    """Bulk-load one channel's conversation into a database whose schema the store made."""
    rng = random.Random(20_000)
    sentences = prose(rng)
    db = sqlite3.connect(path)
    now = time.time() - rounds * 60
    with db:
        for start in range(0, rounds, 1000):
            turns, messages = [], []
            for turn_id in range(start + 1, min(start + 1000, rounds) + 1):
                at = now + turn_id * 60
                question = text_of(rng, sentences, rng.randint(200, 1200))
                answer = text_of(rng, sentences, rng.randint(3000, 8000))
                turns.append((turn_id, CHANNEL, 7, "gpt-4o-mini", 900, 1200, at))
                messages.append((CHANNEL, turn_id, "user", 7, "Alice", question, 200, at))
                messages.append((CHANNEL, turn_id, "assistant", None, None, answer, 1200, at))
            insert_rows(db, turns, messages)
    db.close()


# -- the old way, as /export ran it before ------------------------------------------------


def old_export_markdown(channel_id: int, messages: Sequence[StoredMessage]) -> str:
    lines = [f"# chatlab conversation in channel {channel_id}", ""]
    for stored in messages:
        message = stored.message
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(stored.created_at))
        speaker = (
            f"{message.author_name or 'someone'} ({message.author_id})"
            if message.role == "user"
            else "assistant"
        )
        lines += [f"## {speaker} — {when}", "", message.content, ""]
    return "\n".join(lines)


async def old_export(database: Path) -> tuple[str, int, int]:
    async with aiosqlite.connect(database) as db:
        cursor = await db.execute(
            "SELECT role, content, tokens, author_id, author_name, created_at FROM messages"
            " WHERE channel_id = ? ORDER BY id",
            (CHANNEL,),
        )
        rows = await cursor.fetchall()
    messages = [StoredMessage(Message(r[0], r[1], r[2], r[3], r[4]), created_at=r[5]) for r in rows]
    document = old_export_markdown(CHANNEL, messages)
    data = io.BytesIO(document.encode("utf-8"))
    return f"chatlab-{CHANNEL}.md", len(data.getbuffer()), len(messages) // 2


async def pages_only(database: Path) -> tuple[str, int, int]:
    async with SQLiteStore.open(database) as store:
        messages = 0
        async with aclosing(store.export_pages(CHANNEL)) as pages:
            async for page in pages:
                messages += len(page)
        return "-", 0, messages // 2


async def new_export(database: Path, limit: int) -> tuple[str, int, int]:
    async with SQLiteStore.open(database) as store:
        with tempfile.TemporaryDirectory(prefix="chatlab-export-") as directory:
            async with aclosing(store.export_pages(CHANNEL)) as pages:
                exported = await build_export(pages, CHANNEL, Path(directory), limit)
            assert exported.path is not None
            return exported.filename, exported.path.stat().st_size, exported.rounds


# -- one variant in this process ------------------------------------------------------------


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def run_variant(variant: str, database: Path) -> dict[str, object]:
    stall = 0.0

    async def ticker() -> None:
        nonlocal stall
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.005)
            stall = max(stall, loop.time() - before - 0.005)

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    before = peak_rss_mib()
    started = time.perf_counter()
    if variant == "old":
        filename, size, rounds = await old_export(database)
    elif variant == "pages only":
        filename, size, rounds = await pages_only(database)
    else:
        filename, size, rounds = await new_export(database, LIMITS[variant])
    elapsed = time.perf_counter() - started
    await asyncio.sleep(0.02)  # the ticker sees a stall only once the loop is free again
    ticking.cancel()
    return {
        "variant": variant,
        "file": filename,
        "bytes": size,
        "rounds": rounds,
        "rss_growth_mib": peak_rss_mib() - before,
        "seconds": elapsed,
        "stall_ms": stall * 1000,
    }


# -- the table ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the database in this folder")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # one variant, in a child process
    parser.add_argument("--database", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(asyncio.run(run_variant(args.variant, args.database))))
        return

    with tempfile.TemporaryDirectory(prefix="chatlab-bench-") as scratch:
        folder = args.keep or Path(scratch)
        database = folder / f"export-{args.rounds}.db"
        if not database.exists():
            started = time.perf_counter()
            asyncio.run(_create(database))
            populate(database, args.rounds)
            print(f"built {args.rounds:,} rounds in {time.perf_counter() - started:.1f} s")
        rows = []
        for variant in ("old", *LIMITS, "pages only"):
            command = [sys.executable, "-m", "benchmarks.export", "--variant", variant]
            child = subprocess.run(
                [*command, "--database", str(database)],
                check=True,
                capture_output=True,
                text=True,
            )
            rows.append(json.loads(child.stdout))
    print(f"\n/export of {args.rounds:,} rounds (one fresh process per variant)\n")
    header = f"{'variant':<20} {'file sent':<26} {'size':>10} {'rounds':>13} "
    print(header + f"{'peak RSS':>10} {'time':>7} {'loop stall':>11}")
    for row in rows:
        size = upload_size(int(row["bytes"])) if row["bytes"] else "-"
        held = f"{row['rounds']:,}/{args.rounds:,}"
        print(
            f"{row['variant']:<20} {row['file']:<26} {size:>10} {held:>13} "
            f"{row['rss_growth_mib']:>+7.1f} MiB {row['seconds']:>6.2f}s "
            f"{row['stall_ms']:>8.1f} ms"
        )


async def _create(database: Path) -> None:
    async with SQLiteStore.open(database):
        pass  # the store makes the schema


if __name__ == "__main__":
    main()
