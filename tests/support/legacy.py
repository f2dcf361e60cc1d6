"""Databases as earlier chatlab versions left them, for the upgrade tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.storage.sqlite import MIGRATIONS


def schema_3_database(path: Path) -> None:
    """A schema-3 SQLite file holding one turn (id 7, channel 1): Ann's "old" and its answer."""
    with sqlite3.connect(path) as raw:
        raw.create_function("chatlab_legacy_framing_tokens", 2, lambda content, name: 0)
        for script in MIGRATIONS[:3]:
            raw.executescript(script)
        raw.execute("PRAGMA user_version = 3")
        raw.execute("INSERT INTO turns (id, channel_id, model, created_at) VALUES (7, 1, 'm', 0)")
        raw.execute(
            "INSERT INTO messages (channel_id, turn_id, role, author_id, author_name, content,"
            " tokens, created_at) VALUES (1, 7, 'user', 5, 'ann', 'old', 4, 0),"
            " (1, 7, 'assistant', NULL, NULL, 'old answer', 2, 0)"
        )
    raw.close()
