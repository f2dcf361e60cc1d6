"""The store unreachable for a moment (PostgreSQL restarting, a network blip): what still works.

A question must never fall silent because a shared fact could not be read: the cooldown is then
kept in this process until the store answers again.
"""

from __future__ import annotations

import logging

import pytest

from bot.access import AccessPolicy, Asker
from bot.errors import StoreError

ALICE = Asker(user_id=1, role_ids=(), channel_id=10, parent_id=None, in_dm=False)


class Unreachable:
    def __init__(self) -> None:
        self.calls = 0

    async def take_cooldown(self, key: str, seconds: float) -> float:
        self.calls += 1
        raise StoreError("lost the connection to PostgreSQL at db:5432/chatlab: timed out")


async def test_a_cooldown_the_store_cannot_take_is_kept_in_this_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    book = Unreachable()
    now = [1000.0]
    policy = AccessPolicy(cooldown=30.0, cooldowns=book, clock=lambda: now[0])

    with caplog.at_level(logging.WARNING, logger="bot.access"):
        first = await policy.admit(ALICE)  # raised StoreError: the mention went unanswered
        second = await policy.admit(ALICE)

    assert first is None
    assert second is not None and second.key == "access.cooldown"
    assert second.params == {"seconds": 30}
    assert book.calls == 2  # the store is asked again each time (it may be back)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per outage, not per question
    assert "cooldown" in warnings[0].getMessage().lower()


async def test_the_store_back_takes_the_cooldowns_again() -> None:
    book = Unreachable()
    policy = AccessPolicy(cooldown=30.0, cooldowns=book)
    assert await policy.admit(ALICE) is None

    class Back:
        async def take_cooldown(self, key: str, seconds: float) -> float:
            return 12.0

    policy.cooldowns = Back()
    refusal = await policy.admit(ALICE)
    assert refusal is not None and refusal.params == {"seconds": 12}
