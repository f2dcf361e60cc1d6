"""Shared fixtures: a loopback model server, a real openai client, a real SQLite store."""

from __future__ import annotations

import gc
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from pathlib import Path

import openai
import pytest

from bot.chat import ChatConfig, ChatService, Question
from bot.llm import OpenAIChatModel
from bot.storage.sqlite import SQLiteStore
from tests.fake_openai import FakeOpenAI

_real_connect = socket.socket.connect


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may talk to loopback only."""

    def connect(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in (
            "127.0.0.1",
            "::1",
            "localhost",
        ):
            raise OSError(f"tests may not reach {host!r}")
        return _real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(autouse=True)
def _collector_as_found() -> Iterator[None]:
    """A test that runs `main()` settles the collector (bot/app.py): put it back as it was, so
    no later test runs with objects frozen out of the collector's sight (their unclosed
    resources' warnings would never come) or with a rarer young collection."""
    enabled, threshold = gc.isenabled(), gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    if enabled:
        gc.enable()
    else:
        gc.disable()


async def ask_events(service: ChatService, question: Question) -> list[object]:
    """Everything `ChatService.ask` yields for one question, the stream properly closed."""
    async with aclosing(service.ask(question)) as events:
        return [event async for event in events]


def make_config(**overrides: object) -> ChatConfig:
    values: dict[str, object] = {
        "model": "gpt-4o-mini",
        "models": ("gpt-4o-mini", "gpt-4.1"),
        "max_tokens": 256,
        "context_window": 8192,
        "max_rounds": 5,
        "temperature": 0.0,
        "top_p": 1.0,
        "system_prompt": "You are a test assistant.",
    }
    values.update(overrides)
    return ChatConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
async def llm_server() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def openai_client(llm_server: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        api_key="sk-test-not-a-real-key", base_url=llm_server.base_url, max_retries=0, timeout=5
    ) as client:
        yield client


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "chatlab.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore.open(db_path) as opened:
        yield opened


@pytest.fixture
def chat_model(openai_client: openai.AsyncOpenAI) -> OpenAIChatModel:
    return OpenAIChatModel(openai_client, answer_deadline=5)


@pytest.fixture
def service(store: SQLiteStore, chat_model: OpenAIChatModel) -> ChatService:
    return ChatService(store, chat_model, make_config())
