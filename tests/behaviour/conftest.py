"""Behaviour tests: the real bot (real discord.py) against simcord's simulated Discord, with the
loopback model server and a real SQLite file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import discord
import pytest
from simcord.builders import ChannelHandle

from bot.access import AccessPolicy
from bot.chat import ChatService
from bot.client import ChatBot
from bot.storage.sqlite import SQLiteStore
from tests.conftest import make_config


@pytest.fixture
def access() -> AccessPolicy:
    return AccessPolicy()


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {}


def build_bot(store: SQLiteStore, chat_model: Any, access: AccessPolicy, **config: Any):
    service = ChatService(store, chat_model, make_config(**config))
    return ChatBot(service=service, store=store, access=access)


@pytest.fixture
def simcord_bot(store, chat_model, access, config_overrides) -> ChatBot:
    return build_bot(store, chat_model, access, **config_overrides)


@dataclass
class World:
    env: Any
    guild: Any
    channel: Any
    alice: Any
    bob: Any
    mod: Any
    mods: Any

    @property
    def bot_mention(self) -> str:
        return f"<@{self.env.bot.user.id}>"

    def thread(self, name: str = "thread", parent: Any = None) -> Any:
        parent = parent or self.channel
        created = self.env.backend.create_thread(parent.id, name, self.alice.id)
        return ChannelHandle(self.env, self.guild, created)

    def bot_messages(self, channel: Any = None) -> list[discord.Message]:
        channel = channel or self.channel
        return [m for m in channel.history() if m.author.id == self.env.bot.user.id]

    def requests_to(self, method: str, fragment: str) -> list[Any]:
        return [r for r in self.env.http_requests if r.method == method and fragment in r.path]


@pytest.fixture
def world(simcord_env) -> World:
    env = simcord_env
    guild = env.create_guild()
    channel = guild.create_text_channel("general")
    mods = guild.create_role("Mods", permissions=discord.Permissions(manage_messages=True))
    alice = guild.add_member(env.create_user("alice", global_name="Alice"))
    bob = guild.add_member(env.create_user("bob", global_name="Bob"))
    mod = guild.add_member(env.create_user("mod", global_name="Moderator"), roles=[mods])
    return World(env, guild, channel, alice, bob, mod, mods)


@pytest.fixture
def service_history(simcord_bot):
    async def history(channel_id: int, rounds: int = 10):
        return await simcord_bot.service.history(channel_id, rounds)

    return history
