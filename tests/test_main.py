"""`python -m bot` fails at start with one clear line, never a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import discord
import pytest
from aiohttp import web

from bot.__main__ import QUIET_LOGGERS, RedactSecrets, main

ROOT = Path(__file__).resolve().parent.parent


def run_bot(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    clean["PYTHONPATH"] = str(ROOT)
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
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
        OPENAI_BASE_URL="http://proxy-user:FAKE-PASSWORD@127.0.0.1:9/v1",
        LOG_LEVEL="DEBUG",
        DATABASE_PATH=str(tmp_path / "chatlab.db"),
    )

    output = result.stdout + result.stderr
    assert result.returncode == 1  # no network here: Discord cannot be reached
    assert "cannot reach Discord" in output or "rejected DISCORD_TOKEN" in output
    assert "FAKE-DISCORD-TOKEN" not in output and "FAKE-KEY" not in output
    assert "Model server http://proxy-user:***@127.0.0.1:9/v1" in output
    assert "FAKE-PASSWORD" not in output


def test_a_dev_guild_id_that_is_not_a_discord_id_stops_sync_with_one_line(tmp_path):
    result = run_bot(
        tmp_path,
        "sync",
        DISCORD_TOKEN="secret-token-xyz",
        OPENAI_API_KEY="sk-abc",
        DEV_GUILD_ID="-5",
    )

    assert result.returncode == 2
    assert result.stderr.startswith(
        "chatlab: DEV_GUILD_ID is invalid: expected a Discord server id"
    )
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


class FakeDiscord:
    """Just enough of Discord's REST API for a login, answering the dev guild's sync with 403
    Missing Access, as Discord does for a server the bot has not joined. Runs in a thread:
    `main()` owns its own event loop."""

    def __init__(self) -> None:
        self.port = 0
        self.paths: list[str] = []
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _start(self) -> web.AppRunner:
        user = {"id": "1001", "username": "chatlab", "discriminator": "0", "avatar": None}
        app_info = {
            "id": "1001",
            "name": "chatlab",
            "description": "",
            "icon": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": {**user, "id": "42", "username": "owner"},
            "verify_key": "00",
            "flags": 0,
        }

        def reply(payload: object, status: int = 200) -> web.Response:
            # discord.py parses a body as JSON only for exactly this content type.
            body = json.dumps(payload).encode()
            return web.Response(body=body, status=status, content_type="application/json")

        async def handle(request: web.Request) -> web.Response:
            self.paths.append(f"{request.method} {request.path}")
            if request.path.endswith("/users/@me"):
                return reply(user)
            if request.path.endswith("/oauth2/applications/@me"):
                return reply(app_info)
            return reply({"message": "Missing Access", "code": 50001}, status=403)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return runner

    def __enter__(self) -> FakeDiscord:
        self._thread.start()
        self._runner = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(5)
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


@pytest.fixture
def root_logging():
    """main() configures the process's logging; put it back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    for handler in root.handlers:
        for redactor in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
            handler.removeFilter(redactor)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def test_discord_refusing_the_dev_guild_sync_stops_start_up_with_one_line(
    tmp_path, monkeypatch, capsys, root_logging
):
    for name in [n for n in os.environ if n.isupper() and n not in ("PATH", "HOME", "LANG")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env there
    monkeypatch.setenv("DISCORD_TOKEN", "MTAx.FAKE-DISCORD-TOKEN.secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abc")
    monkeypatch.setenv("DEV_GUILD_ID", "123456789012345678")  # a server the bot is not in
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "chatlab.db"))
    with FakeDiscord() as discord_api:
        monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{discord_api.port}/v10")

        code = main(["run"])

    err = capsys.readouterr().err
    assert "PUT /v10/applications/1001/guilds/123456789012345678/commands" in discord_api.paths
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("chatlab: Discord refused a start-up request (403 Forbidden")
    assert "DEV_GUILD_ID" in last and "Traceback" not in err and "FAKE-DISCORD-TOKEN" not in err
