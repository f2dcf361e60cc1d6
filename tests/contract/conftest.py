"""The storage contract: every test here runs against every engine (bot/storage/base.py).

`open_store()` opens the test's own database (the same one each time it is called, so a test can
close and reopen it to prove persistence); `store` is one already open.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from bot.storage import Store
from bot.storage.sqlite import SQLiteStore

Opener = Callable[[], AbstractAsyncContextManager[Store]]

ENGINES = ["sqlite"]  # "postgres" joins when its engine lands


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_store(engine: str, tmp_path: Path) -> Opener:
    if engine == "sqlite":
        path = tmp_path / "contract.db"

        @contextlib.asynccontextmanager
        async def opened() -> AsyncIterator[Store]:
            async with SQLiteStore.open(path) as store:
                yield store

        return opened
    raise NotImplementedError(engine)


@pytest.fixture
async def store(open_store: Opener) -> AsyncIterator[Store]:
    async with open_store() as opened:
        yield opened
