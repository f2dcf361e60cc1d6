"""The composition root: settings → logging → resources → bot → start.

python -m bot          run the bot (the Procfile's worker)
python -m bot sync     push the slash commands to Discord globally, then exit
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

import discord
import openai

from bot.access import AccessPolicy
from bot.chat import ChatConfig, ChatService
from bot.client import ChatBot
from bot.llm import OpenAIChatModel
from bot.settings import Settings, SettingsError, load_settings
from bot.store import ConversationStore, StoreError

log = logging.getLogger("bot")


async def run(settings: Settings, *, sync_only: bool = False) -> None:
    async with (
        ConversationStore.open(settings.database_path) as store,
        openai.AsyncOpenAI(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url,
            max_retries=settings.max_retries,
            timeout=settings.request_timeout,
        ) as client,
    ):
        service = ChatService(
            store,
            OpenAIChatModel(client, answer_deadline=settings.answer_deadline),
            ChatConfig.from_settings(settings),
        )
        bot = ChatBot(
            service=service,
            store=store,
            access=AccessPolicy.from_settings(settings),
            dev_guild_id=settings.dev_guild_id,
            sync_on_start=not sync_only,
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
    discord.utils.setup_logging(level=getattr(logging, settings.log_level), root=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # request lines at INFO, every turn
    try:
        asyncio.run(run(settings, sync_only=args.command == "sync"))
    except StoreError as exc:
        print(f"chatlab: {exc}", file=sys.stderr)
        return 1
    except discord.LoginFailure:
        print(
            "chatlab: Discord rejected DISCORD_TOKEN; copy it again from the portal.",
            file=sys.stderr,
        )
        return 1
    except discord.PrivilegedIntentsRequired:
        print("chatlab: an intent the bot asked for is not enabled in the portal.", file=sys.stderr)
        return 1
    except OSError as exc:  # includes aiohttp's connection errors
        print(f"chatlab: cannot reach Discord ({exc}); check the network.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
