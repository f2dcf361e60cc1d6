"""Behaviour tests: the real bot (real discord.py) against simcord's simulated Discord, with the
loopback model server and a real SQLite file — and the main flows (MAIN_FLOWS) once more on a
real PostgreSQL (tests/support/postgres.py), the same tests parametrised by engine. A test that
handles the SQLite file itself (it asks for `db_path`) runs on SQLite only."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import discord
import pytest
from simcord.builders import ChannelHandle

from bot.access import AccessPolicy
from bot.chat import ChatService
from bot.client import ChatBot
from bot.storage.postgres import PostgresStore
from bot.storage.sqlite import SQLiteStore
from tests.conftest import make_config
from tests.support.postgres import fresh_database

MAIN_FLOWS = frozenset(
    {
        "test_talking",
        "test_managing",
        "test_modes",
        "test_channel_settings",
        "test_attachments",
        "test_context_menu",
        "test_duplicates",
        "test_export",
        "test_speakers",
    }
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rpartition(".")[2]
    own_arguments = metafunc.function.__code__.co_varnames[: metafunc.function.__code__.co_argcount]
    if (
        module in MAIN_FLOWS
        and "engine" in metafunc.fixturenames
        and "db_path" not in own_arguments
    ):
        metafunc.parametrize("engine", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
async def store(engine: str, db_path: Any) -> Any:
    if engine == "sqlite":
        async with SQLiteStore.open(db_path) as opened:
            yield opened
        return
    async with fresh_database() as url, PostgresStore.open(url) as opened:
        yield opened


@pytest.fixture
def access() -> AccessPolicy:
    return AccessPolicy()


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {}


def build_bot(store: Any, chat_model: Any, access: AccessPolicy, **config: Any):
    service = ChatService(store, chat_model, make_config(**config))
    # A copy: a policy given to @parametrize is one object for every run of the test (both
    # engines), and the cooldowns and notices it keeps must not leak from one run to the next.
    return ChatBot(service=service, store=store, access=replace(access))


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
