"""What only the PostgreSQL engine does: its query plans, its migrations under a lock, its
connection errors (never with the password), its pruning of old claims, its shard locks.

The behaviour every engine shares is in tests/contract/ (run against SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import replace

import asyncpg
import pytest

from bot.conversation import Attachment, Message
from bot.errors import StorageFull, StoreError
from bot.storage import TurnRecord
from bot.storage import postgres as postgres_engine
from bot.storage.postgres import (
    EXPORT_NEWEST_FIRST,
    EXPORT_OLDEST_FIRST,
    HISTORY,
    SCHEMA_VERSION,
    TURN_CONTEXT,
    PostgresStore,
)
from tests.support import postgres
from tests.support.relay import Relay

PASSWORD = "hunter2-Sekr3t"


@pytest.fixture
async def url():
    async with postgres.fresh_database() as fresh:
        yield fresh


@pytest.fixture
async def crowded(url):
    """A database with 6,000 messages in channel 1, and 6,000 newer ones in 200 other channels
    (walking an index on id backwards to find channel 1's newest would read them all)."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "INSERT INTO turns (id, channel_id, model, created_at)"
            " SELECT g, CASE WHEN g <= 3000 THEN 1 ELSE 2 + g % 200 END, 'm', g"
            " FROM generate_series(1, 6000) AS g;"
            " INSERT INTO messages (channel_id, turn_id, role, content, tokens, created_at)"
            " SELECT t.channel_id, t.id, r.role, 'text', 1, t.id"
            " FROM turns AS t, (VALUES ('user'), ('assistant')) AS r (role) ORDER BY t.id;"
            " ANALYZE"
        )
    finally:
        await connection.close()
    return url


async def plan(url: str, sql: str, *args: object) -> dict:
    """The executed plan of `sql` (EXPLAIN ANALYZE), as PostgreSQL's JSON."""
    connection = await asyncpg.connect(url)
    try:
        text = await connection.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, *args)
    finally:
        await connection.close()
    return json.loads(text)[0]["Plan"]


def nodes(node: dict) -> list[dict]:
    return [node, *(n for child in node.get("Plans", []) for n in nodes(child))]


def message_scans(root: dict) -> list[dict]:
    return [n for n in nodes(root) if n.get("Relation Name") == "messages"]


async def test_reading_the_window_walks_the_channel_index_from_its_newest_row(crowded):
    history = await plan(crowded, HISTORY, 1, 10)
    context = await plan(crowded, TURN_CONTEXT, 1, None, 5)

    for root in (history, context):
        (scan,) = message_scans(root)
        assert scan["Node Type"] == "Index Scan", scan
        assert (scan["Index Name"], scan["Scan Direction"]) == ("messages_by_channel", "Backward")
        assert scan["Actual Rows"] == 10  # only the newest rows of 6,000 in the channel
        assert not [n for n in nodes(root) if n["Node Type"] == "Sort"]


async def test_export_pages_read_by_keyset_on_the_channel_index(crowded):
    for sql, bound in ((EXPORT_OLDEST_FIRST, 2000), (EXPORT_NEWEST_FIRST, 5000)):
        (scan,) = message_scans(await plan(crowded, sql, 1, bound, 500))

        assert scan["Index Name"] == "messages_by_channel", scan
        assert "id" in scan["Index Cond"]
        assert scan["Actual Rows"] == 500


async def test_the_history_rounds_option_sets_the_windows_limit_inside_the_query(crowded):
    async with PostgresStore.open(crowded) as store:
        await store.set_channel_option(1, "history_rounds", "3")
        await store.set_channel_option(3, "history_rounds", "not a number")

        _, own = await store.turn_context(1, None, 5)
        _, unreadable = await store.turn_context(3, None, 4)
    (scan,) = message_scans(await plan(crowded, TURN_CONTEXT, 1, None, 5))

    assert (len(own), len(unreadable)) == (3, 4)  # an unreadable value counts as unset
    assert scan["Actual Rows"] == 6


# -- migrations ----------------------------------------------------------------------------


async def test_processes_starting_together_migrate_once():
    async with postgres.fresh_database(migrated=False) as empty:

        async def start() -> None:
            async with PostgresStore.open(empty) as store:
                await store.set_meta("started", "yes")

        await asyncio.gather(*(start() for _ in range(4)))
        connection = await asyncpg.connect(empty)
        try:
            versions = await connection.fetch("SELECT version FROM chatlab_schema")
        finally:
            await connection.close()

    assert [row[0] for row in versions] == list(range(1, SCHEMA_VERSION + 1))


async def test_a_newer_schema_is_refused(url):
    connection = await asyncpg.connect(url)
    await connection.execute("INSERT INTO chatlab_schema VALUES ($1)", SCHEMA_VERSION + 1)
    await connection.close()

    with pytest.raises(StoreError, match="newer chatlab"):
        async with PostgresStore.open(url):
            pass


async def test_a_role_that_may_not_create_tables_runs_on_a_migrated_database(url):
    owner = await asyncpg.connect(url)
    try:
        await owner.execute(
            "CREATE ROLE chatlab_runner LOGIN;"
            " GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public"
            " TO chatlab_runner;"
            " GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO chatlab_runner"
        )
        runner_url = url.replace("postgres:@", "chatlab_runner:@")
        async with PostgresStore.open(runner_url) as store:
            await store.set_meta("k", "v")
            assert await store.get_meta("k") == "v"
    finally:
        await owner.execute("DROP OWNED BY chatlab_runner; DROP ROLE chatlab_runner")
        await owner.close()


# -- connection errors ---------------------------------------------------------------------


async def test_a_server_that_is_not_there_is_one_line_without_the_password(caplog):
    caplog.set_level(logging.DEBUG)
    url = f"postgresql://chatlab:{PASSWORD}@127.0.0.1:1/chatlab"

    with pytest.raises(StoreError) as refused:
        async with PostgresStore.open(url):
            pass

    message = str(refused.value)
    assert message.startswith("cannot connect to PostgreSQL at 127.0.0.1:1/chatlab: ")
    assert "\n" not in message
    assert PASSWORD not in message
    assert PASSWORD not in caplog.text
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


async def test_a_database_that_does_not_exist_is_named_without_the_password(url, caplog):
    caplog.set_level(logging.DEBUG)
    missing = url.replace("postgres:@", f"postgres:{PASSWORD}@").replace("/test_", "/nope_", 1)
    assert PASSWORD in missing

    with pytest.raises(StoreError, match=r"cannot connect to PostgreSQL at .*/nope_") as refused:
        async with PostgresStore.open(missing):
            pass

    assert "does not exist" in str(refused.value)
    assert PASSWORD not in str(refused.value)
    assert PASSWORD not in caplog.text


async def test_a_full_disk_is_storage_full(url):
    async with PostgresStore.open(url) as store:
        error = store._translate(asyncpg.DiskFullError("could not extend file"))

    assert isinstance(error, StorageFull)


async def test_a_lost_connection_is_a_store_error(url):
    async with PostgresStore.open(url) as store:
        error = store._translate(asyncpg.ConnectionDoesNotExistError("connection was closed"))

    assert str(error).startswith("lost the connection to PostgreSQL at ")


async def test_connections_killed_under_the_store_are_replaced(url):
    async with PostgresStore.open(url) as store:
        await store.set_meta("k", "v")
        admin = await asyncpg.connect(postgres.server_url())
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'chatlab'"
        )
        await admin.close()

        # A query racing the kill may fail — as a StoreError (one sentence for the member), never
        # a raw driver error — and then the pool's new connections answer.
        for attempt in range(3):
            try:
                assert await store.get_meta("k") == "v"
                break
            except StoreError:
                assert attempt < 2


# -- claims and shards -----------------------------------------------------------------------


async def test_claims_older_than_a_day_are_pruned(url):
    connection = await asyncpg.connect(url)
    await connection.execute(
        "INSERT INTO claims VALUES (1, now() - interval '25 hours'), (2, now() - interval '1 hour')"
    )
    await connection.close()

    async with PostgresStore.open(url) as store:
        old = await store.claim_question(1)
        recent = await store.claim_question(2)

    assert (old, recent) == (True, False)


async def test_cooldowns_that_have_run_out_are_pruned_and_running_ones_kept(url):
    connection = await asyncpg.connect(url)
    await connection.execute(
        "INSERT INTO cooldowns VALUES ('user:1', now() - interval '1 second'),"
        " ('user:2', now() + interval '1 hour')"
    )

    async with PostgresStore.open(url) as store:
        assert await store.take_cooldown("user:3", 60) == 0.0
        left = await store.take_cooldown("user:2", 60)
    keys = {r["key"] for r in await connection.fetch("SELECT key FROM cooldowns")}
    await connection.close()

    assert keys == {"user:2", "user:3"}  # the run-out one is gone, the running ones stay
    assert 3500 < left <= 3600


async def test_a_backlog_is_pruned_in_batches_and_a_failed_prune_is_not_the_questions(
    url, monkeypatch, caplog
):
    connection = await asyncpg.connect(url)
    await connection.execute(
        "INSERT INTO cooldowns SELECT 'user:' || n, now() - interval '1 hour'"
        " FROM generate_series(1, 5) AS n"
    )
    monkeypatch.setattr(postgres_engine, "PRUNE_BATCH_ROWS", 2)

    async with PostgresStore.open(url) as store:
        assert await store.claim_question(10)  # one batch of 2, then the next soon, not in an hour
        left = await connection.fetchval("SELECT count(*) FROM cooldowns")
        soon = store._next_prune - time.monotonic()
        monkeypatch.setattr(postgres_engine, "PRUNE", "SELECT 1 / 0")  # a prune that fails
        store._next_prune = 0.0
        assert await store.claim_question(11)  # the question is still claimed
        assert await store.take_cooldown("user:9", 60) == 0.0
    await connection.close()

    assert left == 3 and soon <= postgres_engine.PRUNE_SOON_SECONDS
    (warning,) = [r for r in caplog.records if "Could not prune" in r.getMessage()]
    assert warning.levelno == logging.WARNING


async def test_shards_are_released_when_their_holder_dies_and_it_says_so(url, caplog):
    one, two = PostgresStore.open(url), PostgresStore.open(url)
    told: list[str] = []
    async with one as first, two as second, first.claim_shards([3], lambda: told.append("lost")):
        admin = await asyncpg.connect(postgres.server_url())
        await admin.execute(  # as when the holding process is killed
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'chatlab shards'"
        )
        await admin.close()
        async with second.claim_shards([3]):
            pass
        await asyncio.sleep(0)  # the holder's connection notices it was closed

    (critical,) = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert "Lost the connection that holds shards 3" in critical.getMessage()
    assert told == ["lost"]  # the process is told, to stop before another one runs shard 3


async def test_a_shards_connection_gone_quiet_is_noticed_and_the_process_told(url, monkeypatch):
    # A database host lost without a word (a failover, a partition): nothing closes the socket
    # of the idle connection holding the shards, while the server side may drop its locks.
    monkeypatch.setattr(postgres_engine, "PROBE_EVERY_SECONDS", 0.05)
    monkeypatch.setattr(postgres_engine, "PROBE_TIMEOUT_SECONDS", 0.2)
    lost = asyncio.Event()
    async with (
        Relay.to(url) as relay,
        PostgresStore.open(relay.url_for(url)) as store,
        store.claim_shards([5], lost.set),
    ):
        relay.hold()
        try:
            await asyncio.wait_for(lost.wait(), 5)
        finally:
            relay.release()


async def test_a_statement_gone_unanswered_is_a_store_error_not_a_wait_for_ever(url, monkeypatch):
    monkeypatch.setattr(postgres_engine, "COMMAND_TIMEOUT_SECONDS", 0.2)
    async with Relay.to(url) as relay, PostgresStore.open(relay.url_for(url)) as store:
        relay.hold()
        # The network comes back after 3 s: a store that waits for it answers then, instead.
        asyncio.get_running_loop().call_later(3, relay.release)
        with pytest.raises(StoreError, match="timed out"):
            await store.count_rounds(1)
        relay.release()
        assert await store.count_rounds(1) == 0  # and the store works once the network does


# -- trips -----------------------------------------------------------------------------------


class CountingPool:
    """The store's pool, counting the statements sent through it (a trip each)."""

    def __init__(self, pool) -> None:
        self._pool = pool
        self.trips: list[str] = []

    def __getattr__(self, name):
        method = getattr(self._pool, name)
        if name not in ("fetch", "fetchrow", "fetchval", "execute", "acquire"):
            return method

        def counted(*args, **kwargs):
            self.trips.append(name)
            return method(*args, **kwargs)

        return counted


async def test_a_turn_reads_in_one_trip_and_writes_in_one_statement(url):
    picture = b"\x89PNG" + bytes(200)
    digest = hashlib.sha256(picture).hexdigest()
    question = Message(
        "user",
        "look",
        5,
        1,
        "ann",
        attachments=(Attachment("p.png", "image", "image/png", 204, digest),),
    )
    record = TurnRecord(
        1, "m", question, Message("assistant", "a", 1), 1, 1, blobs={digest: picture}
    )
    async with PostgresStore.open(url) as store:
        await store.set_channel_option(2, "history_rounds", "3")
        store._pool = counting = CountingPool(store._pool)
        await store.turn_context(1, 2, 5)
        await store.add_turn(record)
        await store.add_turn(replace(record, blobs={}))  # the image stored already

        assert counting.trips == ["fetchrow", "fetchrow", "fetchrow"]
        assert await store.blobs([digest]) == {digest: picture}
