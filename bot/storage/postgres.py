"""The PostgreSQL engine (DATABASE_URL): its migrations and every SQL statement it runs.

It implements `bot.storage.base.Store` for several processes (or machines) sharing one database;
its migrations are the files in sql/postgres/ (the version is kept in `chatlab_schema`).

A small asyncpg pool (1 to 5 connections). Every statement is parameterised. The answer path is
one statement per trip and few trips: `turn_context` reads the channel's settings, its options
and its newest messages in one query (the window's LIMIT follows the "history_rounds" option,
computed in the query), and `add_turn` writes the turn, both messages, the question's image
bytes (once per digest) and their links in one statement (data-modifying CTEs: one statement
is one transaction, so after a crash the store holds whole turns only). Reading a channel's
window walks the (channel_id, id) index backwards from the channel's newest row.

What several processes share is kept by PostgreSQL's own guarantees:

- migrations run under a transaction-scoped advisory lock, the version re-read under it, so
  processes starting together migrate once;
- a question is claimed by one `INSERT ... ON CONFLICT DO UPDATE ... WHERE` (the primary key
  decides; the update takes over only a claim whose owner died before storing its turn: see
  CLAIM_QUESTION); claims older than a day and cooldowns run out are pruned now and then;
- a cooldown is taken by one `INSERT ... ON CONFLICT DO UPDATE ... WHERE until <= now()`;
- a shard is held by a session advisory lock, `pg_try_advisory_lock(LOCK_CLASS, shard)`, on a
  connection of its own kept open while the shards run (PostgreSQL releases it if the process
  dies); that connection is probed every PROBE_EVERY_SECONDS, and one gone quiet is ended so
  that the process hears it lost them (the same goes for the presence lock's connection).

A statement unanswered for COMMAND_TIMEOUT_SECONDS (the database's host lost without a word) is a
StoreError, not a wait of many minutes.

Errors are `StoreError`s, one line each: `StorageFull` for a full disk, and "cannot connect to
PostgreSQL at host:port/db: <reason>" at start-up. The URL's password never appears in either
(nor in a log line): the place is described without it, and it is scrubbed from every reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Collection,
    Iterable,
    Sequence,
)
from typing import Any, overload
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg  # type: ignore[import-untyped]

from bot.conversation import Message, Round
from bot.errors import ShardsInUse, StorageFull, StoreError
from bot.storage.base import load_migrations
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

log = logging.getLogger(__name__)

MIGRATIONS: tuple[str, ...] = load_migrations("postgres")
SCHEMA_VERSION = len(MIGRATIONS)

# The first key of chatlab's advisory locks ("chat"); the second is the shard id, or -1 for
# migrating.
LOCK_CLASS = 0x63686174
MIGRATION_LOCK = -1
# The first key of each process's presence lock ("pres"); the second is the process's owner
# token, written on the claims it makes (see CLAIM_QUESTION).
PRESENCE_CLASS = 0x70726573

POOL_MIN = 1
POOL_MAX = 5
CONNECT_TIMEOUT_SECONDS = 10.0
CLOSE_TIMEOUT_SECONDS = 10.0
# The longest a statement may go unanswered (a database host lost without a word, a partition:
# nothing closes the socket) before it is a StoreError, rather than a wait of many minutes with
# the channel's queue held. A copy's batch (migrate-to) has longer.
COMMAND_TIMEOUT_SECONDS = 60.0
COPY_TIMEOUT_SECONDS = 600.0
# The connections kept idle for their advisory locks (shards, presence) are probed this often: one
# gone quiet is ended, so that the process hears of it (`on_lost`) as when it is closed; the
# database may have dropped its locks already (a failover).
PROBE_EVERY_SECONDS = 15.0
PROBE_TIMEOUT_SECONDS = 10.0
MAX_FIGURE = 2**63 - 1
CLAIM_DAYS = 1  # a gateway replay never reaches further back
PRUNE_EVERY_SECONDS = 3600.0
# Rows deleted from each table per prune; a full batch brings the next prune to PRUNE_SOON_SECONDS
# (a backlog drains in short statements), as does a failed one.
PRUNE_BATCH_ROWS = 5000
PRUNE_SOON_SECONDS = 60.0

# InternalClientError: what asyncpg raises for a query on a connection whose server process was
# just killed, before it has noticed ("cannot switch to state ...").
DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    asyncio.TimeoutError,
)
LOST_CONNECTION = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.InternalClientError,
)

# -- the statements -----------------------------------------------------------------------------

# A channel's settings: its `channels` row and its parent's, and their options.
CHANNEL_SETTINGS = """
SELECT ARRAY(SELECT (channel_id, system_prompt, prompt_set_by_id, prompt_set_by_name,
                     prompt_set_at, model, reasoning_effort)
             FROM channels WHERE channel_id IN ($1, $2)),
       ARRAY(SELECT (channel_id, name, value) FROM channel_options WHERE channel_id IN ($1, $2))
"""

# What a turn reads, in one query: the channel's settings (as above), and its window: its newest
# messages, newest first, through the (channel_id, id) primary key (the only index on messages'
# ids: see 0001_initial.sql). How many rounds: the channel's own "history_rounds" option, else
# its parent's (a primary-key look-up each; a value that is not a whole number counts as unset),
# else $3.
TURN_CONTEXT = """
SELECT ARRAY(SELECT (channel_id, system_prompt, prompt_set_by_id, prompt_set_by_name,
                     prompt_set_at, model, reasoning_effort)
             FROM channels WHERE channel_id IN ($1, $2)),
       ARRAY(SELECT (channel_id, name, value) FROM channel_options WHERE channel_id IN ($1, $2)),
       ARRAY(SELECT (turn_id, role, content, tokens, author_id, author_name, tokens_bound,
                     attachments)
             FROM messages WHERE channel_id = $1 ORDER BY id DESC
             LIMIT 2 * GREATEST(0, COALESCE(
                 (SELECT CASE WHEN value ~ '^\\s*[0-9]{1,9}\\s*$' THEN trim(value)::bigint END
                  FROM channel_options
                  WHERE channel_id = $1 AND name = 'history_rounds'),
                 (SELECT CASE WHEN value ~ '^\\s*[0-9]{1,9}\\s*$' THEN trim(value)::bigint END
                  FROM channel_options
                  WHERE channel_id = $2 AND name = 'history_rounds'),
                 $3)))
"""
HISTORY = (
    "SELECT turn_id, role, content, tokens, author_id, author_name, tokens_bound, attachments"
    " FROM messages WHERE channel_id = $1 ORDER BY id DESC LIMIT $2"
)

# A whole turn in one statement. The two messages are inserted in order (the question first,
# so it has the lower id). Each blob the question refers to ($20: every image, and any other
# attachment whose bytes came with the turn) is linked to it, and its bytes stored unless
# already stored (or not brought: then it must be stored already, or the foreign key fails the
# whole statement). Foreign keys are checked at the end of the statement.
WRITE_TURN = """
WITH turn AS (
    INSERT INTO turns (channel_id, guild_id, user_id, model, prompt_tokens, completion_tokens,
                       created_at, question_message_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    RETURNING id
), stored_blobs AS (
    INSERT INTO blobs (sha256, media_type, size, data)
    SELECT b.sha256, b.media_type, b.size, b.data
    FROM unnest($20::text[], $21::text[], $22::bigint[], $23::bytea[])
         AS b (sha256, media_type, size, data)
    WHERE b.data IS NOT NULL
    ON CONFLICT (sha256) DO NOTHING
), written AS (
    INSERT INTO messages (channel_id, turn_id, role, author_id, author_name, content, tokens,
                          tokens_bound, attachments, created_at)
    SELECT $1, turn.id, m.role, m.author_id, m.author_name, m.content, m.tokens, m.bound,
           m.attachments, $7
    FROM turn, (VALUES (1, $9::text, $3::bigint, $10::text, $11::text, $12::bigint,
                        $13::boolean, $14::text),
                       (2, $15::text, $16::bigint, $17::text, $18::text, $19::bigint,
                        $24::boolean, $25::text))
         AS m (ord, role, author_id, author_name, content, tokens, bound, attachments)
    ORDER BY m.ord
    RETURNING id
), links AS (
    INSERT INTO message_blobs (message_id, sha256)
    SELECT (SELECT min(id) FROM written), digest FROM unnest($20::text[]) AS digest
), finished AS (
    UPDATE claims SET owner = NULL WHERE question_id = $8
)
SELECT id FROM turn
"""

# Claim a question: new, or claimed by a process that died (its presence lock is free) before
# storing the turn (owner still set). A live owner's claim, or a stored turn's, is refused.
CLAIM_QUESTION = """
INSERT INTO claims AS c (question_id, owner) VALUES ($1, $2)
ON CONFLICT (question_id) DO UPDATE SET owner = excluded.owner, claimed_at = now()
    WHERE c.owner IS NOT NULL AND c.owner <> excluded.owner
      AND NOT EXISTS (
          SELECT 1 FROM pg_locks AS l
          WHERE l.locktype = 'advisory' AND l.granted
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND l.classid = $3::integer::oid AND l.objid = c.owner::oid AND l.objsubid = 2)
RETURNING 1
"""

# Forget messages (the CTE `gone` names them) with their links to image bytes, and the bytes no
# other message refers to any more, in one statement; the user rows forgotten are counted.
_FORGET = """
WITH gone AS ({gone}),
links AS (
    DELETE FROM message_blobs WHERE message_id IN (SELECT id FROM gone) RETURNING sha256
), unreferenced AS (
    DELETE FROM blobs AS b
    WHERE b.sha256 IN (SELECT sha256 FROM links)
      AND NOT EXISTS (SELECT 1 FROM message_blobs AS mb
                      WHERE mb.sha256 = b.sha256
                        AND mb.message_id NOT IN (SELECT id FROM gone))
)
SELECT count(*) FILTER (WHERE role = 'user'), count(*),
       ARRAY(SELECT DISTINCT sha256 FROM links)
FROM gone
"""
# Run after a forget that unlinked images, as a statement of its own: a forget running at the
# same moment in another channel sharing an image saw this one's link (and this one its link),
# so each kept the bytes; whichever sweeps last sees both unlinks committed and deletes them.
SWEEP_BLOBS = """
DELETE FROM blobs AS b
WHERE b.sha256 = ANY($1::text[])
  AND NOT EXISTS (SELECT 1 FROM message_blobs AS mb WHERE mb.sha256 = b.sha256)
"""
RESET = _FORGET.format(gone="DELETE FROM messages WHERE channel_id = $1 RETURNING id, role")
FORGET_QUESTION = _FORGET.format(
    gone="DELETE FROM messages WHERE turn_id IN (SELECT id FROM turns"
    " WHERE channel_id = $1 AND question_message_id = $2) RETURNING id, role"
)

_EXPORT_COLUMNS = (
    "SELECT id, role, content, tokens, author_id, author_name, created_at, tokens_bound,"
    " attachments FROM messages"
)
EXPORT_OLDEST_FIRST = _EXPORT_COLUMNS + " WHERE channel_id = $1 AND id > $2 ORDER BY id LIMIT $3"
EXPORT_NEWEST_FIRST = (
    _EXPORT_COLUMNS + " WHERE channel_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
)

SET_PROMPT = """
WITH channel AS (
    INSERT INTO channels (channel_id, guild_id, system_prompt, prompt_set_by_id,
                          prompt_set_by_name, prompt_set_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (channel_id) DO UPDATE SET
        guild_id = COALESCE(excluded.guild_id, channels.guild_id),
        system_prompt = excluded.system_prompt,
        prompt_set_by_id = excluded.prompt_set_by_id,
        prompt_set_by_name = excluded.prompt_set_by_name,
        prompt_set_at = excluded.prompt_set_at
)
INSERT INTO prompt_changes (channel_id, prompt, set_by_id, set_by_name, set_at)
VALUES ($1, $3, $4, $5, $6)
"""

# Set or unset an option; a guild id given ($3) is kept on the channel's row too.
SET_OPTION = """
WITH channel AS (
    INSERT INTO channels (channel_id, guild_id) SELECT $1, $3::bigint WHERE $3 IS NOT NULL
    ON CONFLICT (channel_id) DO UPDATE SET guild_id = excluded.guild_id
)
INSERT INTO channel_options (channel_id, name, value, guild_id, set_at)
VALUES ($1, $2, $4, $3, $5)
ON CONFLICT (channel_id, name) DO UPDATE SET
    value = excluded.value,
    guild_id = COALESCE(excluded.guild_id, channel_options.guild_id),
    set_at = excluded.set_at
"""
UNSET_OPTION = """
WITH channel AS (
    INSERT INTO channels (channel_id, guild_id) SELECT $1, $3::bigint WHERE $3 IS NOT NULL
    ON CONFLICT (channel_id) DO UPDATE SET guild_id = excluded.guild_id
)
DELETE FROM channel_options WHERE channel_id = $1 AND name = $2
"""

PRUNE = """
WITH claims_pruned AS (
    DELETE FROM claims WHERE question_id IN (
        SELECT question_id FROM claims WHERE claimed_at < now() - make_interval(days => $1)
        LIMIT $2
    )
    RETURNING 1
), cooldowns_pruned AS (
    DELETE FROM cooldowns WHERE key IN (SELECT key FROM cooldowns WHERE until < now() LIMIT $2)
    RETURNING 1
)
SELECT greatest((SELECT count(*) FROM claims_pruned), (SELECT count(*) FROM cooldowns_pruned))
"""

TAKE_COOLDOWN = """
WITH taken AS (
    INSERT INTO cooldowns AS c (key, until)
    VALUES ($1, now() + make_interval(secs => $2::double precision))
    ON CONFLICT (key) DO UPDATE SET until = excluded.until WHERE c.until <= now()
    RETURNING 1
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM taken) THEN 0.0
            ELSE COALESCE((SELECT extract(epoch FROM until - now()) FROM cooldowns
                           WHERE key = $1), $2::double precision)
       END
"""


# What `bot.storage.copy` fills (meta merged, the rest refused unless empty), and its checks.
COPIED_TABLES = (
    "channels",
    "channel_options",
    "prompt_changes",
    "turns",
    "messages",
    "blobs",
    "message_blobs",
    "meta",
)
HOLDS_CONVERSATIONS = """
SELECT EXISTS (SELECT 1 FROM channels) OR EXISTS (SELECT 1 FROM channel_options)
    OR EXISTS (SELECT 1 FROM prompt_changes) OR EXISTS (SELECT 1 FROM turns)
    OR EXISTS (SELECT 1 FROM messages) OR EXISTS (SELECT 1 FROM blobs)
"""
ROW_COUNTS = """
SELECT (SELECT count(*) FROM channels) AS channels,
       (SELECT count(*) FROM channel_options) AS channel_options,
       (SELECT count(*) FROM prompt_changes) AS prompt_changes,
       (SELECT count(*) FROM turns) AS turns,
       (SELECT count(*) FROM messages) AS messages,
       (SELECT count(*) FROM blobs) AS blobs,
       (SELECT count(*) FROM message_blobs) AS message_blobs,
       (SELECT count(*) FROM meta) AS meta
"""
RESTART_IDENTITIES = """
SELECT setval(pg_get_serial_sequence('prompt_changes', 'id'),
              (SELECT COALESCE(max(id), 0) + 1 FROM prompt_changes), false),
       setval(pg_get_serial_sequence('turns', 'id'),
              (SELECT COALESCE(max(id), 0) + 1 FROM turns), false),
       setval(pg_get_serial_sequence('messages', 'id'),
              (SELECT COALESCE(max(id), 0) + 1 FROM messages), false)
"""


class PostgresStore:
    def __init__(self, pool: Any, url: str, owner: int = 0) -> None:
        self._pool = pool
        self._owner = owner  # this process's presence token (claims it makes carry it)
        self._url = url  # for the shards' own connection; never logged
        self._where = describe(url)
        self._next_prune = 0.0

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[PostgresStore]:
        """Connect (a pool of 1 to 5 connections) and migrate the database.

        Raises `StoreError`, one line without the password, if PostgreSQL cannot be reached or
        refuses, or if the database is from a newer chatlab.
        """
        pool = await _connect(url)
        try:
            store = cls(pool, url)
            await store._migrate()
            async with store._present() as owner:
                store._owner = owner
                yield store
        finally:
            try:
                await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT_SECONDS)
            except DRIVER_ERRORS:
                pool.terminate()
            except asyncio.CancelledError:
                pool.terminate()
                raise

    @contextlib.asynccontextmanager
    async def _present(self) -> AsyncIterator[int]:
        """Hold this process's presence lock, on a connection of its own, while open.

        Its token marks the claims this process makes; PostgreSQL releases the lock when the
        connection ends (the process exits, crashes or is killed), which frees those claims.
        """
        connection = await _connect_one(self._url, "chatlab presence")
        try:
            while True:
                token = secrets.randbelow(2**31 - 2) + 1
                try:
                    taken = await connection.fetchval(
                        "SELECT pg_try_advisory_lock($1, $2)", PRESENCE_CLASS, token
                    )
                except DRIVER_ERRORS as exc:
                    raise self._translate(exc) from None
                if taken:
                    break

            def lost(_connection: object) -> None:
                log.critical(
                    "Lost the database connection that marks this process alive: questions it"
                    " claimed may be answered by another process; restart this one"
                )

            connection.add_termination_listener(lost)
            try:
                async with _probed(connection):
                    yield token
            finally:
                connection.remove_termination_listener(lost)
        finally:
            await _close(connection)

    async def _migrate(self) -> None:
        """Bring the schema up to date in one transaction, under the migration lock.

        The version is read under the lock: a process that started at the same moment may have
        migrated while this one waited, and then there is nothing left to do.
        """
        try:
            async with self._pool.acquire() as connection, connection.transaction():
                await connection.execute(
                    "SELECT pg_advisory_xact_lock($1, $2)", LOCK_CLASS, MIGRATION_LOCK
                )
                # Created only when absent: a role that may not create tables can run the bot
                # on a database migrated by its owner.
                if await connection.fetchval("SELECT to_regclass('chatlab_schema')") is None:
                    await connection.execute(
                        "CREATE TABLE chatlab_schema (version INTEGER NOT NULL)"
                    )
                version = await connection.fetchval("SELECT max(version) FROM chatlab_schema")
                version = int(version or 0)
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"the database is from a newer chatlab (schema {version} >"
                        f" {SCHEMA_VERSION})"
                    )
                for number in range(version, SCHEMA_VERSION):
                    log.info("Migrating the database to schema version %d", number + 1)
                    await connection.execute(MIGRATIONS[number])
                    await connection.execute(
                        "INSERT INTO chatlab_schema (version) VALUES ($1)", number + 1
                    )
        except DRIVER_ERRORS as exc:
            raise StoreError(
                f"cannot prepare the database at {self._where}: {_reason(exc, self._url)}"
            ) from None

    # -- plumbing -------------------------------------------------------------------------

    async def _fetch(self, sql: str, *args: object) -> list[Any]:
        try:
            return list(await self._pool.fetch(sql, *args))
        except DRIVER_ERRORS as exc:
            raise self._translate(exc) from None

    async def _fetchrow(self, sql: str, *args: object) -> Any:
        try:
            return await self._pool.fetchrow(sql, *args)
        except DRIVER_ERRORS as exc:
            raise self._translate(exc) from None

    async def _execute(self, sql: str, *args: object) -> None:
        try:
            await self._pool.execute(sql, *args)
        except DRIVER_ERRORS as exc:
            raise self._translate(exc) from None

    def _translate(self, exc: BaseException) -> StoreError:
        if isinstance(exc, asyncpg.DiskFullError):
            return StorageFull("the database's disk is full")
        if isinstance(exc, LOST_CONNECTION):
            return StoreError(
                f"lost the connection to PostgreSQL at {self._where}: {_reason(exc, self._url)}"
            )
        return StoreError(f"PostgreSQL: {_reason(exc, self._url)}")

    # -- conversation ---------------------------------------------------------------------

    async def history(self, channel_id: int, max_rounds: int) -> list[Round]:
        """The channel's newest `max_rounds` whole rounds, oldest first."""
        if max_rounds <= 0:
            return []
        rows = await self._fetch(HISTORY, channel_id, max_rounds * 2)
        return _pair_rounds(reversed(rows))

    async def turn_context(
        self, channel_id: int, parent_id: int | None, max_rounds: int
    ) -> tuple[ChannelSettings, list[Round]]:
        """What a turn reads, in one query: the channel's settings (as `channel_settings`) and
        its newest whole rounds (as `history`, the count from its "history_rounds" option)."""
        row = await self._fetchrow(TURN_CONTEXT, channel_id, parent_id, max_rounds)
        channels, options, messages = row
        return _settings(channels, options, channel_id), _pair_rounds(reversed(messages))

    async def add_turn(self, turn: TurnRecord) -> int:
        """Write a whole turn (and its images' bytes) in one statement; the turn's id.

        A usage figure that is not a whole number from 0 to 2**63 - 1 is stored as NULL, i.e.
        unreported, rather than failing the turn.
        """
        question, answer = turn.question, turn.answer
        linked = linked_blobs(question.attachments, turn.blobs)
        data = [turn.blobs.get(a.sha256) for a in linked]
        row = await self._fetchrow(
            WRITE_TURN,
            turn.channel_id,
            turn.guild_id,
            question.author_id,
            turn.model,
            usage_figure(turn.prompt_tokens),
            usage_figure(turn.completion_tokens),
            time.time(),
            turn.question_message_id,
            question.role,
            to_text(question.author_name),
            to_text(question.content),
            question.tokens,
            question.bound,
            encode_attachments(question.attachments),
            answer.role,
            answer.author_id,
            to_text(answer.author_name),
            to_text(answer.content),
            answer.tokens,
            [a.sha256 for a in linked],
            [a.media_type for a in linked],
            [len(d) if d is not None else a.size for a, d in zip(linked, data, strict=True)],
            data,
            answer.bound,
            encode_attachments(answer.attachments),
        )
        return int(row[0])

    async def blobs(self, digests: Collection[str]) -> dict[str, bytes]:
        """The stored bytes of these attachments (by SHA-256 hex digest); absent ones left out."""
        if not digests:
            return {}
        rows = await self._fetch(
            "SELECT sha256, data FROM blobs WHERE sha256 = ANY($1::text[])", list(digests)
        )
        return {row[0]: bytes(row[1]) for row in rows}

    async def reset(self, channel_id: int) -> int:
        """Forget the channel's messages and their attachments; how many rounds were forgotten.

        Usage figures stay (the turn rows), and so do the channel's settings and prompt.
        """
        row = await self._fetchrow(RESET, channel_id)
        await self._sweep(row[2])
        return int(row[0])

    async def forget_question(self, channel_id: int, message_id: int) -> bool:
        """Forget the turn asked by Discord message `message_id`; True if there was one. The
        turn row stays, as the record of the tokens spent on it."""
        row = await self._fetchrow(FORGET_QUESTION, channel_id, message_id)
        await self._sweep(row[2])
        return int(row[1]) > 0

    async def _sweep(self, unlinked: Sequence[str] | None) -> None:
        """Delete the unlinked images nothing refers to any more (see SWEEP_BLOBS)."""
        if unlinked:
            await self._execute(SWEEP_BLOBS, list(unlinked))

    async def export_pages(
        self, channel_id: int, *, page_size: int = 500, newest_first: bool = False
    ) -> AsyncGenerator[list[StoredMessage], None]:
        """Every stored message of the channel in keyset pages on the (channel_id, id) index,
        one query each, nothing held between pages."""
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        sql = EXPORT_NEWEST_FIRST if newest_first else EXPORT_OLDEST_FIRST
        bound = MAX_FIGURE if newest_first else -MAX_FIGURE - 1
        while True:
            rows = await self._fetch(sql, channel_id, bound, page_size)
            if not rows:
                return
            yield [
                StoredMessage(
                    Message(
                        r[1],
                        from_text(r[2]),
                        r[3],
                        r[4],
                        from_text(r[5]),
                        bool(r[7]),
                        decode_attachments(r[8]),
                    ),
                    created_at=r[6],
                )
                for r in rows
            ]
            if len(rows) < page_size:
                return
            bound = rows[-1][0]

    async def count_rounds(self, channel_id: int) -> int:
        row = await self._fetchrow(
            "SELECT count(*) FROM messages WHERE channel_id = $1 AND role = 'user'", channel_id
        )
        return int(row[0])

    async def usage(self, channel_id: int) -> Usage:
        row = await self._fetchrow(
            "SELECT count(*), COALESCE(sum(prompt_tokens), 0), COALESCE(sum(completion_tokens), 0),"
            " count(*) FILTER (WHERE prompt_tokens IS NULL OR completion_tokens IS NULL)"
            " FROM turns WHERE channel_id = $1",
            channel_id,
        )
        return Usage(int(row[0]), int(row[1]), int(row[2]), int(row[3]))

    # -- channel settings -----------------------------------------------------------------

    async def channel_settings(
        self, channel_id: int, parent_id: int | None = None
    ) -> ChannelSettings:
        """The channel's settings; a thread inherits each one from its parent until set."""
        row = await self._fetchrow(CHANNEL_SETTINGS, channel_id, parent_id)
        return _settings(row[0], row[1], channel_id)

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
        await self._execute(
            SET_PROMPT, channel_id, guild_id, to_text(prompt), by_id, to_text(by_name), time.time()
        )

    async def prompt_changes(self, channel_id: int, limit: int = 10) -> list[PromptChange]:
        """The channel's latest system-prompt changes, newest first."""
        rows = await self._fetch(
            "SELECT prompt, set_by_id, set_by_name, set_at FROM prompt_changes"
            " WHERE channel_id = $1 ORDER BY id DESC LIMIT $2",
            channel_id,
            limit,
        )
        return [PromptChange(from_text(r[0]), r[1], from_text(r[2]), r[3]) for r in rows]

    async def set_channel_model(
        self, channel_id: int, model: str | None, *, guild_id: int | None = None
    ) -> None:
        await self._execute(
            "INSERT INTO channels (channel_id, guild_id, model) VALUES ($1, $2, $3)"
            " ON CONFLICT (channel_id) DO UPDATE SET model = excluded.model,"
            " guild_id = COALESCE(excluded.guild_id, channels.guild_id)",
            channel_id,
            guild_id,
            model,
        )

    async def set_channel_effort(
        self, channel_id: int, effort: str | None, *, guild_id: int | None = None
    ) -> None:
        await self._execute(
            "INSERT INTO channels (channel_id, guild_id, reasoning_effort) VALUES ($1, $2, $3)"
            " ON CONFLICT (channel_id) DO UPDATE SET reasoning_effort = excluded.reasoning_effort,"
            " guild_id = COALESCE(excluded.guild_id, channels.guild_id)",
            channel_id,
            guild_id,
            effort,
        )

    async def set_channel_option(
        self, channel_id: int, name: str, value: str | None, *, guild_id: int | None = None
    ) -> None:
        """Set (or with None, unset, so it is inherited or the default again) one option."""
        if value is None:
            await self._execute(
                UNSET_OPTION,
                channel_id,
                name,
                guild_id,
            )
            return
        await self._execute(
            SET_OPTION,
            channel_id,
            name,
            guild_id,
            value,
            time.time(),
        )

    async def reset_channel_settings(self, channel_id: int) -> None:
        """Unset the channel's model, effort and every option (not its prompt, not history)."""
        await self._execute(
            "WITH options AS (DELETE FROM channel_options WHERE channel_id = $1)"
            " UPDATE channels SET model = NULL, reasoning_effort = NULL WHERE channel_id = $1",
            channel_id,
        )

    async def channels_with_option(self, name: str, values: Collection[str]) -> list[int]:
        """The channels whose own `name` option is one of `values`."""
        rows = await self._fetch(
            "SELECT channel_id FROM channel_options WHERE name = $1 AND value = ANY($2::text[])"
            " ORDER BY channel_id",
            name,
            list(values),
        )
        return [int(row[0]) for row in rows]

    # -- small key/value facts ------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        row = await self._fetchrow("SELECT value FROM meta WHERE key = $1", key)
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        await self._execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            key,
            value,
        )

    # -- several processes ------------------------------------------------------------------

    async def claim_question(self, question_id: int) -> bool:
        """True the first time `question_id` is claimed by any process on this database, or
        when the process that claimed it died before storing its turn (a re-delivery after a
        crash is then answered, not lost)."""
        await self._prune_now_and_then()
        row = await self._fetchrow(CLAIM_QUESTION, question_id, self._owner, PRESENCE_CLASS)
        return row is not None

    async def take_cooldown(self, key: str, seconds: float) -> float:
        """0.0 and the cooldown started if none is running; else the seconds left of it."""
        await self._prune_now_and_then()
        row = await self._fetchrow(TAKE_COOLDOWN, key, float(max(0.0, seconds)))
        return max(0.0, float(row[0]))

    async def _prune_now_and_then(self) -> None:
        """Once an hour per process: claims older than `CLAIM_DAYS`, and cooldowns that have run
        out (an expired row means the same as none: `TAKE_COOLDOWN` overwrites it), so neither
        table grows with every question and member for ever. At most PRUNE_BATCH_ROWS of each
        at a time; a failure is logged, never the question's."""
        now = time.monotonic()
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_EVERY_SECONDS
        try:
            row = await self._fetchrow(PRUNE, CLAIM_DAYS, PRUNE_BATCH_ROWS)
        except StoreError as exc:
            self._next_prune = now + PRUNE_SOON_SECONDS
            log.warning("Could not prune old claims and cooldowns (trying again soon): %s", exc)
            return
        if int(row[0]) >= PRUNE_BATCH_ROWS:
            self._next_prune = now + PRUNE_SOON_SECONDS

    @contextlib.asynccontextmanager
    async def claim_shards(
        self, shard_ids: Sequence[int], on_lost: Callable[[], object] | None = None
    ) -> AsyncIterator[None]:
        """Hold these shards (a session advisory lock each, on a connection of this context's
        own) while the context is open; `ShardsInUse` if another process holds any of them."""
        shards = sorted(set(shard_ids))
        if not shards:
            yield
            return
        connection = await _connect_one(self._url)
        try:
            try:
                rows = await connection.fetch(
                    "SELECT shard, pg_try_advisory_lock($1, shard)"
                    " FROM unnest($2::integer[]) AS shard ORDER BY shard",
                    LOCK_CLASS,
                    shards,
                )
            except DRIVER_ERRORS as exc:
                raise self._translate(exc) from None
            taken_elsewhere = [int(r[0]) for r in rows if not r[1]]
            if taken_elsewhere:
                await _release(connection)
                named = ", ".join(map(str, taken_elsewhere))
                plural = "s" if len(taken_elsewhere) > 1 else ""
                raise ShardsInUse(
                    f"another chatlab process runs shard{plural} {named} on this database;"
                    " give each process its own SHARD_IDS"
                )
            named = ", ".join(map(str, shards))
            log.info("Holding shards %s", named)

            def lost(_connection: object) -> None:
                log.critical(
                    "Lost the connection that holds shards %s: another process may take them;"
                    " restart this one",
                    named,
                )
                if on_lost is not None:
                    on_lost()

            connection.add_termination_listener(lost)
            try:
                async with _probed(connection):
                    yield
            finally:
                connection.remove_termination_listener(lost)
        finally:
            await _close(connection)

    # -- a copy from SQLite (bot/storage/copy.py) --------------------------------------------

    async def holds_conversations(self) -> bool:
        """Whether anything but small facts (meta, claims, cooldowns) is stored."""
        row = await self._fetchrow(HOLDS_CONVERSATIONS)
        return bool(row[0])

    async def copy_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
    ) -> None:
        """Insert rows as they are (ids kept), in one transaction, by COPY. `table` and
        `columns` are the copy's own constants, never input."""
        try:
            async with self._pool.acquire() as connection, connection.transaction():
                await connection.copy_records_to_table(
                    table,
                    records=[tuple(row) for row in rows],
                    columns=list(columns),
                    timeout=COPY_TIMEOUT_SECONDS,
                )
        except DRIVER_ERRORS as exc:
            raise self._translate(exc) from None

    async def merge_meta(self, rows: Sequence[tuple[str, str]]) -> None:
        """Add these facts, keeping any this database already has."""
        await self._execute(
            "INSERT INTO meta (key, value) SELECT * FROM unnest($1::text[], $2::text[])"
            " ON CONFLICT (key) DO NOTHING",
            [row[0] for row in rows],
            [row[1] for row in rows],
        )

    async def restart_identities(self) -> None:
        """Make every identity continue after the largest id stored (after a copy kept ids)."""
        await self._execute(RESTART_IDENTITIES)

    async def row_counts(self) -> dict[str, int]:
        """How many rows each table the copy fills holds."""
        row = await self._fetchrow(ROW_COUNTS)
        return {name: int(row[name]) for name in COPIED_TABLES}


# -- connecting ---------------------------------------------------------------------------------


async def _connect(url: str) -> Any:
    try:
        return await asyncpg.create_pool(
            url,
            min_size=POOL_MIN,
            max_size=POOL_MAX,
            timeout=CONNECT_TIMEOUT_SECONDS,
            command_timeout=COMMAND_TIMEOUT_SECONDS,
            server_settings={"application_name": "chatlab"},
        )
    except (*DRIVER_ERRORS, ValueError) as exc:
        # `from None`: the driver's own exception could carry the address it was given.
        raise StoreError(
            f"cannot connect to PostgreSQL at {describe(url)}: {_reason(exc, url)}"
        ) from None


async def _connect_one(url: str, name: str = "chatlab shards") -> Any:
    try:
        return await asyncpg.connect(
            url,
            timeout=CONNECT_TIMEOUT_SECONDS,
            server_settings={"application_name": name},
        )
    except (*DRIVER_ERRORS, ValueError) as exc:
        raise StoreError(
            f"cannot connect to PostgreSQL at {describe(url)}: {_reason(exc, url)}"
        ) from None


@contextlib.asynccontextmanager
async def _probed(connection: Any) -> AsyncIterator[None]:
    """While open, probe the idle `connection` every PROBE_EVERY_SECONDS; if it does not answer
    within PROBE_TIMEOUT_SECONDS, end it (its termination listeners then run, as when the
    database closes it)."""

    async def probe() -> None:
        while True:
            await asyncio.sleep(PROBE_EVERY_SECONDS)
            try:
                await asyncio.wait_for(connection.fetchval("SELECT 1"), PROBE_TIMEOUT_SECONDS)
            except DRIVER_ERRORS:
                connection.terminate()
                return

    task = asyncio.create_task(probe(), name="chatlab connection probe")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _close(connection: Any) -> None:
    """Close a connection of our own, or end it if it does not close in time (or we are
    cancelled meanwhile)."""
    try:
        await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT_SECONDS)
    except DRIVER_ERRORS:
        connection.terminate()
    except asyncio.CancelledError:
        connection.terminate()
        raise


async def _release(connection: Any) -> None:
    with contextlib.suppress(*DRIVER_ERRORS):
        await connection.execute("SELECT pg_advisory_unlock_all()")


def describe(url: str) -> str:
    """Where a PostgreSQL URL points, as `host:port/database`, without user or password."""
    try:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        host = parts.hostname or (query.get("host") or ["localhost"])[0]
        try:
            port = parts.port or int((query.get("port") or ["5432"])[0])
        except ValueError:
            port = None
        database = unquote(parts.path.lstrip("/")) or (query.get("dbname") or [""])[0]
    except ValueError:
        return "the DATABASE_URL given (it cannot be read as a URL)"
    where = f"{host}:{port}" if port is not None else host
    return f"{where}/{database}" if database else where


def _secrets(url: str) -> list[str]:
    found: list[str] = []
    with contextlib.suppress(ValueError):
        parts = urlsplit(url)
        if parts.password:
            found += [parts.password, unquote(parts.password)]
        for value in parse_qs(parts.query).get("password", []):
            found += [value, unquote(value)]
    return sorted({s for s in found if s}, key=len, reverse=True)


def _reason(exc: BaseException, url: str) -> str:
    """The error's first line, with any password of `url` blanked out."""
    if isinstance(exc, asyncio.TimeoutError):
        text = "timed out"
    else:
        text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    text = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


# -- rows to records ------------------------------------------------------------------------

# PostgreSQL's text cannot hold U+0000, which SQLite keeps (a model may write one). Members' and
# models' text (contents, names, prompts) is stored with U+0000 as ESCAPE + "0" and ESCAPE itself
# (a noncharacter, never in ordinary text) as ESCAPE + "1": text without either is unchanged.
ESCAPE = "\uffff"


@overload
def to_text(text: str) -> str: ...
@overload
def to_text(text: None) -> None: ...
def to_text(text: str | None) -> str | None:
    """Text as PostgreSQL stores it (see ESCAPE)."""
    if text is None or ("\x00" not in text and ESCAPE not in text):
        return text
    return text.replace(ESCAPE, ESCAPE + "1").replace("\x00", ESCAPE + "0")


@overload
def from_text(text: str) -> str: ...
@overload
def from_text(text: None) -> None: ...
def from_text(text: str | None) -> str | None:
    """Text as it was given to `to_text`."""
    if text is None or ESCAPE not in text:
        return text
    pieces = text.split(ESCAPE)
    out = [pieces[0]]
    for piece in pieces[1:]:
        out.append(("\x00" if piece[:1] == "0" else ESCAPE) + piece[1:])
    return "".join(out)


def _settings(channels: Iterable[Any], options: Iterable[Any], channel_id: int) -> ChannelSettings:
    """A channel's settings from its rows and its parent's: each setting its own, else the
    parent's (then named in `inherited`)."""
    channels = list(channels)
    own = next((r for r in channels if r[0] == channel_id), None)
    parent = next((r for r in channels if r[0] != channel_id), None)
    prompt: SystemPrompt | None = None
    values: dict[str, str] = {}
    inherited: set[str] = set()
    for row, from_parent in ((own, False), (parent, True)):
        if row is None:
            continue
        if prompt is None and row[1] is not None:
            prompt = SystemPrompt(
                from_text(row[1]), row[2], from_text(row[3]), row[4], inherited=from_parent
            )
        for name, value in (("model", row[5]), ("reasoning_effort", row[6])):
            if name not in values and value:
                values[name] = value
                if from_parent:
                    inherited.add(name)
    chosen: dict[str, str] = {}
    for option_channel, name, value in sorted(options, key=lambda r: r[0] != channel_id):
        if name in chosen:
            continue
        chosen[name] = value
        if option_channel != channel_id:
            inherited.add(name)
    return ChannelSettings(
        prompt,
        values.get("model"),
        values.get("reasoning_effort"),
        options=chosen,
        inherited=frozenset(inherited),
    )


def _pair_rounds(rows_oldest_first: Iterable[Sequence[Any]]) -> list[Round]:
    """The window's rows (turn id, then a message's columns) paired into rounds."""
    return pair_rounds(
        (
            turn_id,
            Message(
                role,
                from_text(content),
                tokens,
                author_id,
                from_text(name),
                bool(bound),
                decode_attachments(a),
            ),
        )
        for turn_id, role, content, tokens, author_id, name, bound, a in rows_oldest_first
    )
