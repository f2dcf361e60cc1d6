"""A process getting ready to connect, for the RSS and start-up figures (benchmarks/floor.py).

    python -m benchmarks.startup bot     settings → store → client → ChatBot with its extensions
    python -m benchmarks.startup floor   discord.py and openai imported, a Bot and a client made

Prints `READY <RSS in MB>` once ready (no Discord login), then exits. The bot reads its
settings from the environment (no .env file) and sends nothing anywhere.
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


async def bot() -> None:
    import openai

    from bot.access import AccessPolicy
    from bot.chat import ChatConfig, ChatService
    from bot.client import ChatBot
    from bot.llm import OpenAIChatModel
    from bot.settings import load_settings
    from bot.storage.sqlite import SQLiteStore

    settings = load_settings(env_file=None)
    async with (
        SQLiteStore.open(settings.database_path) as store,
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
        chat_bot = ChatBot(
            service=service,
            store=store,
            access=AccessPolicy.from_settings(settings),
            sync_on_start=False,
        )
        async with chat_bot:
            await chat_bot.setup_hook()  # what login() runs first: the extensions, the tree
            print(f"READY {rss_mb():.1f}", flush=True)


async def floor() -> None:
    import discord
    import openai
    from discord.ext import commands

    async with (
        openai.AsyncOpenAI(api_key="sk-bench"),
        commands.Bot(command_prefix=commands.when_mentioned, intents=discord.Intents.default()),
    ):
        print(f"READY {rss_mb():.1f}", flush=True)


if __name__ == "__main__":
    asyncio.run({"bot": bot, "floor": floor}[sys.argv[1]]())
