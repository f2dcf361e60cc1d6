"""The SQLite store: schema, migrations and every SQL statement chatlab runs.

One long-lived aiosqlite connection in WAL mode. Every statement is parameterised. A turn
(question, answer and the usage the API reported) is written in one transaction, so after a
crash the store holds whole turns only. Reading a channel's window reads only that channel's
newest rows, through the (channel_id, id) index.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aiosqlite

from bot.conversation import Message, Round

log = logging.getLogger(__name__)
T = TypeVar("T")

# Ordered migrations: MIGRATIONS[n] takes the schema from version n to n + 1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE channels (
        channel_id         INTEGER PRIMARY KEY,
        system_prompt      TEXT,
        prompt_set_by_id   INTEGER,
        prompt_set_by_name TEXT,
        prompt_set_at      REAL,
        model              TEXT
    );
    CREATE TABLE prompt_changes (
        id          INTEGER PRIMARY KEY,
        channel_id  INTEGER NOT NULL,
        prompt      TEXT,
        set_by_id   INTEGER,
        set_by_name TEXT,
        set_at      REAL NOT NULL
    );
    CREATE INDEX prompt_changes_by_channel ON prompt_changes (channel_id, id);
    CREATE TABLE turns (
        id                INTEGER PRIMARY KEY,
        channel_id        INTEGER NOT NULL,
        user_id           INTEGER,
        model             TEXT NOT NULL,
        prompt_tokens     INTEGER,
        completion_tokens INTEGER,
        created_at        REAL NOT NULL
    );
    CREATE INDEX turns_by_channel ON turns (channel_id);
    CREATE TABLE messages (
        id          INTEGER PRIMARY KEY,
        channel_id  INTEGER NOT NULL,
        turn_id     INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
        role        TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        author_id   INTEGER,
        author_name TEXT,
        content     TEXT NOT NULL,
        tokens      INTEGER NOT NULL,
        created_at  REAL NOT NULL
    );
    CREATE INDEX messages_by_channel ON messages (channel_id, id);
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """The database could not do what was asked."""


class StorageFull(StoreError):
    """The disk (or the database's page limit) is full."""


@dataclass(frozen=True, slots=True)
class SystemPrompt:
    text: str
    set_by_id: int | None
    set_by_name: str | None
    set_at: float | None
    inherited: bool = False


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    prompt: SystemPrompt | None
    model: str | None


@dataclass(frozen=True, slots=True)
class PromptChange:
    prompt: str | None
    set_by_id: int | None
    set_by_name: str | None
    set_at: float


@dataclass(frozen=True, slots=True)
class Usage:
    answers: int
    prompt_tokens: int
    completion_tokens: int
    unreported: int  # answers whose server sent no usage

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class StoredMessage:
    message: Message
    created_at: float


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """A completed turn, as it is written."""

    channel_id: int
    model: str
    question: Message
    answer: Message
    prompt_tokens: int | None
    completion_tokens: int | None


class ConversationStore:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        # One connection serves every coroutine: a transaction must not let another coroutine's
        # statements run inside it (nor let them read half of it), so access is serialised.
        self._lock = asyncio.Lock()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, path: str | os.PathLike[str]) -> AsyncIterator[ConversationStore]:
        """Open (creating if need be, readable by its owner only) and migrate the database."""
        path = Path(path)
        try:
            if str(path) != ":memory:":
                path.touch(mode=0o600, exist_ok=True)
                path.chmod(0o600)
            connection = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the database at {path}: {_reason(exc)}") from exc
        try:
            store = cls(connection)
            await store._prepare()
            yield store
        finally:
            await connection.close()

    async def _prepare(self) -> None:
        try:
            await self._db.execute("PRAGMA journal_mode = WAL")
            await self._db.execute("PRAGMA synchronous = NORMAL")
            await self._db.execute("PRAGMA foreign_keys = ON")
            await self._db.execute("PRAGMA busy_timeout = 5000")
            # Room for the hot index pages of a large database (the default is 2 MB).
            await self._db.execute("PRAGMA cache_size = -32000")
            async with self._db.execute("PRAGMA user_version") as cursor:
                (version,) = await cursor.fetchone()  # type: ignore[misc]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the database is from a newer chatlab (schema {version} > {SCHEMA_VERSION})"
                )
            for number in range(version, SCHEMA_VERSION):
                log.info("Migrating the database to schema version %d", number + 1)
                await self._db.executescript(
                    f"BEGIN; {MIGRATIONS[number]} PRAGMA user_version = {number + 1}; COMMIT;"
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot prepare the database: {_reason(exc)}") from exc

    # -- plumbing -------------------------------------------------------------------------

    async def _run(self, work: Callable[[], Awaitable[T]]) -> T:
        async with self._lock:
            try:
                return await work()
            except sqlite3.Error as exc:
                raise _translate(exc) from exc

    async def _transaction(self, work: Callable[[], Awaitable[T]]) -> T:
        async def wrapped() -> T:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                result = await work()
                await self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    await self._db.execute("ROLLBACK")
                raise
            return result

        return await self._run(wrapped)

    async def _fetchall(self, sql: str, params: tuple[object, ...]) -> list[sqlite3.Row]:
        async def work() -> list[sqlite3.Row]:
            return list(await self._db.execute_fetchall(sql, params))  # one trip to the thread

        return await self._run(work)

    async def _fetchone(self, sql: str, params: tuple[object, ...]) -> sqlite3.Row | None:
        rows = await self._fetchall(sql, params)
        return rows[0] if rows else None

    # -- conversation ---------------------------------------------------------------------

    async def history(self, channel_id: int, max_rounds: int) -> list[Round]:
        """The channel's newest `max_rounds` whole rounds, oldest first."""
        if max_rounds <= 0:
            return []
        rows = await self._fetchall(
            "SELECT turn_id, role, content, tokens, author_id, author_name FROM messages"
            " WHERE channel_id = ? ORDER BY id DESC LIMIT ?",
            (channel_id, max_rounds * 2),
        )
        return _pair_rounds(reversed(rows))

    async def add_turn(self, turn: TurnRecord) -> int:
        """Write a whole turn in one transaction; returns the turn's id."""

        async def work() -> int:
            now = time.time()
            row = await self._db.execute_insert(
                "INSERT INTO turns (channel_id, user_id, model, prompt_tokens,"
                " completion_tokens, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    turn.channel_id,
                    turn.question.author_id,
                    turn.model,
                    turn.prompt_tokens,
                    turn.completion_tokens,
                    now,
                ),
            )
            assert row is not None
            turn_id: int = row[0]
            await self._db.executemany(
                "INSERT INTO messages (channel_id, turn_id, role, author_id, author_name,"
                " content, tokens, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        turn.channel_id,
                        turn_id,
                        m.role,
                        m.author_id,
                        m.author_name,
                        m.content,
                        m.tokens,
                        now,
                    )
                    for m in (turn.question, turn.answer)
                ],
            )
            return turn_id

        return await self._transaction(work)

    async def reset(self, channel_id: int) -> int:
        """Forget the channel's messages; returns how many rounds were forgotten.

        Usage figures are accounting and stay; the system prompt stays too.
        """

        async def work() -> int:
            cursor = await self._db.execute(
                "DELETE FROM messages WHERE channel_id = ? AND role = 'user'", (channel_id,)
            )
            rounds = cursor.rowcount
            await self._db.execute("DELETE FROM messages WHERE channel_id = ?", (channel_id,))
            return rounds

        return await self._transaction(work)

    async def export(self, channel_id: int) -> list[StoredMessage]:
        """Every stored message of the channel, oldest first."""
        rows = await self._fetchall(
            "SELECT role, content, tokens, author_id, author_name, created_at FROM messages"
            " WHERE channel_id = ? ORDER BY id",
            (channel_id,),
        )
        return [StoredMessage(Message(r[0], r[1], r[2], r[3], r[4]), created_at=r[5]) for r in rows]

    async def usage(self, channel_id: int) -> Usage:
        row = await self._fetchone(
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0),"
            " SUM(prompt_tokens IS NULL OR completion_tokens IS NULL) FROM turns"
            " WHERE channel_id = ?",
            (channel_id,),
        )
        assert row is not None
        return Usage(row[0], row[1], row[2], row[3] or 0)

    # -- channel settings -----------------------------------------------------------------

    async def channel_settings(
        self, channel_id: int, parent_id: int | None = None
    ) -> ChannelSettings:
        """The channel's prompt and model; a thread inherits each from its parent until set."""
        rows = await self._fetchall(
            "SELECT channel_id, system_prompt, prompt_set_by_id, prompt_set_by_name,"
            " prompt_set_at, model FROM channels WHERE channel_id IN (?, ?)",
            (channel_id, parent_id),
        )
        own = next((r for r in rows if r[0] == channel_id), None)
        parent = next((r for r in rows if r[0] != channel_id), None)
        prompt: SystemPrompt | None = None
        model: str | None = None
        for row, inherited in ((own, False), (parent, True)):
            if row is None:
                continue
            if prompt is None and row[1] is not None:
                prompt = SystemPrompt(row[1], row[2], row[3], row[4], inherited=inherited)
            model = model or row[5]
        return ChannelSettings(prompt, model)

    async def set_system_prompt(
        self, channel_id: int, prompt: str | None, *, by_id: int | None, by_name: str | None
    ) -> None:
        """Set (or with None, clear) the channel's prompt, and record who changed it, when."""

        async def work() -> None:
            now = time.time()
            await self._db.execute(
                "INSERT INTO channels (channel_id, system_prompt, prompt_set_by_id,"
                " prompt_set_by_name, prompt_set_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (channel_id) DO UPDATE SET system_prompt = excluded.system_prompt,"
                " prompt_set_by_id = excluded.prompt_set_by_id,"
                " prompt_set_by_name = excluded.prompt_set_by_name,"
                " prompt_set_at = excluded.prompt_set_at",
                (channel_id, prompt, by_id, by_name, now),
            )
            await self._db.execute(
                "INSERT INTO prompt_changes (channel_id, prompt, set_by_id, set_by_name, set_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (channel_id, prompt, by_id, by_name, now),
            )

        await self._transaction(work)

    async def prompt_changes(self, channel_id: int, limit: int = 10) -> list[PromptChange]:
        """The channel's latest system-prompt changes, newest first."""
        rows = await self._fetchall(
            "SELECT prompt, set_by_id, set_by_name, set_at FROM prompt_changes"
            " WHERE channel_id = ? ORDER BY id DESC LIMIT ?",
            (channel_id, limit),
        )
        return [PromptChange(*row) for row in rows]

    async def set_channel_model(self, channel_id: int, model: str | None) -> None:
        async def work() -> None:
            await self._db.execute(
                "INSERT INTO channels (channel_id, model) VALUES (?, ?)"
                " ON CONFLICT (channel_id) DO UPDATE SET model = excluded.model",
                (channel_id, model),
            )

        await self._transaction(work)

    # -- small key/value facts (e.g. the command tree last synced) -----------------------

    async def get_meta(self, key: str) -> str | None:
        row = await self._fetchone("SELECT value FROM meta WHERE key = ?", (key,))
        return row[0] if row else None

    async def set_meta(self, key: str, value: str) -> None:
        async def work() -> None:
            await self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

        await self._transaction(work)


def _pair_rounds(rows_oldest_first: Iterable[sqlite3.Row]) -> list[Round]:
    """Pair each turn's question with its answer; a turn cut by the LIMIT is left out."""
    rounds: list[Round] = []
    pending: tuple[int, Message] | None = None
    for turn_id, role, content, tokens, author_id, author_name in rows_oldest_first:
        message = Message(role, content, tokens, author_id, author_name)
        if role == "user":
            pending = (turn_id, message)
        elif pending is not None and pending[0] == turn_id:
            rounds.append(Round(pending[1], message))
            pending = None
    return rounds


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _translate(exc: sqlite3.Error) -> StoreError:
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":
        return StorageFull("the disk is full")
    return StoreError(str(exc))
