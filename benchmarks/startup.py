"""A process getting ready to connect, for the RSS and start-up figures (benchmarks/floor.py).

    python -m benchmarks.startup bot     settings → store → client → ChatBot with its extensions
    python -m benchmarks.startup floor   discord.py and openai imported, a Bot and a client made

Prints `READY <RSS in MB> <heavy modules imported>` once ready (no Discord login), then exits.
The bot reads its settings from the environment (no .env file; HTTP_BACKEND as the benchmark
runs) and sends nothing anywhere.
"""

from __future__ import annotations

import asyncio
import sys


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# Heavy optional imports that must wait until they are needed (not at start-up).
LAZY = ("PIL", "asyncpg")


async def bot() -> None:
    """What `python -m bot` does before it logs in (bot/__main__.py's `run`)."""
    from bot.access import AccessPolicy
    from bot.chat import ChatConfig, ChatService
    from bot.client import ChatBot
    from bot.llm import OpenAIChatModel, open_client
    from bot.settings import load_settings
    from bot.storage import open_store

    settings = load_settings(env_file=None)
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
        service = ChatService(
            store,
            OpenAIChatModel(
                client,
                answer_deadline=settings.answer_deadline,
                families=dict(settings.model_families),
            ),
            ChatConfig.from_settings(settings),
        )
        chat_bot = ChatBot(
            service=service,
            store=store,
            access=AccessPolicy.from_settings(settings, cooldowns=store),
            sync_on_start=False,
        )
        async with chat_bot:
            await chat_bot.setup_hook()  # what login() runs first: the extensions, the tree
            ready()


def ready() -> None:
    """Print `READY <RSS in MB> <the LAZY modules already imported, or ->`."""
    imported = ",".join(name for name in LAZY if name in sys.modules) or "-"
    print(f"READY {rss_mb():.1f} {imported}", flush=True)


async def floor() -> None:
    import discord
    import openai
    from discord.ext import commands

    async with (
        openai.AsyncOpenAI(api_key="sk-bench"),
        commands.Bot(command_prefix=commands.when_mentioned, intents=discord.Intents.default()),
    ):
        ready()


if __name__ == "__main__":
    asyncio.run({"bot": bot, "floor": floor}[sys.argv[1]]())
