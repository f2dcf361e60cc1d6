"""A question's place in its channel while its files download (cogs/chat.py `_Place`)."""

from __future__ import annotations

import asyncio

from cogs.chat import _Place


async def test_a_question_given_up_before_its_turn_does_not_let_the_next_overtake_the_first():
    arrivals: dict[int, _Place] = {}
    first, second, third = (_Place(arrivals, 1) for _ in range(3))
    order: list[str] = []

    async def take(name: str, place: _Place) -> None:
        await place.turn()
        order.append(name)
        place.release()

    later = asyncio.create_task(take("third", third))
    second.release()  # refused (a cooldown, a full queue) while the first still downloads
    await asyncio.sleep(0)
    assert order == []  # the first has not got its files yet
    await take("first", first)
    await later

    assert order == ["first", "third"]
    assert arrivals == {}  # nothing kept once every question has its files


async def test_a_cancelled_wait_for_its_turn_leaves_the_earlier_question_alone():
    arrivals: dict[int, _Place] = {}
    first, second = _Place(arrivals, 1), _Place(arrivals, 1)
    waiting = asyncio.create_task(second.turn())
    await asyncio.sleep(0)
    waiting.cancel()
    second.release()

    await first.turn()  # still its turn, not cancelled with the one after it
    first.release()
    assert arrivals == {}
