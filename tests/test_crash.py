"""Crash safety: SIGKILL the core at random moments, many times; the database stays whole.

The order that makes this true: a turn is committed in one transaction *before* the answer is
reported as complete (the Discord edge's final edit). So after any crash the store holds whole
turns only, and every answer a member saw as complete is among them.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KILLS = 12


def check(database: Path, shown_complete: set[tuple[int, str]]) -> int:
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        broken = db.execute(
            "SELECT t.id FROM turns t LEFT JOIN messages m ON m.turn_id = t.id GROUP BY t.id"
            " HAVING COUNT(m.id) != 2 OR SUM(m.role = 'user') != 1"
            " OR SUM(m.role = 'assistant') != 1 OR t.prompt_tokens IS NULL"
            " OR t.completion_tokens IS NULL"
        ).fetchall()
        assert broken == [], f"half-written turns: {broken}"
        unlinked = db.execute(
            "SELECT m.id FROM messages m WHERE m.attachments IS NOT NULL AND NOT EXISTS"
            " (SELECT 1 FROM message_blobs b WHERE b.message_id = m.id)"
            " UNION ALL SELECT 1 FROM blobs WHERE NOT EXISTS"
            " (SELECT 1 FROM message_blobs b WHERE b.sha256 = blobs.sha256)"
        ).fetchall()
        assert unlinked == [], f"images without their bytes, or bytes without a message: {unlinked}"
        stored = set(
            db.execute("SELECT channel_id, content FROM messages WHERE role = 'user'").fetchall()
        )
    missing = shown_complete - stored
    assert not missing, f"answers shown as complete but not stored: {sorted(missing)[:5]}"
    return len(stored)


def test_sigkill_at_random_moments_leaves_only_whole_turns(tmp_path):
    database = tmp_path / "crash.db"
    chance = random.Random(20261123)
    shown_complete: set[tuple[int, str]] = set()
    stored = 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(KILLS):
        with subprocess.Popen(
            [sys.executable, "-m", "tests.crash_child", str(database)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        ) as child:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "READY"
            time.sleep(chance.uniform(0.02, 0.3))
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            for line in child.stdout.read().splitlines():
                parts = line.split(" ")
                if len(parts) == 3 and parts[0] == "COMPLETE":
                    shown_complete.add((int(parts[1]), parts[2]))

        stored = check(database, shown_complete)

    assert len(shown_complete) > KILLS  # the children really were answering when killed
    assert stored >= len(shown_complete)
    assert any(text.split("-")[1] == "image" for _, text in shown_complete)
