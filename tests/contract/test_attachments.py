"""Attachments: their records come back with every read, their bytes are kept once per digest and
deleted when no stored message refers to them any more."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace

import pytest

from bot.conversation import Attachment, Message
from bot.errors import StoreError
from bot.storage import TurnRecord

RED = b"\x89PNG\r\n\x1a\n" + b"red pixels " * 300
BLUE = b"\xff\xd8\xff" + bytes(range(256)) * 40  # every byte value, NUL included


def image(data: bytes, name: str = "cat.png", media_type: str = "image/png") -> Attachment:
    digest = hashlib.sha256(data).hexdigest()
    return Attachment(name, "image", media_type, len(data) + 17, digest, 255, 512, 384)


NOTES = Attachment(
    "notes – 笔记.md", "text", "text/markdown", 42, hashlib.sha256(b"# notes").hexdigest(), 0
)


def turn(
    channel: int, n: int, *images: bytes, message_id: int | None = None, text: bool = False
) -> TurnRecord:
    attachments = tuple(image(data) for data in images) + ((NOTES,) if text else ())
    return TurnRecord(
        channel_id=channel,
        model="gpt-4o",
        question=Message("user", f"question {n}", 7, 1, "ann", attachments=attachments),
        answer=Message("assistant", f"answer {n}", 3),
        prompt_tokens=10,
        completion_tokens=5,
        question_message_id=message_id if message_id is not None else 1000 + n,
        blobs={hashlib.sha256(data).hexdigest(): data for data in images},
    )


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_attachment_records_come_back_exactly_from_every_read(store):
    record = turn(1, 1, RED, BLUE, text=True)
    await store.add_turn(turn(1, 0))
    await store.add_turn(record)

    _, context = await store.turn_context(1, None, 5)
    history = await store.history(1, 5)
    (page,) = [page async for page in store.export_pages(1)]

    expected = (image(RED), image(BLUE), NOTES)
    for rounds in (context, history):
        assert [r.question.attachments for r in rounds] == [(), expected]
        assert rounds[1].question == record.question
        assert rounds[1].answer.attachments == ()
    assert [m.message.attachments for m in page] == [(), (), expected, ()]


async def test_an_images_bytes_are_given_back_by_digest(store):
    await store.add_turn(turn(1, 1, RED, BLUE))

    found = await store.blobs([digest(RED), digest(BLUE), digest(b"never stored")])

    assert found == {digest(RED): RED, digest(BLUE): BLUE}
    assert await store.blobs([]) == {}
    assert await store.blobs([digest(RED), digest(RED)]) == {digest(RED): RED}


async def test_an_image_sent_again_needs_no_bytes_once_stored(store):
    await store.add_turn(turn(1, 1, RED))
    again = replace(turn(1, 2, RED), blobs={})  # the caller knew the digest was stored

    await store.add_turn(again)

    _, history = await store.turn_context(1, None, 5)
    assert [r.question.attachments for r in history] == [(image(RED),), (image(RED),)]
    assert await store.blobs([digest(RED)]) == {digest(RED): RED}


async def test_an_image_whose_bytes_are_nowhere_fails_the_turn_and_stores_nothing(store):
    await store.add_turn(turn(1, 1))
    missing = replace(turn(1, 2, RED, BLUE), blobs={digest(RED): RED})  # BLUE's bytes lost

    with pytest.raises(StoreError):
        await store.add_turn(missing)

    assert [r.question.content for r in await store.history(1, 5)] == ["question 1"]
    assert await store.blobs([digest(RED), digest(BLUE)]) == {}
    assert (await store.usage(1)).answers == 1
    await store.add_turn(turn(1, 3, RED))  # and the next turn is written
    assert await store.blobs([digest(RED)]) == {digest(RED): RED}


async def test_reset_deletes_the_images_no_other_message_refers_to(store):
    await store.add_turn(turn(1, 1, RED, BLUE))
    await store.add_turn(turn(2, 2, RED))  # the same image in another channel

    assert await store.reset(1) == 1

    assert await store.blobs([digest(RED), digest(BLUE)]) == {digest(RED): RED}
    _, history = await store.turn_context(2, None, 5)
    assert history[0].question.attachments == (image(RED),)

    assert await store.reset(2) == 1

    assert await store.blobs([digest(RED), digest(BLUE)]) == {}


async def test_forgetting_a_question_deletes_its_images_unless_another_turn_has_them(store):
    await store.add_turn(turn(1, 1, RED, message_id=501))
    await store.add_turn(turn(1, 2, RED, BLUE, message_id=502))

    assert await store.forget_question(1, 502)

    assert await store.blobs([digest(RED), digest(BLUE)]) == {digest(RED): RED}
    assert await store.forget_question(1, 501)
    assert await store.blobs([digest(RED)]) == {}
    assert await store.history(1, 5) == []


async def test_attachments_and_their_bytes_survive_a_restart(open_store):
    async with open_store() as store:
        await store.add_turn(turn(1, 1, BLUE, text=True))

    async with open_store() as reopened:
        history = await reopened.history(1, 5)
        found = await reopened.blobs([digest(BLUE)])

    assert history[0].question.attachments == (image(BLUE), NOTES)
    assert found == {digest(BLUE): BLUE}


async def test_an_image_shared_by_channels_reset_at_the_same_moment_is_deleted(store):
    # Two resets at once, each in a channel holding the same image: each statement may still see
    # the other's link, and keep the bytes; once both are done nothing refers to them, and a
    # forgotten image must not stay stored.
    for n in range(10):
        first, second = 10 * n + 1, 10 * n + 2
        await store.add_turn(turn(first, 1, RED, message_id=100 * n + 1))
        await store.add_turn(turn(second, 2, RED, message_id=100 * n + 2))

        await asyncio.gather(store.reset(first), store.reset(second))

        assert await store.blobs([image(RED).sha256]) == {}, f"kept after round {n}"
