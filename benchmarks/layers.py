"""Trips up and down the layers: calls that cross between the Discord edge (cogs.*) and the core
(bot.*) while the real bot answers one mention with a 20-piece answer.

    python -m benchmarks.layers

The real bot runs against simcord's simulated Discord, the stand-in model server and a real
SQLite file; a profiler counts every call whose caller and callee sit in different layers.
Prints the counts; asserts nothing.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from types import FrameType

import openai
import simcord

from bot.access import AccessPolicy
from bot.chat import ChatService
from bot.client import ChatBot
from bot.llm import OpenAIChatModel
from bot.storage.sqlite import SQLiteStore
from tests.conftest import make_config
from tests.fake_openai import FakeOpenAI, Reply


def _layer(module: str) -> str | None:
    if module.startswith("cogs"):
        return "edge"
    if module.startswith("bot"):
        return "core"
    return None


async def count_crossings() -> dict[str, int]:
    counts = {"edge->core": 0, "core->edge": 0}

    def profile(frame: FrameType, event: str, _arg: object) -> None:
        if event != "call" or frame.f_back is None:
            return
        caller = _layer(frame.f_back.f_globals.get("__name__", ""))
        callee = _layer(frame.f_globals.get("__name__", ""))
        if caller and callee and caller != callee:
            counts[f"{caller}->{callee}"] += 1

    with tempfile.TemporaryDirectory() as tmp:
        async with (
            FakeOpenAI(Reply(text="word " * 40, chunk_size=10)) as server,
            openai.AsyncOpenAI(
                api_key="sk-bench", base_url=server.base_url, max_retries=0
            ) as client,
            SQLiteStore.open(Path(tmp) / "layers.db") as store,
        ):
            service = ChatService(store, OpenAIChatModel(client, answer_deadline=30), make_config())
            bot = ChatBot(service=service, store=store, access=AccessPolicy(), sync_on_start=False)
            async with simcord.run(bot) as env:
                guild = env.create_guild()
                channel = guild.create_text_channel("general")
                alice = guild.add_member(env.create_user("alice", global_name="Alice"))
                mention = f"<@{env.bot.user.id}>"
                await alice.send(channel, f"{mention} warm up")
                sys.setprofile(profile)
                try:
                    await alice.send(channel, f"{mention} a question")
                finally:
                    sys.setprofile(None)
    return counts


def main() -> None:
    counts = asyncio.run(count_crossings())
    total = sum(counts.values())
    print(f"one mention, 20-piece answer: {total} crossings ({counts})")


if __name__ == "__main__":
    main()
