"""Claims and cooldowns kept in this process: right for an engine that one process owns.

The SQLite engine holds its file's lock for the process's life (no other process can use the
database), so what `Store.claim_question` and `Store.take_cooldown` promise across processes
holds with in-memory state, at no cost per turn. A new process starts a new gateway session,
which replays nothing, so forgetting claims at exit loses nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence

CLAIM_SECONDS = 86_400.0  # a gateway replay never reaches further back than this


class LocalClaims:
    """Question ids claimed in the last `keep` seconds (the oldest forgotten first)."""

    def __init__(self, keep: float = CLAIM_SECONDS, clock: Callable[[], float] = time.monotonic):
        self._keep = keep
        self._clock = clock
        self._claimed: OrderedDict[int, float] = OrderedDict()

    def claim(self, question_id: int) -> bool:
        now = self._clock()
        while self._claimed:
            oldest, at = next(iter(self._claimed.items()))
            if now - at < self._keep:
                break
            del self._claimed[oldest]
        if question_id in self._claimed:
            return False
        self._claimed[question_id] = now
        return True


class LocalCooldowns:
    """Running cooldowns by key; a finished one is forgotten when the next is taken."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[str, float] = {}

    def take(self, key: str, seconds: float) -> float:
        now = self._clock()
        until = self._until.get(key)
        if until is not None and until > now:
            return until - now
        if len(self._until) > 1024:
            self._until = {k: u for k, u in self._until.items() if u > now}
        if seconds > 0:
            self._until[key] = now + seconds
        return 0.0


@contextlib.asynccontextmanager
async def process_shards(shard_ids: Sequence[int]) -> AsyncIterator[None]:
    """Nothing to claim: the process already owns the whole store."""
    yield
