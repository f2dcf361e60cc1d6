"""`python -m bot` fails at start with one clear line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_bot(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    clean["PYTHONPATH"] = str(ROOT)
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,  # no .env there
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_missing_settings_stop_start_up_with_one_line(tmp_path):
    result = run_bot(tmp_path)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DISCORD_TOKEN is required" in lines[0] and "OPENAI_API_KEY is required" in lines[0]


def test_an_invalid_value_names_the_variable_and_not_the_secret(tmp_path):
    result = run_bot(
        tmp_path, DISCORD_TOKEN="secret-token-xyz", OPENAI_API_KEY="sk-abc", MAX_ROUNDS="lots"
    )

    assert result.returncode == 2
    assert result.stderr.startswith("chatlab: MAX_ROUNDS is invalid")
    assert "secret-token-xyz" not in result.stderr and "sk-abc" not in result.stderr


def test_a_database_in_a_missing_directory_stops_start_up_with_one_line(tmp_path):
    result = run_bot(
        tmp_path,
        DISCORD_TOKEN="secret-token-xyz",
        OPENAI_API_KEY="sk-abc",
        DATABASE_PATH=str(tmp_path / "missing" / "chatlab.db"),
    )

    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("chatlab: cannot open the database at ")
    assert "Traceback" not in result.stderr
    assert "secret-token-xyz" not in result.stderr + result.stdout


def test_a_database_path_that_cannot_be_a_file_stops_start_up_with_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")

    result = run_bot(
        tmp_path,
        DISCORD_TOKEN="secret-token-xyz",
        OPENAI_API_KEY="sk-abc",
        DATABASE_PATH=str(blocker / "chatlab.db"),
    )

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("chatlab: cannot open the database")
    assert "Traceback" not in result.stderr


def test_secrets_stay_out_of_debug_output_even_when_start_up_fails(tmp_path):
    result = run_bot(
        tmp_path,
        DISCORD_TOKEN="MTAx.FAKE-DISCORD-TOKEN.secret",
        OPENAI_API_KEY="sk-FAKE-KEY-secret",
        LOG_LEVEL="DEBUG",
        DATABASE_PATH=str(tmp_path / "chatlab.db"),
    )

    output = result.stdout + result.stderr
    assert result.returncode == 1  # no network here: Discord cannot be reached
    assert "cannot reach Discord" in output or "rejected DISCORD_TOKEN" in output
    assert "FAKE-DISCORD-TOKEN" not in output and "FAKE-KEY" not in output
