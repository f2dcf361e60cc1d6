"""What an image in a conversation costs: the turn's own work with one 1 MB image in its history
against the same turn without, and the database's growth per stored image.

    .venv/bin/python -m benchmarks.attachments [--turns 200] [--history 2000]

A channel holds `--history` rounds (and many other channels' rounds beside it); one of its newest
rounds carries a photo uploaded as ~1 MB of JPEG (normalised as chatlab stores it). A turn's own
work is measured the way the service does it: read the window (`turn_context`, one query), fetch
the window's image bytes (`blobs`, one more query, only when the window holds an image), build
the request's messages (`prompt_messages`: base64 in a data URL) and encode the request body as
JSON (what the SDK sends). The model's and Discord's time are left out: they are not chatlab's.
Then the query plan of the window read shows it reads only the channel's newest rows (an index
search, no scan, however long the history). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image as PIL

from bot.attachments import Upload, read_uploads
from bot.conversation import Message, image_digests, prompt_messages
from bot.storage.records import TurnRecord
from bot.storage.sqlite import SQLiteStore

CHANNEL = 1
OTHERS = 50  # other channels sharing the database


def photo(size_bytes: int = 1_000_000) -> bytes:
    """A noisy photo-like JPEG of about `size_bytes` (noise defeats compression like a photo)."""
    side = 1200
    while True:
        noise = PIL.effect_noise((side, side), 60).convert("RGB")
        out = io.BytesIO()
        noise.save(out, "JPEG", quality=92)
        if out.tell() >= size_bytes:
            return out.getvalue()
        side += 200


def file_size(path: Path) -> int:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (pages,) = db.execute("PRAGMA page_count").fetchone()
        (page,) = db.execute("PRAGMA page_size").fetchone()
    return int(pages * page)


def turn(channel: int, n: int, *, image: object = None) -> TurnRecord:
    words = random.Random(n)
    text = " ".join(words.choice(["tea", "code", "cat", "sun", "map"]) for _ in range(40))
    attachments = () if image is None else (image.attachment("gpt-4o"),)  # type: ignore[attr-defined]
    blobs = {} if image is None else {image.sha256: image.data}  # type: ignore[attr-defined]
    return TurnRecord(
        channel,
        "gpt-4o",
        Message("user", f"question {n}: {text}", 60, 7, "Alice", attachments=attachments),
        Message("assistant", f"answer {n}: {text} {text}", 120),
        prompt_tokens=100,
        completion_tokens=120,
        blobs=blobs,
    )


async def one_turn(store: SQLiteStore, channel: int) -> float:
    """The turn's own work (see the module's docstring), in seconds."""
    started = time.perf_counter()
    _, history = await store.turn_context(channel, None, 10)
    wanted = image_digests(history)
    images = await store.blobs(wanted) if wanted else {}
    system = Message("system", "You are helpful.", 5)
    question = Message("user", "and now?", 3, 7, "Alice")
    body = {"model": "gpt-4o", "messages": prompt_messages(system, history, question, images)}
    json.dumps(body)
    return time.perf_counter() - started


async def main(turns: int, history: int) -> None:
    raw = photo()
    (image,) = read_uploads([Upload("photo.jpg", raw)], text_max_chars=1000).images
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        async with SQLiteStore.open(path) as store:
            for other in range(2, OTHERS + 2):
                for n in range(history // 10):
                    await store.add_turn(turn(other, n))
            for n in range(history):
                await store.add_turn(turn(CHANNEL, n))
                await store.add_turn(turn(CHANNEL + 1000, n))
            await store.add_turn(turn(CHANNEL, history, image=image))
            for n in range(3):  # the image is in the window, not the newest round
                await store.add_turn(turn(CHANNEL, history + 1 + n))
                await store.add_turn(turn(CHANNEL + 1000, history + 1 + n))
            for _ in range(20):  # warm up
                await one_turn(store, CHANNEL)
                await one_turn(store, CHANNEL + 1000)
            timings: dict[str, list[float]] = {"with": [], "without": []}
            for _ in range(turns):  # interleaved, so drift hits both alike
                timings["with"].append(await one_turn(store, CHANNEL))
                timings["without"].append(await one_turn(store, CHANNEL + 1000))

        before = file_size(path)
        async with SQLiteStore.open(path) as store:
            for n in range(5):  # five more distinct photos
                data = photo(1_000_000 + n)
                (other,) = read_uploads([Upload(f"p{n}.jpg", data)], text_max_chars=10).images
                await store.add_turn(turn(CHANNEL, history + 10 + n, image=other))
        grown = (file_size(path) - before) / 5
        with sqlite3.connect(path) as db:
            plan = db.execute(
                "EXPLAIN QUERY PLAN SELECT role, content FROM messages WHERE channel_id = ?"
                " ORDER BY id DESC LIMIT 20",
                (CHANNEL,),
            ).fetchall()

    def ms(values: list[float]) -> str:
        p90 = sorted(values)[int(len(values) * 0.9)]
        return f"{statistics.median(values) * 1000:8.2f} ms (p90 {p90 * 1000:.2f})"

    print(f"uploaded photo: {len(raw):,} bytes, {image.width}x{image.height} after normalising")
    print(
        f"stored image:   {len(image.data):,} bytes ({image.media_type}), "
        f"{image.attachment('gpt-4o').tokens} tokens on gpt-4o"
    )
    print(f"turn's own work, window with the image:    {ms(timings['with'])}")
    print(f"turn's own work, window without an image:  {ms(timings['without'])}")
    print(f"database growth per stored ~1 MB photo: {grown:,.0f} bytes")
    print("window read plan:", "; ".join(str(row[-1]) for row in plan))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--history", type=int, default=2000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.turns, arguments.history))
