"""What only the SQLite engine does: its file, its pragmas, its query plans, its migrations.

The behaviour every engine shares is in tests/contract/ (run against SQLite and PostgreSQL).
"""

from __future__ import annotations

import sqlite3
import stat

import pytest

from bot.conversation import Message, legacy_framing_tokens
from bot.errors import StoreError
from bot.storage.sqlite import (
    EXPORT_NEWEST_FIRST,
    EXPORT_OLDEST_FIRST,
    MIGRATIONS,
    SCHEMA_VERSION,
    SQLiteStore,
    TurnRecord,
)


def turn(channel: int, n: int, *, user: int = 1, usage: tuple[int, int] | None = (10, 5)):
    return TurnRecord(
        channel_id=channel,
        model="gpt-4o-mini",
        question=Message("user", f"question {n}", 7, author_id=user, author_name=f"user{user}"),
        answer=Message("assistant", f"answer {n}", 3),
        prompt_tokens=usage[0] if usage else None,
        completion_tokens=usage[1] if usage else None,
    )


async def test_schema_is_versioned_in_wal_mode_with_foreign_keys(db_path, store):
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    async with store._db.execute("PRAGMA foreign_keys") as cursor:
        assert (await cursor.fetchone())[0] == 1


async def test_database_files_are_readable_by_their_owner_only(db_path, store):
    await store.add_turn(turn(1, 1))  # the WAL and shared-memory files exist now

    for path in (
        db_path,
        db_path.with_name(db_path.name + "-wal"),
        db_path.with_name(db_path.name + "-shm"),
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


async def test_a_newer_schema_is_refused(db_path):
    with sqlite3.connect(db_path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    with pytest.raises(StoreError, match="newer chatlab"):
        async with SQLiteStore.open(db_path):
            pass


async def test_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="cannot open the database"):
        async with SQLiteStore.open(tmp_path / "no" / "such" / "dir" / "x.db"):
            pass


async def test_reading_the_window_uses_the_channel_index(store):
    async with store._db.execute(
        "EXPLAIN QUERY PLAN SELECT turn_id, role, content, tokens, author_id, author_name"
        " FROM messages WHERE channel_id = ? ORDER BY id DESC LIMIT ?",
        (1, 10),
    ) as cursor:
        plan = " ".join(row[-1] for row in await cursor.fetchall())

    assert "USING INDEX messages_by_channel" in plan or "USING COVERING INDEX" in plan
    assert "TEMP B-TREE" not in plan  # no sort of the whole channel


# -- schema 2: question ids, forgetting a question, legacy token counts -----------------------


def schema_1_database(path, rows, author_name="ann"):
    """A database as chatlab left it before schema 2, holding `rows` (question, answer) turns."""
    with sqlite3.connect(path) as raw:
        raw.executescript(MIGRATIONS[0])
        raw.execute("PRAGMA user_version = 1")
        for n, (question, answer) in enumerate(rows, start=1):
            raw.execute("INSERT INTO turns VALUES (?, 1, 5, 'm', 10, 5, 0.0)", (n,))
            raw.execute(
                "INSERT INTO messages (channel_id, turn_id, role, author_id, author_name, content,"
                " tokens, created_at) VALUES (1, ?, 'user', 5, ?, ?, 7, 0.0)",
                (n, author_name, question),
            )
            raw.execute(
                "INSERT INTO messages (channel_id, turn_id, role, content, tokens, created_at)"
                " VALUES (1, ?, 'assistant', ?, 3, 0.0)",
                (n, answer),
            )
    raw.close()


async def test_migration_2_raises_legacy_question_counts_to_the_json_framing(db_path):
    schema_1_database(db_path, [("plain", "a1"), ('say "hi"\nthen\tgo', "a2")])

    async with SQLiteStore.open(db_path) as store:
        rounds = await store.history(1, 10)
    async with SQLiteStore.open(db_path) as reopened:  # migrated once, not twice
        again = await reopened.history(1, 10)

    assert [r.question.tokens for r in rounds] == [
        7 + legacy_framing_tokens("plain", "ann"),
        7 + legacy_framing_tokens('say "hi"\nthen\tgo', "ann"),
    ]
    assert [r.answer.tokens for r in rounds] == [3, 3]
    assert again == rounds


async def test_migration_2_leaves_rows_sent_without_a_name_as_they_were(db_path):
    schema_1_database(db_path, [("plain", "a1")], author_name=None)

    async with SQLiteStore.open(db_path) as store:
        (only,) = await store.history(1, 10)

    assert only.question.tokens == 7


async def test_a_new_turn_after_migration_keeps_its_count(db_path):
    schema_1_database(db_path, [("old", "a")])

    async with SQLiteStore.open(db_path) as store:
        await store.add_turn(turn(1, 2))
        rounds = await store.history(1, 10)

    assert [r.question.tokens for r in rounds] == [7 + legacy_framing_tokens("old", "ann"), 7]


async def test_finding_a_question_uses_the_question_index(store):
    async with store._db.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM turns WHERE channel_id = ? AND question_message_id = ?",
        (1, 111),
    ) as cursor:
        plan = " ".join(row[-1] for row in await cursor.fetchall())

    assert "turns_by_question" in plan


async def test_export_pages_read_by_keyset_on_the_channel_index(store):
    for sql in (EXPORT_OLDEST_FIRST, EXPORT_NEWEST_FIRST):
        async with store._db.execute("EXPLAIN QUERY PLAN " + sql, (1, 0, 500)) as cursor:
            plan = " ".join(row[-1] for row in await cursor.fetchall())

        assert "messages_by_channel (channel_id=? AND id" in plan, plan
        assert "TEMP B-TREE" not in plan
