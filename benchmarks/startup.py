"""A process getting ready to connect, for the RSS and start-up figures (benchmarks/floor.py).

    python -m benchmarks.startup bot     settings → open_core (store, client) → ChatBot, extensions
    python -m benchmarks.startup floor   discord.py and openai imported, a Bot and a client made

Prints `READY <RSS in MB> <heavy modules imported>` once ready (no Discord login), then exits.
The bot reads its settings from the environment (no .env file; HTTP_BACKEND as the benchmark
runs) and sends nothing anywhere.
"""

from __future__ import annotations

import asyncio
import gc
import sys

if __name__ == "__main__" and sys.argv[1:] == ["bot"]:
    gc.disable()  # as `python -m bot` does from its first line until set up (bot/__main__.py)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# Heavy optional imports that must wait until they are needed (not at start-up).
LAZY = ("PIL", "asyncpg", "tiktoken")


async def bot() -> None:
    """What `python -m bot` does before it logs in (bot/__main__.py's `run`)."""
    from bot.access import AccessPolicy
    from bot.app import open_core, settle_collector
    from bot.client import ChatBot
    from bot.settings import load_settings

    settings = load_settings(env_file=None)
    async with open_core(settings) as core:
        chat_bot = ChatBot(
            service=core.service,
            store=core.store,
            access=AccessPolicy.from_settings(settings, cooldowns=core.store),
            sync_on_start=False,
        )
        async with chat_bot:
            await chat_bot.setup_hook()  # what login() runs first: the extensions, the tree
            settle_collector()  # as `run` does at the end of setup_hook (ChatBot on_set_up)
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
