"""`python -m bot`: start-up (shards, intents, heartbeat) and its failures, each one clear line,
never a traceback; `migrate-to`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
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

import bot.__main__ as bot_main
from bot.__main__ import QUIET_LOGGERS, RedactSecrets, main
from bot.client import ChatBot, ShardedChatBot
from bot.errors import ShardsInUse, StoreError
from bot.storage.sqlite import SQLiteStore

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


@pytest.fixture
def bot_env(tmp_path, monkeypatch, root_logging):
    """An environment for main(["run"]) in this process: no .env, a fresh SQLite file."""
    for name in [n for n in os.environ if n.isupper() and n not in ("PATH", "HOME", "LANG")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISCORD_TOKEN", "MTAx.FAKE-DISCORD-TOKEN.secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abc")
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "chatlab.db"))
    monkeypatch.setenv("HEARTBEAT_FILE", str(tmp_path / "chatlab.heartbeat"))
    return monkeypatch


@pytest.fixture
def started(monkeypatch):
    """ChatBot.start replaced: the bots main() would connect, and nothing is connected."""
    bots: list[ChatBot] = []

    async def start(self: ChatBot, token: str, *, reconnect: bool = True) -> None:
        bots.append(self)

    monkeypatch.setattr(ChatBot, "start", start)
    return bots


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert "Traceback" not in err and "FAKE-DISCORD-TOKEN" not in err
    return lines[-1]


def test_discord_refusing_the_message_content_intent_names_the_portal_switch(
    bot_env, monkeypatch, capsys
):
    async def start(self: ChatBot, token: str, *, reconnect: bool = True) -> None:
        raise discord.PrivilegedIntentsRequired(shard_id=0)

    monkeypatch.setattr(ChatBot, "start", start)
    bot_env.setenv("MESSAGE_CONTENT", "on")

    code = main(["run"])

    last = one_error_line(capsys.readouterr().err)
    assert code == 1
    assert last.startswith("chatlab: Discord refused the Message Content intent")
    assert "Bot → Privileged Gateway Intents → Message Content" in last
    assert "MESSAGE_CONTENT=off" in last


async def chat_channel(path: Path, channel_id: int, mode: str) -> None:
    async with SQLiteStore.open(path) as store:
        await store.set_channel_option(channel_id, "mode", mode, guild_id=7)


@pytest.mark.parametrize(
    ("setting", "mode", "requested"),
    [
        ("auto", None, False),
        ("auto", "chat", True),
        ("auto", "threads", True),
        ("auto", "mention", False),
        ("on", None, True),
        ("off", "chat", False),
    ],
)
def test_the_message_content_intent_is_asked_for_as_message_content_says(
    bot_env, started, tmp_path, setting, mode, requested
):
    if mode is not None:
        asyncio.run(chat_channel(tmp_path / "chatlab.db", 123, mode))
    bot_env.setenv("MESSAGE_CONTENT", setting)

    assert main(["run"]) == 0

    (bot,) = started
    assert bot.intents.message_content is requested
    assert not bot.intents.members and not bot.intents.presences  # never the other two


def test_shard_settings_start_the_sharded_bot_for_those_shards(bot_env, started, capsys):
    bot_env.setenv("SHARD_COUNT", "8")
    bot_env.setenv("SHARD_IDS", "2-3,6")

    assert main(["run"]) == 0

    (bot,) = started
    assert isinstance(bot, ShardedChatBot)
    assert (bot.shard_count, bot.shard_ids) == (8, [2, 3, 6])
    err = capsys.readouterr().err
    assert "Running shard(s) 2-3, 6 of 8" in err
    assert "cannot share the SQLite file" in err and "DATABASE_URL" in err


def test_without_shard_settings_one_connection_runs_and_claims_shard_zero(
    bot_env, started, monkeypatch, capsys
):
    claimed: list[tuple[int, ...]] = []
    real = SQLiteStore.claim_shards

    def claim_shards(self: SQLiteStore, shard_ids, on_lost=None):
        claimed.append(tuple(shard_ids))
        return real(self, shard_ids, on_lost)

    monkeypatch.setattr(SQLiteStore, "claim_shards", claim_shards)

    assert main(["run"]) == 0

    (bot,) = started
    assert not isinstance(bot, discord.AutoShardedClient)
    assert claimed == [(0,)]
    assert "cannot share" not in capsys.readouterr().err


def test_all_shards_in_one_process_need_no_database_url(bot_env, started, capsys):
    bot_env.setenv("SHARD_COUNT", "2")

    assert main(["run"]) == 0

    assert started[0].shard_ids == [0, 1]
    assert "cannot share" not in capsys.readouterr().err


def test_shards_run_by_another_process_stop_start_up_with_one_line(
    bot_env, started, monkeypatch, capsys
):
    @contextlib.asynccontextmanager
    async def taken(self: SQLiteStore, shard_ids, on_lost=None):
        raise ShardsInUse("another chatlab process runs shards 2, 3 on this database; ...")
        yield

    monkeypatch.setattr(SQLiteStore, "claim_shards", taken)
    bot_env.setenv("SHARD_COUNT", "4")
    bot_env.setenv("SHARD_IDS", "2-3")

    code = main(["run"])

    assert code == 1 and started == []  # never connected
    assert one_error_line(capsys.readouterr().err) == (
        "chatlab: another chatlab process runs shards 2, 3 on this database; ..."
    )


def test_losing_the_shards_claim_stops_the_bot_with_one_line(bot_env, started, monkeypatch, capsys):
    @contextlib.asynccontextmanager
    async def lost_at_once(self: SQLiteStore, shard_ids, on_lost=None):
        on_lost()  # as when the database connection holding the shards ends
        yield

    monkeypatch.setattr(SQLiteStore, "claim_shards", lost_at_once)

    code = main(["run"])

    assert code == 1
    assert one_error_line(capsys.readouterr().err) == (
        "chatlab: lost the database connection that holds this process's shards; stopped so"
        " that no shard runs twice (start it again to claim them anew)"
    )


def test_a_heartbeat_left_by_an_earlier_run_is_removed_and_none_is_left_after(
    bot_env, started, tmp_path
):
    beat = tmp_path / "chatlab.heartbeat"
    beat.touch()

    assert main(["run"]) == 0

    assert started and not beat.exists()


@dataclasses.dataclass
class FakeReport:
    counts: dict[str, int]
    sample_size: int


def test_migrate_to_prints_the_counts_and_never_the_password(bot_env, monkeypatch, capsys):
    copied: list[tuple[Path, str]] = []

    async def migrate_to(url: str, source: Path) -> FakeReport:
        copied.append((source, url))
        return FakeReport({"channels": 3, "messages": 1204}, sample_size=53)

    monkeypatch.setattr(bot_main, "migrate_to", migrate_to)
    url = "postgresql://chatlab:S3cret-PASSWORD@db.example:5432/chatlab"

    code = main(["migrate-to", url])

    out, err = capsys.readouterr()
    assert code == 0 and copied == [(Path(os.environ["DATABASE_PATH"]), url)]
    assert out.splitlines() == [
        f"Copied {os.environ['DATABASE_PATH']} to postgresql://chatlab:***@db.example:5432/chatlab:",
        "  channels           3",
        "  messages       1,204",
        "Verified: the row counts are equal, and 53 sampled turns read back the same from both"
        " databases.",
    ]
    assert "S3cret-PASSWORD" not in out + err


def test_migrate_to_a_url_that_is_not_postgresql_is_one_line(bot_env, capsys):
    code = main(["migrate-to", "mysql://root:hunter22@db/chatlab"])

    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "expected a postgresql:// URL" in err and "hunter22" not in err


def test_migrate_to_failing_is_one_line_without_the_password(bot_env, monkeypatch, capsys):
    async def migrate_to(url: str, source: Path) -> FakeReport:
        raise StoreError(f"cannot connect to PostgreSQL at {url}")  # a careless message

    monkeypatch.setattr(bot_main, "migrate_to", migrate_to)

    code = main(["migrate-to", "postgresql://chatlab:S3cret-PASSWORD@127.0.0.1:9/chatlab"])

    err = capsys.readouterr().err
    assert code == 1
    assert one_error_line(err) == (
        "chatlab: cannot connect to PostgreSQL at postgresql://chatlab:***@127.0.0.1:9/chatlab"
    )


def test_migrate_to_copies_into_postgresql_and_prints_what_it_copied(bot_env, tmp_path, capsys):
    from tests.support.postgres import create_database, release_database

    async def fill() -> None:
        async with SQLiteStore.open(tmp_path / "chatlab.db") as store:
            await store.set_system_prompt(5, "Be brief.", by_id=7, by_name="mod")
            await store.set_channel_option(5, "mode", "chat", guild_id=9)

    asyncio.run(fill())
    url = asyncio.run(create_database())
    # The test server trusts local connections: a password is accepted and ignored.
    with_password = url.replace("postgres:@", "postgres:S3cret-PASSWORD@", 1)
    assert with_password != url
    try:
        code = main(["migrate-to", with_password])
    finally:
        asyncio.run(release_database(url))

    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith(f"Copied {tmp_path / 'chatlab.db'} to postgresql://postgres:***@/")
    counts = dict(line.split() for line in out.splitlines()[1:-1])
    assert counts["channels"] == "1" and counts["channel_options"] == "1"
    assert counts["prompt_changes"] == "1" and counts["messages"] == "0"
    assert out.splitlines()[-1].startswith("Verified: the row counts are equal")
    assert "S3cret-PASSWORD" not in out + err


def test_run_settles_the_collector_once_set_up_and_before_it_connects(bot_env, monkeypatch):
    # `python -m bot` runs with the collector off until set up (bot/__main__.py); `run` must
    # turn it back on before connecting, or the bot would run for ever without it.
    seen: dict[str, object] = {}

    async def sync_commands(self: ChatBot, *, force_global: bool = False) -> None:
        seen["while_setting_up"] = gc.isenabled()

    async def start(self: ChatBot, token: str, *, reconnect: bool = True) -> None:
        await self.setup_hook()  # what login runs
        seen["connecting"] = (gc.isenabled(), gc.get_freeze_count() > 0)

    monkeypatch.setattr(ChatBot, "sync_commands", sync_commands)
    monkeypatch.setattr(ChatBot, "start", start)
    gc.disable()

    assert main(["run"]) == 0

    assert seen == {"while_setting_up": False, "connecting": (True, True)}
