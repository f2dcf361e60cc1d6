"""The storage contract: every test here runs against every engine (bot/storage/base.py).

`open_store()` opens the test's own database (the same one each time it is called, so a test can
close and reopen it to prove persistence, or open it twice to act as two processes where the
engine allows it); `store` is one already open. `engine` is the engine's name; a test that only
one engine can run is parametrised with `pytest.mark.parametrize("engine", [...], indirect=True)`.

PostgreSQL is a real server (tests/support/postgres.py): one per test session, a database per
test.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from bot.storage import Store
from bot.storage.sqlite import SQLiteStore
from tests.support import postgres

Opener = Callable[[], AbstractAsyncContextManager[Store]]

ENGINES = ["sqlite", "postgres"]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def open_store(engine: str, tmp_path: Path) -> AsyncIterator[Opener]:
    if engine == "sqlite":
        path = tmp_path / "contract.db"

        @contextlib.asynccontextmanager
        async def opened_sqlite() -> AsyncIterator[Store]:
            async with SQLiteStore.open(path) as store:
                yield store

        yield opened_sqlite
        return
    if engine == "postgres":
        from bot.storage.postgres import PostgresStore

        async with postgres.fresh_database() as url:

            @contextlib.asynccontextmanager
            async def opened_postgres() -> AsyncIterator[Store]:
                async with PostgresStore.open(url) as store:
                    yield store

            yield opened_postgres
        return
    raise NotImplementedError(engine)


@pytest.fixture
async def store(open_store: Opener) -> AsyncIterator[Store]:
    async with open_store() as opened:
        yield opened
