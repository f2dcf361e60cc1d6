"""The heartbeat (a file touched while the gateway is connected) and `python -m bot health`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.health import Heartbeat, check, heartbeat, load_heartbeat_settings
from bot.settings import SettingsError

ROOT = Path(__file__).resolve().parent.parent


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_fresh_heartbeat_is_healthy(tmp_path):
    beat = tmp_path / "hb"
    beat.touch()
    age(beat, 20)

    health = check(beat, 90)

    assert health.healthy and health.line == "connected to Discord (heartbeat 20 s old)"


def test_a_heartbeat_older_than_the_max_age_is_not(tmp_path):
    beat = tmp_path / "hb"
    beat.touch()
    age(beat, 95)

    health = check(beat, 90)

    assert not health.healthy
    assert health.line.startswith(f"the heartbeat {beat} is 95 s old (HEARTBEAT_MAX_AGE is 90 s)")


def test_no_heartbeat_file_is_not_healthy(tmp_path):
    health = check(tmp_path / "hb", 90)

    assert not health.healthy and health.line.startswith(f"no heartbeat at {tmp_path / 'hb'}")


def test_a_heartbeat_from_a_clock_ahead_counts_as_fresh(tmp_path):
    beat = tmp_path / "hb"
    beat.touch()

    assert check(beat, 90, now=time.time() - 3600).healthy


def test_a_beat_touches_the_file_only_while_connected(tmp_path):
    connected = False
    beats = Heartbeat(tmp_path / "hb", lambda: connected)

    assert not beats.beat() and not beats.path.exists()
    connected = True
    assert beats.beat() and beats.path.exists()
    age(beats.path, 60)
    connected = False
    assert not beats.beat()
    assert time.time() - beats.path.stat().st_mtime > 59  # left to grow old


def test_a_heartbeat_that_cannot_be_written_is_logged_once(tmp_path, caplog):
    beats = Heartbeat(tmp_path / "missing" / "hb", lambda: True)

    assert not beats.beat() and not beats.beat()

    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        f"Cannot touch the heartbeat file {beats.path}"
    ]


async def test_the_heartbeat_beats_while_open_and_is_removed_on_entry_and_exit(tmp_path):
    path = tmp_path / "hb"
    path.touch()
    age(path, 3600)  # left by a killed run: says nothing about this one
    calls = 0

    def connected() -> bool:
        nonlocal calls
        calls += 1
        return calls >= 2  # the first beat comes before the gateway is ready

    async with heartbeat(path, connected, max_age=90, interval=0.001):
        assert not path.exists()
        while calls < 3:
            await asyncio.sleep(0.001)
        assert check(path, 90).healthy

    assert not path.exists()


def test_the_heartbeat_settings_are_read_without_the_secrets(tmp_path, monkeypatch):
    for name in ("DISCORD_TOKEN", "OPENAI_API_KEY", "HEARTBEAT_FILE", "HEARTBEAT_MAX_AGE"):
        monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("HEARTBEAT_FILE=/data/chatlab.heartbeat\nheartbeat_max_age=45\n")

    assert load_heartbeat_settings(env_file) == (Path("/data/chatlab.heartbeat"), 45.0)
    monkeypatch.setenv("HEARTBEAT_MAX_AGE", "60")  # the environment wins, as for the bot
    assert load_heartbeat_settings(env_file)[1] == 60.0
    assert load_heartbeat_settings(None) == (Path("chatlab.heartbeat"), 60.0)


def test_an_invalid_heartbeat_setting_is_one_line_naming_it(monkeypatch):
    monkeypatch.setenv("HEARTBEAT_MAX_AGE", "2")

    with pytest.raises(SettingsError, match=r"^HEARTBEAT_MAX_AGE is invalid: .*5"):
        load_heartbeat_settings(None)


def health_command(tmp_path: Path, *flags: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    clean.update(PYTHONPATH=str(ROOT), **env)  # no token, no API key
    return subprocess.run(
        [sys.executable, *flags, "-m", "bot", "health"],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_python_m_bot_health_exits_0_on_a_fresh_heartbeat_and_1_on_a_stale_one(tmp_path):
    beat = tmp_path / "data" / "chatlab.heartbeat"
    beat.parent.mkdir()
    beat.touch()
    env = {"HEARTBEAT_FILE": str(beat), "HEARTBEAT_MAX_AGE": "30"}

    fresh = health_command(tmp_path, **env)
    age(beat, 31)
    stale = health_command(tmp_path, **env)

    assert (fresh.returncode, fresh.stderr) == (0, "")
    assert fresh.stdout.startswith("chatlab: connected to Discord")
    assert stale.returncode == 1 and stale.stdout == ""
    assert stale.stderr.count("\n") == 1 and "is 31 s old" in stale.stderr


def test_python_m_bot_health_imports_neither_discord_nor_the_model_client(tmp_path):
    result = health_command(tmp_path, "-X", "importtime")

    assert result.returncode == 1  # no heartbeat here
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "bot.settings" in imported
    assert not {"discord", "openai", "aiosqlite", "bot.chat"} & imported
