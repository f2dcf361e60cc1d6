"""The core a chatlab process runs on, opened in one place: `python -m bot` and the benchmarks.

    async with open_core(settings) as core:   # core.store, core.service (over the model client)
        ...                                   # then Discord (bot/__main__.py), or a benchmark

`open_core` opens the store (running its migrations) and the model client, and closes both in
the reverse order, whatever happens in between. It imports nothing of Discord.

`settle_collector()` is called once the process is set up (logged in, extensions loaded), before
it connects. Start-up leaves well over 100,000 objects (the modules of discord.py, openai,
pydantic) that live as long as the process; CPython's cyclic collector walks every one of them on
each full collection (~55 ms on the development machine), and with its default young threshold
(700 new containers) a burst of answers, whose requests and streams are alive for a second each,
sets off collection after collection. `gc.freeze()` moves what start-up made out of the
collector's sight, and a young threshold of `YOUNG_THRESHOLD` collects a tenth as often.
`python -m bot` keeps the collector off from its first line until then (bot/__main__.py), as the
`gc` documentation suggests before a freeze: the few thousand cyclic objects start-up leaves
(~0.1 MB) are frozen with the rest rather than found by a ~0.1 s collection. Cycles made
afterwards are collected as ever; reference counting frees everything else at once. Measured in
benchmarks/README.md ("The collector").
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.chat import ChatConfig, ChatService
from bot.llm import OpenAIChatModel, open_client
from bot.settings import Settings
from bot.storage import Store, open_store

# New containers between two young collections (CPython's default is 700).
YOUNG_THRESHOLD = 7000


@dataclass(frozen=True, slots=True)
class Core:
    store: Store
    service: ChatService


@asynccontextmanager
async def open_core(settings: Settings) -> AsyncIterator[Core]:
    """The store, the model client and the service over both, as `settings` describe them."""
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
        model = OpenAIChatModel(
            client,
            answer_deadline=settings.answer_deadline,
            families=dict(settings.model_families),
        )
        yield Core(store, ChatService(store, model, ChatConfig.from_settings(settings)))


def settle_collector() -> None:
    """Hide what start-up made from the cyclic collector, collect the young less often, and turn
    the collector on if start-up had it off.

    Idempotent; the older generations' thresholds are left as they are.
    """
    gc.freeze()
    young, *older = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_THRESHOLD), *older)
    gc.enable()
