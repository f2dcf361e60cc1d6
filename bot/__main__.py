"""The composition root: settings → logging → resources → bot → start.

python -m bot          run the bot (the Procfile's worker)
python -m bot sync     push the slash commands to Discord globally, then exit

Start-up fails with one line on stderr (`chatlab: ...`), never a traceback. No secret of the
settings reaches a log line: the transport loggers that print whole URLs are kept at WARNING, and
every root handler carries `RedactSecrets`, which replaces each of `Settings.secret_values()` with
`***` in the message and in the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys
import traceback
from collections.abc import Iterable

import discord

from bot.access import AccessPolicy
from bot.chat import ChatConfig, ChatService
from bot.client import ChatBot
from bot.errors import StoreError
from bot.llm import OpenAIChatModel, open_client
from bot.settings import Settings, SettingsError, load_settings, redact_url
from bot.storage import open_store

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
    async with (
        open_store(settings.database_url, settings.database_path) as store,
        open_client(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url,
            max_retries=settings.max_retries,
            timeout=settings.request_timeout,
            http_backend=settings.http_backend,
        ) as client,
    ):
        log.info(
            "Model server %s, default model %s",
            redact_url(settings.openai_base_url) or "OpenAI",
            settings.model,
        )
        service = ChatService(
            store,
            OpenAIChatModel(
                client,
                answer_deadline=settings.answer_deadline,
                families=dict(settings.model_families),
            ),
            ChatConfig.from_settings(settings),
        )
        bot = ChatBot(
            service=service,
            store=store,
            access=AccessPolicy.from_settings(settings, cooldowns=store),
            dev_guild_id=settings.dev_guild_id,
            sync_on_start=not sync_only,
            export_cooldown=settings.export_cooldown_seconds,
        )
        async with bot:
            token = settings.discord_token.get_secret_value()
            if sync_only:
                await bot.login(token)
                await bot.sync_commands(force_global=True)
                return
            stopping = _stop_on_signals(bot, service, settings.shutdown_grace_seconds)
            await bot.start(token)
            if stopping.done():
                stopping.result()  # surface a failure of the shutdown itself
    log.info("Stopped; the database is closed")


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Run the chatlab bot.")
    parser.add_argument("command", nargs="?", choices=["run", "sync"], default="run")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"chatlab: {exc}", file=sys.stderr)
        return 2
    redactor = configure_logging(settings)

    def fail(line: str) -> int:
        print(f"chatlab: {redactor.redact(' '.join(line.split()))}", file=sys.stderr)
        return 1

    try:
        asyncio.run(run(settings, sync_only=args.command == "sync"))
    except StoreError as exc:
        return fail(str(exc))
    except discord.LoginFailure:
        return fail("Discord rejected DISCORD_TOKEN; copy it again from the portal.")
    except discord.PrivilegedIntentsRequired:
        return fail("an intent the bot asked for is not enabled in the portal.")
    except discord.HTTPException as exc:  # at start-up: the login or the command sync
        hint = ""
        if settings.dev_guild_id is not None and args.command == "run":
            hint = "; is DEV_GUILD_ID the id of a server the bot has joined?"
        return fail(f"Discord refused a start-up request ({exc}){hint}")
    except OSError as exc:  # includes aiohttp's connection errors
        return fail(f"cannot reach Discord ({exc}); check the network.")
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
