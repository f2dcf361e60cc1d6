"""A chatlab process opening the store: for tests/test_store_safety.py, benchmarks/store_race.py.

    python tests/store_child.py DATABASE [--no-lock] [--hold]

It imports the store, prints READY and waits for a line on stdin (so that two children start
opening at the same instant), then opens the database (creating and migrating it if need be),
writes one value and prints one line:

    OK <schema version>                  the store opened and took a write
    REFUSED <message>                    another process holds the database (`DatabaseInUse`)
    FAILED <exception type>: <message>   anything else: the defect the race tests look for

With --hold it then keeps the store open until stdin closes. With --no-lock the process lock is
switched off, to show that creation and migration are safe under the race on their own.

It is run as a script, not as `-m tests.store_child`, so that `bot` can come from another tree
(PYTHONPATH) when measuring the code as it was.
"""

from __future__ import annotations

import asyncio
import os
import sys

from bot.storage import sqlite as store_module
from bot.storage.sqlite import SCHEMA_VERSION, SQLiteStore


async def main(database: str, *, hold: bool) -> None:
    print("READY", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    try:
        async with SQLiteStore.open(database) as store:
            await store.set_meta(f"started-{os.getpid()}", "yes")
            print(f"OK {SCHEMA_VERSION}", flush=True)
            if hold:
                await asyncio.to_thread(sys.stdin.read)
    except Exception as exc:
        outcome = "REFUSED" if type(exc).__name__ == "DatabaseInUse" else "FAILED"
        detail = str(exc) if outcome == "REFUSED" else f"{type(exc).__name__}: {exc}"
        print(f"{outcome} {detail}", flush=True)


if __name__ == "__main__":
    if "--no-lock" in sys.argv and hasattr(store_module, "_lock_database"):
        store_module._lock_database = lambda path: None  # type: ignore[assignment]
    asyncio.run(main(sys.argv[1], hold="--hold" in sys.argv))
