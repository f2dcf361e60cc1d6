"""`python -m bot migrate-to postgresql://…`: copy an SQLite database into PostgreSQL, and check it.

The SQLite database is opened as the bot opens it (its process lock held, so the bot cannot run
on it meanwhile; migrated to the current schema), and read through a second, read-only
connection. The PostgreSQL database is migrated, and refused if it already holds conversations.
Every table is copied in keyset batches on its primary key, one transaction per batch (COPY),
keeping every id; the identities then continue after the largest id copied. Small facts (meta)
are merged: a key PostgreSQL has already keeps its value. Claims and cooldowns are not copied
(the SQLite engine keeps them in memory).

Then the copy is checked: every table holds as many rows on both sides, and a sample of turns
(`SAMPLE_TURNS` chosen at random, and the newest of every channel) reads back the same through
both stores: each sampled channel's history down to its oldest sampled turn (at most
`MAX_DEPTH` rounds), its settings, prompt changes and usage, and the bytes of the images in
the rounds read. A difference is a `StoreError` naming it.

If the copy stops half-way, PostgreSQL holds part of it: the error says to empty the database
(drop and create it) before trying again. The URL's password appears nowhere (errors and logs
name the place as host:port/database).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from bot.errors import StoreError
from bot.storage.postgres import PostgresStore, describe, to_text
from bot.storage.sqlite import SQLiteStore

log = logging.getLogger(__name__)

SAMPLE_TURNS = 50
MAX_DEPTH = 1000  # rounds of one channel's history read to reach a sampled turn
HISTORY_CHECKED = 5  # rounds of every channel read back at least (its newest)


@dataclass(frozen=True, slots=True)
class CopyReport:
    counts: dict[str, int]  # rows copied, by table
    sample_size: int  # turns read back the same from both stores


def _same(value: Any) -> Any:
    return value


def _real(value: Any) -> float | None:
    return None if value is None else float(value)


def _flag(value: Any) -> bool:
    return bool(value)


@dataclass(frozen=True, slots=True)
class _Table:
    name: str
    key: tuple[str, ...]  # the primary key: the batches' order and keyset
    columns: tuple[tuple[str, Callable[[Any], Any]], ...]  # name, SQLite value -> PostgreSQL
    batch: int = 1000

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


_ = _same
# In the order the foreign keys need.
TABLES = (
    _Table(
        "channels",
        ("channel_id",),
        (
            ("channel_id", _),
            ("guild_id", _),
            ("system_prompt", to_text),
            ("prompt_set_by_id", _),
            ("prompt_set_by_name", to_text),
            ("prompt_set_at", _real),
            ("model", _),
            ("reasoning_effort", _),
        ),
    ),
    _Table(
        "channel_options",
        ("channel_id", "name"),
        (("channel_id", _), ("name", _), ("value", _), ("guild_id", _), ("set_at", _real)),
    ),
    _Table(
        "prompt_changes",
        ("id",),
        (
            ("id", _),
            ("channel_id", _),
            ("prompt", to_text),
            ("set_by_id", _),
            ("set_by_name", to_text),
            ("set_at", _real),
        ),
    ),
    _Table(
        "turns",
        ("id",),
        (
            ("id", _),
            ("channel_id", _),
            ("guild_id", _),
            ("user_id", _),
            ("model", _),
            ("prompt_tokens", _),
            ("completion_tokens", _),
            ("created_at", _real),
            ("question_message_id", _),
        ),
    ),
    _Table(
        "messages",
        ("id",),
        (
            ("id", _),
            ("channel_id", _),
            ("turn_id", _),
            ("role", _),
            ("author_id", _),
            ("author_name", to_text),
            ("content", to_text),
            ("tokens", _),
            ("tokens_bound", _flag),
            ("attachments", _),
            ("created_at", _real),
        ),
    ),
    _Table(
        "blobs",
        ("sha256",),
        (("sha256", _), ("media_type", _), ("size", _), ("data", bytes)),
        batch=16,  # images of up to a few MB each
    ),
    _Table("message_blobs", ("message_id", "sha256"), (("message_id", _), ("sha256", _))),
)
META = _Table("meta", ("key",), (("key", _), ("value", _)))


async def copy_to_postgres(sqlite_path: Path, url: str) -> CopyReport:
    """Copy the SQLite database at `sqlite_path` into the PostgreSQL database at `url`, then
    check the copy. Raises `StoreError` (one line, no password) if it cannot, if PostgreSQL
    already holds conversations, or if the copy differs."""
    where = describe(url)
    # (else opening it would create an empty one)
    if not await asyncio.to_thread(os.path.isfile, sqlite_path):
        raise StoreError(f"there is no SQLite database at {sqlite_path} to copy")
    async with SQLiteStore.open(sqlite_path) as source, PostgresStore.open(url) as target:
        if await target.holds_conversations():
            raise StoreError(
                f"the PostgreSQL database at {where} already holds conversations; copy into"
                " an empty database"
            )
        async with _read_only(Path(sqlite_path)) as rows:
            counts: dict[str, int] = {}
            for table in TABLES:
                try:
                    counts[table.name] = await _copy_table(rows, target, table)
                except StoreError as exc:
                    raise StoreError(
                        f"the copy stopped in table {table.name}: {exc}; empty the PostgreSQL"
                        f" database at {where} (drop and create it) before trying again"
                    ) from None
                log.info("Copied %d rows of %s", counts[table.name], table.name)
            meta = await _all_rows(rows, META)
            await target.merge_meta([(str(r[0]), str(r[1])) for r in meta])
            counts[META.name] = len(meta)
            await target.restart_identities()
            await _check_counts(rows, target, counts)
            sample_size = await _check_sample(rows, source, target)
    log.info("Checked the copy: row counts equal, %d sampled turns the same", sample_size)
    return CopyReport(counts=counts, sample_size=sample_size)


class _read_only:
    """A read-only aiosqlite connection to the database file (beside the store's own)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None

    async def __aenter__(self) -> aiosqlite.Connection:
        try:
            self._db = await aiosqlite.connect(
                f"{self._path.absolute().as_uri()}?mode=ro", uri=True
            )
        except aiosqlite.Error as exc:
            raise StoreError(f"cannot read {self._path}: {exc}") from exc
        return self._db

    async def __aexit__(self, *exc_info: object) -> None:
        if self._db is not None:
            await self._db.close()


async def _copy_table(rows: aiosqlite.Connection, target: PostgresStore, table: _Table) -> int:
    columns = ", ".join(table.names)
    order = ", ".join(table.key)
    marks = ", ".join("?" * len(table.key))
    first = f"SELECT {columns} FROM {table.name} ORDER BY {order} LIMIT ?"  # noqa: S608 - constants only
    after = (
        f"SELECT {columns} FROM {table.name} WHERE ({order}) > ({marks})"  # noqa: S608 - constants only
        f" ORDER BY {order} LIMIT ?"
    )
    key_at = [table.names.index(k) for k in table.key]
    copied = 0
    last: tuple[Any, ...] | None = None
    while True:
        try:
            if last is None:
                batch = list(await rows.execute_fetchall(first, (table.batch,)))
            else:
                batch = list(await rows.execute_fetchall(after, (*last, table.batch)))
        except aiosqlite.Error as exc:
            raise StoreError(f"cannot read the SQLite database: {exc}") from exc
        if not batch:
            return copied
        converters = [convert for _, convert in table.columns]
        await target.copy_rows(
            table.name,
            table.names,
            [
                [convert(value) for convert, value in zip(converters, row, strict=True)]
                for row in batch
            ],
        )
        copied += len(batch)
        if len(batch) < table.batch:
            return copied
        last = tuple(batch[-1][i] for i in key_at)


async def _all_rows(rows: aiosqlite.Connection, table: _Table) -> list[Any]:
    sql = f"SELECT {', '.join(table.names)} FROM {table.name}"  # noqa: S608 - constants only
    return list(await rows.execute_fetchall(sql))


async def _check_counts(
    rows: aiosqlite.Connection, target: PostgresStore, copied: dict[str, int]
) -> None:
    stored = await target.row_counts()
    for table in TABLES:
        sql = f"SELECT count(*) FROM {table.name}"  # noqa: S608 - constants only
        ((in_sqlite,),) = list(await rows.execute_fetchall(sql))
        if not in_sqlite == copied[table.name] == stored[table.name]:
            raise StoreError(
                f"the copy differs: {table.name} has {in_sqlite} rows in SQLite and"
                f" {stored[table.name]} in PostgreSQL"
            )
    if stored[META.name] < copied[META.name]:
        raise StoreError("the copy differs: meta lost rows")


async def _check_sample(
    rows: aiosqlite.Connection, source: SQLiteStore, target: PostgresStore
) -> int:
    """Read a sample of turns back through both stores; how many turns were compared."""
    picked = list(
        await rows.execute_fetchall(
            "SELECT channel_id, id FROM turns ORDER BY random() LIMIT ?", (SAMPLE_TURNS,)
        )
    )
    picked += list(
        await rows.execute_fetchall("SELECT channel_id, max(id) FROM turns GROUP BY channel_id")
    )
    oldest: dict[int, int] = {}
    for channel_id, turn_id in picked:
        oldest[channel_id] = min(turn_id, oldest.get(channel_id, turn_id))
    channels = [r[0] for r in await rows.execute_fetchall("SELECT channel_id FROM channels")]
    compared = 0
    for channel_id in sorted({*oldest, *channels}):
        depth = HISTORY_CHECKED
        if channel_id in oldest:
            ((newer,),) = list(
                await rows.execute_fetchall(
                    "SELECT count(*) FROM messages WHERE channel_id = ? AND role = 'user'"
                    " AND turn_id >= ?",
                    (channel_id, oldest[channel_id]),
                )
            )
            depth = max(depth, min(int(newer), MAX_DEPTH))
        compared += await _compare_channel(source, target, channel_id, depth)
    return compared


async def _compare_channel(
    source: SQLiteStore, target: PostgresStore, channel_id: int, depth: int
) -> int:
    checks: Sequence[tuple[str, Callable[[Any], Any]]] = (
        ("history", lambda store: store.history(channel_id, depth)),
        ("settings", lambda store: store.channel_settings(channel_id)),
        ("prompt changes", lambda store: store.prompt_changes(channel_id, 1000)),
        ("usage", lambda store: store.usage(channel_id)),
    )
    rounds: list[Any] = []
    for what, read in checks:
        before, after = await read(source), await read(target)
        if before != after:
            raise StoreError(f"the copy differs: channel {channel_id}'s {what}")
        if what == "history":
            rounds = before
    digests = {
        attachment.sha256
        for round_ in rounds
        for attachment in round_.question.attachments
        if attachment.kind == "image"
    }
    if digests and await source.blobs(digests) != await target.blobs(digests):
        raise StoreError(f"the copy differs: channel {channel_id}'s images")
    return len(rounds)
