"""The composition root and the command line: settings → logging → resources → bot → start.

python -m bot                 run the bot (the Procfile's worker)
python -m bot sync            push the slash commands to Discord globally, then exit
python -m bot health          exit 0 if the bot is connected to Discord (a fresh heartbeat), else 1
python -m bot migrate-to URL  copy the SQLite database (DATABASE_PATH) into PostgreSQL at URL

Start-up fails with one line on stderr (`chatlab: ...`), never a traceback. No secret of the
settings reaches a log line: the transport loggers that print whole URLs are kept at WARNING, and
every root handler carries `RedactSecrets`, which replaces each of `Settings.secret_values()` with
`***` in the message and in the traceback.

Running: the process claims its shards in the store before it connects (no two processes ever
run one shard; SHARD_COUNT unset claims shard 0, where a single process runs), asks for the
Message Content intent if MESSAGE_CONTENT says so, and keeps the heartbeat while connected.
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and sys.argv[1:] == ["health"]:
    # Docker runs the health check every 30 s: answer it from the two heartbeat settings, without
    # importing discord, openai and the rest of the bot (about a second of imports).
    from bot.health import main as health_main

    sys.exit(health_main())

if __name__ == "__main__":
    # Start-up makes well over 100,000 objects that live as long as the process; looking for cycles
    # among them while they are being made took ~200 ms of a ~0.9 s start. The collector is off
    # until the process is set up, then on again with them out of its sight (settle_collector).
    import gc

    gc.disable()

import argparse
import asyncio
import logging
import re
import signal
import traceback
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import discord

from bot import health
from bot.access import AccessPolicy
from bot.app import open_core, settle_collector
from bot.chat import ChatService
from bot.client import ChatBot, build_bot, choose_intents
from bot.errors import StoreError
from bot.settings import Settings, SettingsError, load_settings, redact_url
from bot.storage import Store

if TYPE_CHECKING:
    from bot.storage.copy import CopyReport

log = logging.getLogger("bot")

# HTTP transport loggers print every request's full URL (credentials of OPENAI_BASE_URL included)
# at INFO and more at DEBUG: openai 3.x uses httpx2/httpcore2, older versions httpx/httpcore.
QUIET_LOGGERS = ("httpx2", "httpcore2", "httpx", "httpcore")


class RedactSecrets(logging.Filter):
    """Replace every secret string with `***` in a record's message, traceback and stack.

    A handler filter runs before the handler's formatter; the traceback is formatted here once,
    redacted, and kept as `exc_text` (with `exc_info` cleared so no formatter prints it again).
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        kept = sorted({s for s in secrets if s}, key=len, reverse=True)  # longest first
        self._pattern = re.compile("|".join(map(re.escape, kept))) if kept else None

    def redact(self, text: str) -> str:
        return self._pattern.sub("***", text) if self._pattern is not None else text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._pattern is None:
            return True
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def configure_logging(settings: Settings) -> RedactSecrets:
    """Root logging at LOG_LEVEL (discord.py's format), transports quieted, secrets redacted."""
    discord.utils.setup_logging(level=getattr(logging, settings.log_level), root=True)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    redactor = RedactSecrets(settings.secret_values())
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(redactor)
    return redactor


async def run(settings: Settings, *, sync_only: bool = False) -> None:
    async with open_core(settings) as core:
        store, service = core.store, core.service
        log.info(
            "Model server %s, default model %s",
            redact_url(settings.openai_base_url) or "OpenAI",
            settings.model,
        )
        token = settings.discord_token.get_secret_value()
        if sync_only:
            async with _bot(settings, service, store, sync_on_start=False) as bot:
                await bot.login(token)
                await bot.sync_commands(force_global=True)
            return
        shards = settings.process_shards
        _warn_if_shards_cannot_share(settings, shards)
        # Losing the shards' claim (the database connection that holds it) means another
        # process may start running them: stop, and let the supervisor start this one again.
        lost = asyncio.Event()
        async with store.claim_shards(shards if shards is not None else (0,), lost.set):
            intents = await choose_intents(settings.message_content, store)
            async with (
                _bot(settings, service, store, intents=intents, shards=shards) as bot,
                health.heartbeat(
                    settings.heartbeat_file,
                    bot.gateway_connected,
                    max_age=settings.heartbeat_max_age,
                ) as beats,
            ):
                bot.beat_on_connect(beats.beat)
                stopping = _stop_on_signals(bot, service, settings.shutdown_grace_seconds)
                watch = asyncio.create_task(_stop_when(lost, bot, service, settings))
                try:
                    await bot.start(token)
                finally:
                    watch.cancel()
                if stopping.done():
                    stopping.result()  # surface a failure of the shutdown itself
                if lost.is_set():
                    raise StoreError(
                        "lost the database connection that holds this process's shards; stopped"
                        " so that no shard runs twice (start it again to claim them anew)"
                    )
    log.info("Stopped; the database is closed")


def _bot(
    settings: Settings,
    service: ChatService,
    store: Store,
    *,
    intents: discord.Intents | None = None,
    shards: Sequence[int] | None = None,
    sync_on_start: bool = True,
) -> ChatBot:
    return build_bot(
        service=service,
        store=store,
        access=AccessPolicy.from_settings(settings, cooldowns=store),
        dev_guild_id=settings.dev_guild_id,
        intents=intents,
        sync_on_start=sync_on_start,
        export_cooldown=settings.export_cooldown_seconds,
        on_set_up=settle_collector,  # once the extensions and the tree are loaded
        shard_count=settings.shard_count if shards is not None else None,
        shard_ids=shards,
    )


def _warn_if_shards_cannot_share(settings: Settings, shards: Sequence[int] | None) -> None:
    if shards is None or settings.shard_count is None:
        return
    log.info("Running shard(s) %s of %d", _shard_list(shards), settings.shard_count)
    if settings.database_url is None and len(shards) < settings.shard_count:
        log.warning(
            "SHARD_IDS leaves shards to other processes, but they cannot share the SQLite file"
            " %s: several processes need DATABASE_URL (PostgreSQL)",
            settings.database_path,
        )


def _shard_list(shards: Sequence[int]) -> str:
    """`0-3, 8` for (0, 1, 2, 3, 8)."""
    runs: list[list[int]] = []
    for shard in sorted(shards):
        if runs and shard == runs[-1][-1] + 1:
            runs[-1].append(shard)
        else:
            runs.append([shard])
    return ", ".join(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]) for run in runs)


async def migrate_to(url: str, source: Path) -> CopyReport:
    """Copy the SQLite database at `source` into the (empty) PostgreSQL database at `url`."""
    from bot.storage.copy import copy_to_postgres  # needs the `postgres` extra

    return await copy_to_postgres(source, url)


def _print_copy_report(report: CopyReport, source: Path, url: str) -> None:
    print(f"Copied {source} to {redact_url(url)}:")
    width = max(map(len, report.counts), default=0)
    for table, count in report.counts.items():
        print(f"  {table:<{width}}  {count:>10,}")
    print(
        f"Verified: the row counts are equal, and {report.sample_size:,} sampled turns read back"
        " the same from both databases."
    )


async def _stop_when(
    lost: asyncio.Event, bot: ChatBot, service: ChatService, settings: Settings
) -> None:
    await lost.wait()
    log.critical("The shards' claim was lost: finishing answers in flight, then stopping")
    await service.shutdown(settings.shutdown_grace_seconds)
    await bot.close()


def _stop_on_signals(bot: ChatBot, service: ChatService, grace: float) -> asyncio.Future[None]:
    """On SIGTERM/SIGINT: take no new questions, let answers in flight finish, then close."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    tasks: set[asyncio.Task[None]] = set()

    async def shutdown(name: str) -> None:
        log.info("%s received: finishing answers in flight (up to %gs)", name, grace)
        try:
            await service.shutdown(grace)
            await bot.close()
        finally:
            if not done.done():
                done.set_result(None)

    def on_signal(number: signal.Signals) -> None:
        if tasks:
            return  # already stopping
        task = loop.create_task(shutdown(number.name))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, on_signal, number)
    return done


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Run the chatlab bot.")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser("run", help="run the bot (the default)")
    commands.add_parser("sync", help="push the slash commands to Discord globally, then exit")
    commands.add_parser(
        "health", help="exit 0 if the bot is connected to Discord (a fresh heartbeat), else 1"
    )
    copy = commands.add_parser(
        "migrate-to", help="copy the SQLite database into an empty PostgreSQL database"
    )
    copy.add_argument("url", help="postgresql://user:password@host:5432/chatlab")
    copy.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=None,
        help="the SQLite file (default: DATABASE_PATH)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "run"
    if command == "health":
        return health.main()
    overrides = {"database_url": args.url} if command == "migrate-to" else {}
    try:
        settings = load_settings(**overrides)  # the target URL: validated, its password redacted
    except SettingsError as exc:
        print(f"chatlab: {exc}", file=sys.stderr)
        return 2
    redactor = configure_logging(settings)

    def fail(line: str) -> int:
        print(f"chatlab: {redactor.redact(' '.join(line.split()))}", file=sys.stderr)
        return 1

    try:
        if command == "migrate-to":
            settle_collector()  # a long copy: collect as usual
            source = args.source or settings.database_path
            report = asyncio.run(migrate_to(args.url, source))
            _print_copy_report(report, source, args.url)
            return 0
        asyncio.run(run(settings, sync_only=command == "sync"))
    except StoreError as exc:  # ShardsInUse too: which shards, and what to change
        return fail(str(exc))
    except ModuleNotFoundError as exc:
        if exc.name != "asyncpg":
            raise
        return fail(
            "PostgreSQL needs the postgres extra: pip install 'chatlab[postgres]'"
            " (or leave DATABASE_URL unset to keep the SQLite file)."
        )
    except discord.LoginFailure:
        return fail("Discord rejected DISCORD_TOKEN; copy it again from the portal.")
    except discord.PrivilegedIntentsRequired:
        return fail(
            "Discord refused the Message Content intent: turn it on in the Developer Portal"
            " (your application → Bot → Privileged Gateway Intents → Message Content), or set"
            " MESSAGE_CONTENT=off to run without chat and thread channels."
        )
    except discord.HTTPException as exc:  # at start-up: the login or the command sync
        hint = ""
        if settings.dev_guild_id is not None and command == "run":
            hint = "; is DEV_GUILD_ID the id of a server the bot has joined?"
        return fail(f"Discord refused a start-up request ({exc}){hint}")
    except OSError as exc:  # includes aiohttp's connection errors
        return fail(f"cannot reach Discord ({exc}); check the network.")
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
