"""What several processes share through the store: claimed questions, cooldowns, shards.

On SQLite one process owns the database (its lock), so these hold within the process; on
PostgreSQL they hold across every process on the database: the tests that open the database
twice (two processes) run on PostgreSQL only.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.conversation import Message
from bot.errors import ShardsInUse
from bot.storage import TurnRecord

several_processes = pytest.mark.parametrize("engine", ["postgres"], indirect=True)


async def test_a_question_is_claimed_once(store):
    first = await store.claim_question(1_100_000_000_000_000_001)
    again = await store.claim_question(1_100_000_000_000_000_001)
    other = await store.claim_question(1_100_000_000_000_000_002)

    assert (first, again, other) == (True, False, True)


async def test_questions_claimed_at_once_are_claimed_once_each(store):
    claims = await asyncio.gather(*(store.claim_question(n % 3) for n in range(30)))

    assert sorted(claims).count(True) == 3


@several_processes
async def test_a_question_claimed_by_one_process_is_not_claimed_by_another(open_store):
    async with open_store() as one, open_store() as two:
        results = await asyncio.gather(
            *(store.claim_question(42) for store in (one, two) for _ in range(5))
        )
        later = await two.claim_question(42)

    assert results.count(True) == 1
    assert later is False


async def test_a_question_claimed_by_a_process_that_stopped_before_answering_is_claimed_again(
    open_store,
):
    # A crash between the claim and the stored turn: the gateway's re-delivery after the restart
    # must be answered, not refused as a duplicate (nothing would ever answer it).
    async with open_store() as crashed:
        assert await crashed.claim_question(77)
    async with open_store() as restarted:
        assert await restarted.claim_question(77) is True
        assert await restarted.claim_question(77) is False


@several_processes
async def test_a_question_whose_turn_was_stored_is_never_claimed_again(open_store):
    async with open_store() as first:
        assert await first.claim_question(88)
        await first.add_turn(
            TurnRecord(
                channel_id=5,
                model="m",
                question=Message("user", "q", 1, author_id=1, author_name="a"),
                answer=Message("assistant", "a", 1),
                prompt_tokens=1,
                completion_tokens=1,
                question_message_id=88,
            )
        )
    async with open_store() as second:
        assert await second.claim_question(88) is False


@several_processes
async def test_a_live_process_keeps_its_claim_while_a_dead_ones_is_taken_over(open_store):
    async with open_store() as survivor, open_store() as newcomer:
        async with open_store() as dying:
            assert await dying.claim_question(99)
            assert await survivor.claim_question(98)
            assert await newcomer.claim_question(99) is False  # its owner is alive
        assert await newcomer.claim_question(99) is True  # its owner is gone
        assert await newcomer.claim_question(98) is False


async def test_a_cooldown_runs_once_and_says_how_long_is_left(store):
    started = await store.take_cooldown("member:1", 60)
    running = await store.take_cooldown("member:1", 60)
    other = await store.take_cooldown("member:2", 60)

    assert started == 0.0
    assert 55 < running <= 60
    assert other == 0.0


async def test_a_finished_cooldown_can_be_taken_again(store):
    await store.take_cooldown("member:1", 0.02)
    await asyncio.sleep(0.05)

    assert await store.take_cooldown("member:1", 60) == 0.0
    assert await store.take_cooldown("member:1", 60) > 0


async def test_a_cooldown_of_nothing_starts_nothing(store):
    assert await store.take_cooldown("member:1", 0) == 0.0
    assert await store.take_cooldown("member:1", 60) == 0.0


@several_processes
async def test_a_cooldown_holds_across_processes(open_store):
    async with open_store() as one, open_store() as two:
        taken = await one.take_cooldown("member:7", 30)
        elsewhere = await two.take_cooldown("member:7", 30)

    assert taken == 0.0
    assert 25 < elsewhere <= 30


async def test_shards_can_be_claimed_and_released(store, caplog):
    async with store.claim_shards([0, 1, 2]):
        pass
    async with store.claim_shards([0, 1, 2]):
        pass
    async with store.claim_shards([]):
        pass
    await asyncio.sleep(0)

    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@several_processes
async def test_a_shard_held_by_another_process_is_refused_naming_it(open_store):
    async with open_store() as one, open_store() as two, one.claim_shards([0, 1, 2, 3]):
        with pytest.raises(ShardsInUse, match=r"shards 2, 3\b") as refused:
            async with two.claim_shards([2, 3, 4, 5]):
                pytest.fail("two processes ran shards 2 and 3")
        async with two.claim_shards([4, 5]):  # what the refused claim took is released
            pass

    assert "SHARD_IDS" in str(refused.value)


@several_processes
async def test_released_shards_can_be_claimed_by_another_process(open_store):
    async with open_store() as one, open_store() as two:
        async with one.claim_shards([7]):
            with pytest.raises(ShardsInUse, match=r"shard 7\b"):
                async with two.claim_shards([7]):
                    pass
        async with two.claim_shards([7]):
            pass
