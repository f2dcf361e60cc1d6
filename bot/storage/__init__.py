"""Storage: one interface (`Store`), two engines behind it.

SQLite (aiosqlite; the default, nothing to set up) keeps everything in one file, for one process.
PostgreSQL (asyncpg; the `postgres` extra) is chosen by DATABASE_URL, for several processes (or
machines) sharing one database. The service sees only `Store` and the records.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from bot.storage.base import Store
from bot.storage.records import (
    ChannelSettings,
    PromptChange,
    StoredMessage,
    SystemPrompt,
    TurnRecord,
    Usage,
)

__all__ = [
    "ChannelSettings",
    "PromptChange",
    "Store",
    "StoredMessage",
    "SystemPrompt",
    "TurnRecord",
    "Usage",
    "open_store",
]


@contextlib.asynccontextmanager
async def open_store(database_url: str | None, database_path: Path) -> AsyncIterator[Store]:
    """Open (creating and migrating) the store: PostgreSQL at `database_url` if it is set,
    else the SQLite file at `database_path`. Raises `StoreError` (one line) if it cannot."""
    if database_url:
        from bot.storage.postgres import PostgresStore  # the optional extra: imported on use

        async with PostgresStore.open(database_url) as store:
            yield store
    else:
        from bot.storage.sqlite import SQLiteStore

        async with SQLiteStore.open(database_path) as store:
            yield store
