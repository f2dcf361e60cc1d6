"""The SQLite engine (the default): its schema, migrations and every SQL statement it runs.

It implements `bot.storage.base.Store`; its migrations are the files in sql/sqlite/.

One long-lived aiosqlite connection in WAL mode. Every statement is parameterised. A turn
(question, answer, the usage the API reported, the question's attachments and their bytes) is
written in one transaction, so after a crash the store holds whole turns only. Reading a
channel's window reads only that channel's newest rows, through the (channel_id, id) index.

Each statement is a trip to aiosqlite's thread (a queue hand-off and a wake-up each way), so the
answer path keeps them to two per turn, images or not: `turn_context` reads the channel's
settings, options and window in one query (the window's size, from the history_rounds option,
computed inside it), and `add_turn` writes the turn, both messages and the question's blobs in
one INSERT (into the `turn_writes` view: its INSTEAD OF triggers insert the turn's row, then one
row per blob; one statement is atomic in SQLite's autocommit mode). An image's bytes are kept
once per digest and deleted by a trigger when the last message referring to them is (schema 5).
Needs SQLite 3.35 or later (RETURNING).

Opening is careful, because a wrong path or a second process is an admin's mistake to report,
not to work around:

- the path is checked before anything is created or chmod-ed: not empty, not a directory, a
  regular file, and either new (absent or 0 bytes) or an SQLite database by its header;
- one process per database: an exclusive `flock` on `<database>.lock`, held for the process's
  life (`DatabaseInUse` otherwise);
- creation and migration are safe when two processes start at once: the busy timeout is set
  before anything else, and migrations run under BEGIN EXCLUSIVE after re-reading the version;
- the database, its `-wal` and `-shm` become readable by their owner only;
- before each write, the file at the path must still be the one opened (`DatabaseMissing` if it
  was deleted or replaced, so answers are never silently written into an unlinked file).

Errors (each one line, printed as `chatlab: <message>` at start-up):

    StoreError
    ├── StorageFull       the disk (or the page limit) is full
    ├── DatabaseInUse     another process holds the database's lock
    └── DatabaseMissing   the file was deleted or replaced while running
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import sqlite3
import stat
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.conversation import Message, Round, legacy_framing_tokens
from bot.errors import DatabaseInUse, DatabaseMissing, StorageFull, StoreError
from bot.storage.base import load_migrations
from bot.storage.local import LocalClaims, LocalCooldowns, process_shards
from bot.storage.records import (
    ChannelSettings,
    PromptChange,
    StoredMessage,
    SystemPrompt,
    TurnRecord,
    Usage,
)
from bot.storage.rows import (
    decode_attachments,
    encode_attachments,
    linked_blobs,
    pair_rounds,
    usage_figure,
)

try:
    import fcntl
except ImportError:  # Windows: no process lock there (a warning says so at open)
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
T = TypeVar("T")
Parameters = Sequence[object] | Mapping[str, object]

SQLITE_HEADER = b"SQLite format 3\x00"
SQLITE_MAX_INTEGER = 2**63 - 1
MINIMUM_SQLITE = (3, 35, 0)  # INSERT ... RETURNING
BUSY_TIMEOUT_SECONDS = 5  # how long a statement waits for another connection's lock

# Ordered migrations, one file each in sql/sqlite/NNNN_name.sql: file n takes the schema from
# version n - 1 to n (PRAGMA user_version).
MIGRATIONS: tuple[str, ...] = load_migrations("sqlite")
SCHEMA_VERSION = len(MIGRATIONS)

# A turn in one statement (migrations 4, 5): the turn's row, then one row per blob its question
# refers to (see 0005's turn_writes_blob). RETURNING is evaluated once every change the statement
# makes is done (the triggers' included), under the write lock: the newest turn is this one.
TURN_COLUMNS = (
    "channel_id, guild_id, user_id, model, prompt_tokens, completion_tokens, created_at,"
    " question_message_id, question_role, question_author_name, question_content,"
    " question_tokens, question_tokens_bound, question_attachments, answer_role,"
    " answer_author_id, answer_author_name, answer_content, answer_tokens, answer_tokens_bound,"
    " answer_attachments"
)
BLOB_COLUMNS = "blob_sha256, blob_media_type, blob_size, blob_data"
TURN_ROW = "(" + ", ".join(["?"] * 21) + ", NULL, NULL, NULL, NULL)"
BLOB_ROW = "(" + ", ".join(["NULL"] * 21) + ", ?, ?, ?, ?)"


@functools.lru_cache(maxsize=16)
def write_turn_sql(blob_rows: int) -> str:
    """The statement that writes a turn whose question refers to `blob_rows` blobs."""
    values = ", ".join([TURN_ROW] + [BLOB_ROW] * blob_rows)
    return (
        f"INSERT INTO turn_writes ({TURN_COLUMNS}, {BLOB_COLUMNS}) VALUES {values}"  # noqa: S608 - constants and ? only
        " RETURNING (SELECT max(id) FROM turns)"
    )


WRITE_TURN = write_turn_sql(0)

# A channel's settings: rows of kind 0 are its `channels` row and its parent's, rows of kind 2
# their `channel_options` (name, value). Ten columns, so that messages can follow (kind 1).
SETTINGS_ROWS = (
    "SELECT 0, channel_id, system_prompt, prompt_set_by_id, prompt_set_by_name, prompt_set_at,"
    " model, reasoning_effort, NULL, NULL FROM channels WHERE channel_id IN (:channel, :parent)"
    " UNION ALL"
    " SELECT 2, channel_id, name, value, NULL, NULL, NULL, NULL, NULL, NULL"
    " FROM channel_options WHERE channel_id IN (:channel, :parent)"
)
CHANNEL_SETTINGS = SETTINGS_ROWS

# A channel's newest messages (kind 1), newest first, through the (channel_id, id) index: twice
# the history_rounds option in force (its own, else its parent's; two primary-key look-ups
# inside the query), else twice :rounds.
MESSAGE_ROWS = (
    "SELECT * FROM (SELECT 1, id, turn_id, role, content, tokens, author_id, author_name,"
    " tokens_bound, attachments FROM messages WHERE channel_id = :channel ORDER BY id DESC"
    " LIMIT max(0, 2 * coalesce("
    "(SELECT CAST(value AS INTEGER) FROM channel_options"
    " WHERE channel_id = :channel AND name = 'history_rounds'),"
    " (SELECT CAST(value AS INTEGER) FROM channel_options"
    " WHERE channel_id = :parent AND name = 'history_rounds'),"
    " :rounds)))"
)

# What a turn reads, in one query: the channel's settings and its newest messages.
TURN_CONTEXT = " UNION ALL ".join((SETTINGS_ROWS, MESSAGE_ROWS))

# Keyset pages of a channel's messages: after (or before) the last id of the previous page.
EXPORT_OLDEST_FIRST = (
    "SELECT id, role, content, tokens, author_id, author_name, created_at, tokens_bound,"
    " attachments FROM messages WHERE channel_id = ? AND id > ? ORDER BY id LIMIT ?"
)
EXPORT_NEWEST_FIRST = (
    "SELECT id, role, content, tokens, author_id, author_name, created_at, tokens_bound,"
    " attachments FROM messages WHERE channel_id = ? AND id < ? ORDER BY id DESC LIMIT ?"
)
BLOBS_PER_QUERY = 500  # digests looked up per statement (well under SQLite's variable limit)


class SQLiteStore:
    def __init__(self, connection: aiosqlite.Connection, path: Path | None = None) -> None:
        self._db = connection
        # One connection serves every coroutine: a transaction must not let another coroutine's
        # statements run inside it (nor let them read half of it), so access is serialised.
        self._lock = asyncio.Lock()
        # The file opened, to notice it deleted or replaced under us (None: in memory).
        self._path = path
        self._identity = _identity(os.stat(path)) if path is not None else None
        self._missing_reported = False
        # One process owns the file (its lock): claims and cooldowns live in memory.
        self._claims = LocalClaims()
        self._cooldowns = LocalCooldowns()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, path: str | os.PathLike[str]) -> AsyncIterator[SQLiteStore]:
        """Open (creating if need be, readable by its owner only) and migrate the database.

        Raises `StoreError` (one line, for the admin) for a path that is not a database file,
        and `DatabaseInUse` while another process, or another store here, has it open.
        """
        if not os.fspath(path).strip():
            raise StoreError("the database path is empty; set DATABASE_PATH to a file path")
        if sqlite3.sqlite_version_info < MINIMUM_SQLITE:
            raise StoreError(
                f"chatlab needs SQLite {'.'.join(map(str, MINIMUM_SQLITE))} or later; this Python"
                f" has {sqlite3.sqlite_version}"
            )
        if os.fspath(path) == ":memory:":
            async with cls._connected(":memory:", None) as store:
                yield store
            return
        with contextlib.ExitStack() as held:
            path = _claim(path, held)
            async with cls._connected(path, path) as store:
                try:
                    _restrict(path)  # the -wal and -shm exist now, whoever made them
                except OSError as exc:
                    raise StoreError(f"cannot protect {path}: {_reason(exc)}") from exc
                yield store

    @classmethod
    @contextlib.asynccontextmanager
    async def _connected(cls, target: Path | str, path: Path | None) -> AsyncIterator[SQLiteStore]:
        try:
            connection = await aiosqlite.connect(target, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the database at {target}: {_reason(exc)}") from exc
        try:
            store = cls(connection, path)
            await store._prepare()
            yield store
        finally:
            await connection.close()

    async def _prepare(self) -> None:
        try:
            # First, so that every statement below waits for another process's transaction
            # (a new database's first writer) instead of failing at once with SQLITE_BUSY.
            await self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000:d}")
            await self._use_wal()
            await self._db.execute("PRAGMA synchronous = NORMAL")
            await self._db.execute("PRAGMA foreign_keys = ON")
            # Room for the hot index pages of a large database (the default is 2 MB).
            await self._db.execute("PRAGMA cache_size = -32000")
            if await self._schema_version() != SCHEMA_VERSION:
                await self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot prepare the database: {_reason(exc)}") from exc

    async def _use_wal(self) -> None:
        """Switch to WAL mode (a no-op once the database is in it).

        The switch needs an exclusive lock, and when another connection is switching the same
        new database at that moment SQLite answers "database is locked" at once instead of
        waiting (seen in 5 of 200 simultaneous starts): retry for as long as the busy timeout.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        for attempt in itertools.count(1):
            try:
                await self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(min(0.005 * attempt, 0.1))

    async def _schema_version(self) -> int:
        async with self._db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        version: int = row[0] if row is not None else 0  # PRAGMA user_version always has a row
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the database is from a newer chatlab (schema {version} > {SCHEMA_VERSION})"
            )
        return int(version)

    async def _migrate(self) -> None:
        """Bring the schema up to date in one exclusive transaction.

        The version is read again inside the transaction: a process that started at the same
        moment may have migrated while this one waited, and then there is nothing left to do.
        """
        await self._db.create_function(
            "chatlab_legacy_framing_tokens", 2, legacy_framing_tokens, deterministic=True
        )
        await self._db.execute("BEGIN EXCLUSIVE")
        try:
            version = await self._schema_version()
            for number in range(version, SCHEMA_VERSION):
                log.info("Migrating the database to schema version %d", number + 1)
                for statement in _statements(MIGRATIONS[number]):
                    await self._db.execute(statement)
                await self._db.execute(f"PRAGMA user_version = {number + 1:d}")
            await self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                await self._db.execute("ROLLBACK")
            raise

    # -- plumbing -------------------------------------------------------------------------

    async def _run(self, work: Callable[[], Awaitable[T]], *, exclusive: bool = False) -> T:
        """Run `work` (one statement, or with `exclusive` a transaction) on the connection.

        A transaction holds the lock from BEGIN to COMMIT, so no other coroutine's statement
        runs inside it. A single statement waits only while one is open: otherwise it goes to
        aiosqlite's queue at once (its thread runs statements one at a time, in the order they
        came, so a statement queued before a BEGIN runs before that transaction, on its own),
        and channels answered at once pipeline their statements instead of taking turns.
        """
        if not exclusive and not self._lock.locked():
            try:
                return await work()
            except sqlite3.Error as exc:
                raise _translate(exc) from exc
        async with self._lock:
            try:
                return await work()
            except sqlite3.Error as exc:
                raise _translate(exc) from exc

    async def _transaction(self, work: Callable[[], Awaitable[T]]) -> T:
        async def wrapped() -> T:
            self._check_still_there()
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                result = await work()
                await self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    await self._db.execute("ROLLBACK")
                raise
            return result

        return await self._run(wrapped, exclusive=True)

    def _check_still_there(self) -> None:
        """Raise `DatabaseMissing` if the path no longer names the file that was opened.

        Writes to a deleted (unlinked) file succeed and vanish at exit; a replaced file would
        split the conversation between two databases. Either is loud, once, at CRITICAL.
        """
        if self._path is None:
            return
        try:
            now = _identity(os.stat(self._path))
        except FileNotFoundError:
            now = None
        if now == self._identity:
            return
        error = DatabaseMissing(
            f"the database file {self._path} was deleted or replaced while running; restart the"
            " bot (nothing more is stored until then)"
        )
        if not self._missing_reported:
            self._missing_reported = True
            log.critical("%s", error)
        raise error

    async def _fetchall(self, sql: str, params: Parameters) -> list[sqlite3.Row]:
        async def work() -> list[sqlite3.Row]:
            return list(await self._db.execute_fetchall(sql, params))  # one trip to the thread

        return await self._run(work)

    async def _write(self, sql: str, params: Parameters) -> list[sqlite3.Row]:
        """One write statement, atomic on its own (autocommit): one trip to the thread."""

        async def work() -> list[sqlite3.Row]:
            self._check_still_there()
            return list(await self._db.execute_fetchall(sql, params))

        return await self._run(work)

    async def _fetchone(self, sql: str, params: Parameters) -> sqlite3.Row | None:
        rows = await self._fetchall(sql, params)
        return rows[0] if rows else None

    # -- conversation ---------------------------------------------------------------------

    async def history(self, channel_id: int, max_rounds: int) -> list[Round]:
        """The channel's newest `max_rounds` whole rounds, oldest first."""
        if max_rounds <= 0:
            return []
        rows = await self._fetchall(
            "SELECT turn_id, role, content, tokens, author_id, author_name, tokens_bound,"
            " attachments FROM messages WHERE channel_id = ? ORDER BY id DESC LIMIT ?",
            (channel_id, max_rounds * 2),
        )
        return _pair_rounds(reversed(rows))

    async def turn_context(
        self, channel_id: int, parent_id: int | None, max_rounds: int
    ) -> tuple[ChannelSettings, list[Round]]:
        """What a turn reads, in one trip to the database: the channel's settings (as
        `channel_settings`) and its newest whole rounds (as `history`): as many as its
        "history_rounds" option says (its own, else its parent's), else `max_rounds`."""
        rows = await self._fetchall(
            TURN_CONTEXT, {"channel": channel_id, "parent": parent_id, "rounds": max_rounds}
        )
        messages = sorted((r for r in rows if r[0] == 1), key=lambda r: r[1])  # oldest first
        rounds = _pair_rounds(r[2:] for r in messages)
        return _settings((r for r in rows if r[0] != 1), channel_id), rounds

    async def add_turn(self, turn: TurnRecord) -> int:
        """Write a whole turn in one statement (so in one transaction); returns the turn's id.

        The question's attachments are stored as records with it, and the bytes of those in
        `turn.blobs` (and of every image) once per digest, linked to the question: a blob
        neither in `turn.blobs` nor stored already fails the turn (a StoreError, nothing
        written). A usage figure that is not a whole number from 0 to 2**63 - 1 (what a broken
        server may report) is stored as NULL, i.e. unreported, rather than failing the turn.
        """
        question, answer = turn.question, turn.answer
        params: list[object] = [
            turn.channel_id,
            turn.guild_id,
            question.author_id,
            turn.model,
            usage_figure(turn.prompt_tokens),
            usage_figure(turn.completion_tokens),
            time.time(),
            turn.question_message_id,
            question.role,
            question.author_name,
            question.content,
            question.tokens,
            int(question.bound),
            encode_attachments(question.attachments),
            answer.role,
            answer.author_id,
            answer.author_name,
            answer.content,
            answer.tokens,
            int(answer.bound),
            encode_attachments(answer.attachments),
        ]
        linked = linked_blobs(question.attachments, turn.blobs)
        for attachment in linked:
            data = turn.blobs.get(attachment.sha256)
            size = len(data) if data is not None else attachment.size
            params += (attachment.sha256, attachment.media_type, size, data)
        row = await self._write(write_turn_sql(len(linked)), params)
        return int(row[0][0])

    async def blobs(self, digests: Collection[str]) -> dict[str, bytes]:
        """The stored bytes of these attachments (by SHA-256 hex digest); absent ones left out."""
        wanted = list(dict.fromkeys(digests))
        found: dict[str, bytes] = {}
        for first in range(0, len(wanted), BLOBS_PER_QUERY):
            chunk = wanted[first : first + BLOBS_PER_QUERY]
            rows = await self._fetchall(
                f"SELECT sha256, data FROM blobs WHERE sha256 IN {_marks(len(chunk))}",  # noqa: S608 - ? only
                chunk,
            )
            found.update((digest, bytes(data)) for digest, data in rows)
        return found

    async def reset(self, channel_id: int) -> int:
        """Forget the channel's messages; returns how many rounds were forgotten.

        Usage figures are accounting and stay; the system prompt stays too. The messages'
        blobs go with them unless another message still refers to them (0005's trigger).
        """

        async def work() -> int:
            cursor = await self._db.execute(
                "DELETE FROM messages WHERE channel_id = ? AND role = 'user'", (channel_id,)
            )
            rounds = cursor.rowcount
            await self._db.execute("DELETE FROM messages WHERE channel_id = ?", (channel_id,))
            return rounds

        return await self._transaction(work)

    async def forget_question(self, channel_id: int, message_id: int) -> bool:
        """Forget the turn asked by Discord message `message_id`; True if there was one.

        Its question and answer leave the history (and the export), with their blobs unless
        another message still refers to them. The turn row stays, as the record of the tokens
        that were spent on it: usage figures still count it.
        """

        async def work() -> bool:
            cursor = await self._db.execute(
                "DELETE FROM messages WHERE turn_id IN (SELECT id FROM turns"
                " WHERE channel_id = ? AND question_message_id = ?)",
                (channel_id, message_id),
            )
            return cursor.rowcount > 0

        return await self._transaction(work)

    async def export_pages(
        self, channel_id: int, *, page_size: int = 500, newest_first: bool = False
    ) -> AsyncGenerator[list[StoredMessage], None]:
        """Every stored message of the channel, in pages of up to `page_size`, oldest first.

        Keyset pages on the (channel_id, id) index: each page is one trip to the database, and
        nothing is held between pages, so memory stays flat and other work goes on meanwhile.
        A page may end between a question and its answer.
        """
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        sql = EXPORT_NEWEST_FIRST if newest_first else EXPORT_OLDEST_FIRST
        bound = SQLITE_MAX_INTEGER if newest_first else -SQLITE_MAX_INTEGER - 1
        while True:
            rows = await self._fetchall(sql, (channel_id, bound, page_size))
            if not rows:
                return
            yield [
                StoredMessage(
                    Message(r[1], r[2], r[3], r[4], r[5], bool(r[7]), decode_attachments(r[8])),
                    created_at=r[6],
                )
                for r in rows
            ]
            if len(rows) < page_size:
                return
            bound = rows[-1][0]

    async def count_rounds(self, channel_id: int) -> int:
        """How many rounds (questions) the channel's stored conversation holds."""
        row = await self._fetchone(
            "SELECT COUNT(*) FROM messages WHERE channel_id = ? AND role = 'user'", (channel_id,)
        )
        assert row is not None
        return int(row[0])

    async def usage(self, channel_id: int) -> Usage:
        row = await self._fetchone(
            # Summed as high and low 32-bit halves: a plain SUM fails with "integer overflow"
            # past 2**63 - 1 (two absurd reported figures reach it), and /usage would then fail
            # for the channel for good. Each half's sum fits for any number of rows.
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens >> 32), 0),"
            " COALESCE(SUM(prompt_tokens & 4294967295), 0),"
            " COALESCE(SUM(completion_tokens >> 32), 0),"
            " COALESCE(SUM(completion_tokens & 4294967295), 0),"
            " SUM(prompt_tokens IS NULL OR completion_tokens IS NULL) FROM turns"
            " WHERE channel_id = ?",
            (channel_id,),
        )
        assert row is not None
        prompt = (int(row[1]) << 32) + int(row[2])
        completion = (int(row[3]) << 32) + int(row[4])
        return Usage(row[0], prompt, completion, row[5] or 0)

    # -- channel settings -----------------------------------------------------------------

    async def channel_settings(
        self, channel_id: int, parent_id: int | None = None
    ) -> ChannelSettings:
        """The channel's prompt, model, reasoning effort and options; a thread inherits each
        from its parent until set."""
        rows = await self._fetchall(CHANNEL_SETTINGS, {"channel": channel_id, "parent": parent_id})
        return _settings(rows, channel_id)

    async def set_system_prompt(
        self,
        channel_id: int,
        prompt: str | None,
        *,
        by_id: int | None,
        by_name: str | None,
        guild_id: int | None = None,
    ) -> None:
        """Set (or with None, clear) the channel's prompt, and record who changed it, when."""

        async def work() -> None:
            now = time.time()
            await self._db.execute(
                "INSERT INTO channels (channel_id, system_prompt, prompt_set_by_id,"
                " prompt_set_by_name, prompt_set_at, guild_id) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (channel_id) DO UPDATE SET system_prompt = excluded.system_prompt,"
                " prompt_set_by_id = excluded.prompt_set_by_id,"
                " prompt_set_by_name = excluded.prompt_set_by_name,"
                " prompt_set_at = excluded.prompt_set_at,"
                " guild_id = coalesce(excluded.guild_id, channels.guild_id)",
                (channel_id, prompt, by_id, by_name, now, guild_id),
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

    async def set_channel_model(
        self, channel_id: int, model: str | None, *, guild_id: int | None = None
    ) -> None:
        await self._write(
            "INSERT INTO channels (channel_id, model, guild_id) VALUES (?, ?, ?)"
            " ON CONFLICT (channel_id) DO UPDATE SET model = excluded.model,"
            " guild_id = coalesce(excluded.guild_id, channels.guild_id)",
            (channel_id, model, guild_id),
        )

    async def set_channel_effort(
        self, channel_id: int, effort: str | None, *, guild_id: int | None = None
    ) -> None:
        await self._write(
            "INSERT INTO channels (channel_id, reasoning_effort, guild_id) VALUES (?, ?, ?)"
            " ON CONFLICT (channel_id) DO UPDATE SET reasoning_effort = excluded.reasoning_effort,"
            " guild_id = coalesce(excluded.guild_id, channels.guild_id)",
            (channel_id, effort, guild_id),
        )

    async def set_channel_option(
        self, channel_id: int, name: str, value: str | None, *, guild_id: int | None = None
    ) -> None:
        """Set (or with None, unset, so it is inherited or the default again) one option.

        A guild id given is kept on the option and on the channel's row."""

        async def work() -> None:
            if value is None:
                await self._db.execute(
                    "DELETE FROM channel_options WHERE channel_id = ? AND name = ?",
                    (channel_id, name),
                )
            else:
                await self._db.execute(
                    "INSERT INTO channel_options (channel_id, name, value, guild_id, set_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel_id, name) DO UPDATE SET"
                    " value = excluded.value, set_at = excluded.set_at,"
                    " guild_id = coalesce(excluded.guild_id, channel_options.guild_id)",
                    (channel_id, name, value, guild_id, time.time()),
                )
            if guild_id is not None:
                await self._db.execute(
                    "INSERT INTO channels (channel_id, guild_id) VALUES (?, ?)"
                    " ON CONFLICT (channel_id) DO UPDATE SET guild_id = excluded.guild_id",
                    (channel_id, guild_id),
                )

        await self._transaction(work)

    async def reset_channel_settings(self, channel_id: int) -> None:
        """Unset the channel's model, effort and every option (not its prompt, not history)."""

        async def work() -> None:
            await self._db.execute(
                "UPDATE channels SET model = NULL, reasoning_effort = NULL WHERE channel_id = ?",
                (channel_id,),
            )
            await self._db.execute(
                "DELETE FROM channel_options WHERE channel_id = ?", (channel_id,)
            )

        await self._transaction(work)

    async def channels_with_option(self, name: str, values: Collection[str]) -> list[int]:
        """The channels whose own `name` option is one of `values` (e.g. the chat channels)."""
        wanted = list(dict.fromkeys(values))
        if not wanted:
            return []
        rows = await self._fetchall(
            "SELECT DISTINCT channel_id FROM channel_options"  # noqa: S608 - ? only
            f" WHERE name = ? AND value IN {_marks(len(wanted))} ORDER BY channel_id",
            [name, *wanted],
        )
        return [int(row[0]) for row in rows]

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

    # -- several processes (one, on SQLite: see bot/storage/local.py) ----------------------

    async def claim_question(self, question_id: int) -> bool:
        return self._claims.claim(question_id)

    async def take_cooldown(self, key: str, seconds: float) -> float:
        return self._cooldowns.take(key, seconds)

    def claim_shards(
        self, shard_ids: Sequence[int], on_lost: Callable[[], object] | None = None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        return process_shards(shard_ids)


def _settings(rows: Iterable[Sequence[Any]], channel_id: int) -> ChannelSettings:
    """A channel's settings from SETTINGS_ROWS: its own and its parent's `channels` rows
    (kind 0) and options (kind 2). Each setting is the channel's own, else its parent's."""
    rows_of: dict[bool, Sequence[Any]] = {}
    options_of: dict[bool, dict[str, str]] = {True: {}, False: {}}
    for row in rows:
        own = row[1] == channel_id
        if row[0] == 0:
            rows_of[own] = row
        else:
            options_of[own][row[2]] = row[3]
    prompt: SystemPrompt | None = None
    values: dict[str, str | None] = {"model": None, "reasoning_effort": None}
    inherited = {name for name in options_of[False] if name not in options_of[True]}
    for own in (True, False):
        if (found := rows_of.get(own)) is None:
            continue
        if prompt is None and found[2] is not None:
            prompt = SystemPrompt(found[2], found[3], found[4], found[5], inherited=not own)
        for name, value in (("model", found[6]), ("reasoning_effort", found[7])):
            if not values[name] and value:
                values[name] = value
                if not own:
                    inherited.add(name)
    return ChannelSettings(
        prompt,
        values["model"],
        values["reasoning_effort"],
        options={**options_of[False], **options_of[True]},
        inherited=frozenset(inherited),
    )


def _pair_rounds(rows_oldest_first: Iterable[Sequence[Any]]) -> list[Round]:
    """The window's rows (turn id, then a message's columns) paired into rounds."""
    return pair_rounds(
        (
            turn_id,
            Message(role, content, tokens, author_id, name, bool(bound), decode_attachments(a)),
        )
        for turn_id, role, content, tokens, author_id, name, bound, a in rows_oldest_first
    )


def _marks(count: int) -> str:
    """`(?, ?, ...)`: `count` parameters for an IN list."""
    return "(" + ", ".join(["?"] * count) + ")"


def _claim(path: str | os.PathLike[str], held: contextlib.ExitStack) -> Path:
    """Check the path, take the process lock (into `held`), create the file 0600 if need be."""
    path = Path(path).absolute()
    try:
        _check_database_path(path)
        held.enter_context(_lock_database(path) or contextlib.nullcontext())
        _check_database_path(path)  # again, now that no other chatlab can change it
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        _restrict(path)
    except OSError as exc:
        raise StoreError(f"cannot open the database at {path}: {_reason(exc)}") from exc
    return path


def _check_database_path(path: Path) -> None:
    """Refuse a path that is not (yet) a database file, before anything touches it."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return  # new: created below
    if stat.S_ISDIR(info.st_mode):
        raise StoreError(
            f"the database path {path} is a directory; set DATABASE_PATH to a file in it,"
            f" such as {path / 'chatlab.db'}"
        )
    if not stat.S_ISREG(info.st_mode):
        raise StoreError(f"the database path {path} is not a regular file")
    if info.st_size == 0:
        return  # an empty file is a new database
    with path.open("rb") as file:
        header = file.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise StoreError(
            f"{path} exists and is not an SQLite database; check DATABASE_PATH (chatlab will"
            " not overwrite it)"
        )


class _ProcessLock:
    """An exclusive `flock` on `<database>.lock`, held until closed (or the process ends).

    `flock` locks belong to an open file, so a second open in this same process is refused
    too, and the kernel releases the lock of a killed process. The file stays (deleting a lock
    file races with its next taker) and holds the pid of the last holder, for the message.
    """

    def __init__(self, database: Path) -> None:
        assert fcntl is not None
        self.path = database.with_name(database.name + ".lock")
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode("ascii", "replace").strip()
            os.close(self._fd)
            detail = f"pid {holder}" if holder.isdigit() else f"{self.path} is locked"
            raise DatabaseInUse(
                f"another chatlab process is using {database} ({detail}); stop it first"
            ) from None
        except BaseException:
            os.close(self._fd)
            raise
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def __enter__(self) -> _ProcessLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.close(self._fd)  # releases the lock


def _lock_database(path: Path) -> _ProcessLock | None:
    """Take the database's process lock; None where the platform has no `flock`."""
    if fcntl is None:
        log.warning("No process lock on this platform: never run two chatlab on %s", path)
        return None
    return _ProcessLock(path)


def _restrict(path: Path) -> None:
    """Make the database and its -wal and -shm files readable and writable by the owner only."""
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            info = file.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) != 0o600:
            file.chmod(0o600)


def _identity(info: os.stat_result) -> tuple[int, int]:
    return (info.st_dev, info.st_ino)


def _statements(script: str) -> Iterator[str]:
    """The statements of an SQL script, one by one (so that they run inside a transaction)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending.strip()
            pending = ""
    if pending.strip(" \n;"):
        raise ValueError(f"incomplete SQL statement: {pending.strip()[:60]}")


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _translate(exc: sqlite3.Error) -> StoreError:
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":
        return StorageFull("the disk is full")
    return StoreError(str(exc))
