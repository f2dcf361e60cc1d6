"""An in-process `ChatModel` for the few edge tests the loopback server cannot drive.

simcord runs the bot's timers on a virtual clock but must wait in real time for a socket, so a
timer that guards a socket (a deadline over a stalled stream) cannot fire under it: the real
path is proven in tests/test_llm.py. This model paces its deltas with `asyncio.sleep`, which
simcord makes virtual, so streaming cadence can be tested deterministically; or it raises.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

from bot.errors import LLMError
from bot.llm import Finished, StreamEvent


class ScriptedModel:
    def __init__(
        self,
        deltas: Sequence[str] = ("Hello",),
        *,
        pace: float = 0.0,
        first_delay: float = 0.0,
        error: LLMError | None = None,
    ) -> None:
        self.deltas = list(deltas)
        self.pace = pace
        self.first_delay = first_delay
        self.error = error
        self.calls: list[list[dict[str, str]]] = []

    async def stream(
        self,
        messages: Sequence[dict[str, str]],
        *,
        model: str,
        max_tokens: int,
        temperature: float,
        top_p: float,
        reasoning_effort: str | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        self.calls.append(list(messages))
        if self.first_delay:
            await asyncio.sleep(self.first_delay)
        if self.error is not None:
            raise self.error
        for index, delta in enumerate(self.deltas):
            if index and self.pace:
                await asyncio.sleep(self.pace)
            yield delta
        yield Finished("stop", 10, len(self.deltas))
