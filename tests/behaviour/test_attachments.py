"""Images and files with a question: through Discord (simcord) to the model and the store."""

from __future__ import annotations

import base64
import io
import json
import sqlite3
from contextlib import closing

import pytest
from PIL import Image as PIL

from bot.access import AccessPolicy
from bot.attachments import Limits
from bot.storage.sqlite import SQLiteStore
from tests.behaviour.conftest import build_bot

VISION = {"model": "gpt-4o", "models": ("gpt-4o", "gpt-4o-mini")}


@pytest.fixture
def config_overrides():
    return VISION


def png(size: tuple[int, int] = (40, 20), color: str = "red") -> bytes:
    out = io.BytesIO()
    PIL.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def framed(request: dict, index: int = -1) -> dict:
    content = request["messages"][index]["content"]
    text = content if isinstance(content, str) else content[0]["text"]
    return json.loads(text)


def sent_image(part: dict) -> PIL.Image:
    url = part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    return PIL.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


async def test_a_mention_with_only_an_image_is_a_question_and_the_image_reaches_the_model(
    world, llm_server, service_history
):
    await world.alice.send(world.channel, world.bot_mention, attachments=[("cat.png", png())])

    (part,) = llm_server.images[-1]
    assert sent_image(part).size == (40, 20)
    assert framed(llm_server.requests[-1])["images"] == ["cat.png"]
    assert world.channel.last_message.content == "Hello from the stand-in."
    (stored,) = await service_history(world.channel.id)
    (image,) = stored.question.attachments
    assert (image.name, image.kind, image.tokens) == ("cat.png", "image", 85 + 170)


async def test_a_text_file_is_read_with_its_name_in_a_field_only_the_bot_sets(world, llm_server):
    code = b'print("hi")\n'
    await world.alice.send(
        world.channel, f"{world.bot_mention} review this", attachments=[("a.py", code)]
    )

    asked = framed(llm_server.requests[-1])
    assert asked["files"] == [{"name": "a.py", "text": 'print("hi")\n'}]
    assert asked["message"] == "review this"
    assert not llm_server.images[-1]  # text only: no parts


SMALL_CAPS = {**VISION, "attachments": Limits(file_bytes=2048, turn_bytes=4096, text_chars=100)}


@pytest.mark.parametrize("config_overrides", [SMALL_CAPS])
async def test_too_large_and_unsupported_files_get_one_sentence_each_and_the_rest_is_answered(
    world, llm_server
):
    files = [
        ("big.log", b"x" * 3000),
        ("song.mp3", b"ID3\x04\x00\x00binary"),
        ("notes.md", b"# notes\n"),
    ]
    await world.alice.send(world.channel, f"{world.bot_mention} summarise", attachments=files)

    (reply,) = world.bot_messages()  # the sentences in small print above the answer
    assert reply.content.splitlines() == [
        "-# `big.log` was left out: a file can be at most 2 KiB.",
        "-# `song.mp3` was left out: I can read images (PNG, JPEG, WebP, GIF) and text files only.",
        "Hello from the stand-in.",
    ]
    assert [f["name"] for f in framed(llm_server.requests[-1])["files"]] == ["notes.md"]


@pytest.mark.parametrize("config_overrides", [SMALL_CAPS])
async def test_a_question_of_files_all_left_out_gets_their_sentences_and_asks_nothing(
    world, llm_server, service_history
):
    await world.alice.send(
        world.channel, world.bot_mention, attachments=[("song.mp3", b"ID3\x04\x00\x00binary")]
    )

    (reply,) = world.bot_messages()
    assert reply.content == (
        "`song.mp3` was left out: I can read images (PNG, JPEG, WebP, GIF) and text files only."
    )
    assert not llm_server.requests
    assert await service_history(world.channel.id) == []


@pytest.mark.parametrize("config_overrides", [SMALL_CAPS])
async def test_a_file_past_the_per_question_cap_is_never_downloaded(world, llm_server):
    files = [("a.txt", b"a" * 2000), ("b.txt", b"b" * 2000), ("c.txt", b"c" * 2000)]
    await world.alice.send(world.channel, f"{world.bot_mention} read", attachments=files)

    assert [f["name"] for f in framed(llm_server.requests[-1])["files"]] == ["a.txt", "b.txt"]
    assert "`c.txt` was left out" in world.bot_messages()[0].content
    downloads = [r for r in world.env.http_requests if "c.txt" in r.path]
    assert not downloads


async def test_ask_takes_a_file(world, llm_server, service_history):
    result = await world.alice.slash(
        world.channel, "ask", question="what colour?", file=("dot.png", png(color="blue"))
    )

    (part,) = llm_server.images[-1]
    assert sent_image(part).getpixel((0, 0)) == (0, 0, 255)
    assert result.response.content.endswith("Hello from the stand-in.")
    (stored,) = await service_history(world.channel.id)
    assert stored.question.text == "what colour?"


async def test_a_reply_to_a_message_with_an_image_includes_it(world, llm_server):
    # Without the Message Content intent Discord shows the bot a message's attachments only if
    # it mentions the bot (or in chat channels, where the intent is on).
    shared = await world.bob.send(
        world.channel, f"{world.bot_mention} look", attachments=[("chart.png", png())]
    )
    await world.alice.send(world.channel, f"{world.bot_mention} explain this", reply_to=shared)

    question = llm_server.requests[-1]["messages"][-1]
    assert [p["type"] for p in question["content"]] == ["text", "image_url"]
    assert framed(llm_server.requests[-1])["images"] == ["chart.png"]


async def test_an_image_is_sent_again_from_the_store_after_a_restart(
    world, llm_server, db_path, chat_model
):
    await world.alice.send(world.channel, world.bot_mention, attachments=[("cat.png", png())])
    restarted = db_path.with_name("restarted.db")
    with closing(sqlite3.connect(db_path)) as live, closing(sqlite3.connect(restarted)) as copy:
        live.backup(copy)
    async with SQLiteStore.open(restarted) as fresh_store:
        await world.env.restart_bot(build_bot(fresh_store, chat_model, AccessPolicy(), **VISION))
        await world.alice.send(world.channel, f"{world.bot_mention} and its colour?")

    history_image, *rest = llm_server.images[-1]
    assert not rest
    assert sent_image(history_image).getpixel((0, 0)) == (255, 0, 0)
    assert llm_server.requests[-1]["messages"][1]["content"][1] == history_image


async def test_a_model_that_refuses_images_answers_from_the_text_and_is_remembered(
    world, llm_server
):
    llm_server.text_only_models = r"gpt-4o"
    await world.alice.send(
        world.channel, f"{world.bot_mention} what is it?", attachments=[("cat.png", png())]
    )
    await world.alice.send(world.channel, f"{world.bot_mention} and now?")

    _, retried, later = llm_server.requests
    assert llm_server.images == [[llm_server.images[0][0]], [], []]
    assert framed(retried)["images"] == ["cat.png"]  # the model still reads the name
    answers = [m.content for m in world.bot_messages()]
    assert answers[0].endswith(
        "-# The model `gpt-4o` can't see images, so it answered from the text alone."
    )
    assert answers[1].endswith(
        "-# The model `gpt-4o` can't see images, so it answered from the text alone."
    )
    assert isinstance(later["messages"][1]["content"], str)  # remembered: no second refusal


@pytest.mark.parametrize("config_overrides", [{**VISION, "text_only_models": ("gpt-4o",)}])
async def test_a_configured_text_only_model_is_never_sent_images(world, llm_server):
    await world.alice.send(
        world.channel, f"{world.bot_mention} what is it?", attachments=[("cat.png", png())]
    )

    assert llm_server.images == [[]]
    assert "can't see images" in world.bot_messages()[0].content


async def test_history_shows_the_members_words_and_the_files_by_name(world, llm_server):
    await world.alice.send(
        world.channel,
        f"{world.bot_mention} what is in these?",
        attachments=[("cat.png", png()), ("notes.md", b"# a secret plan\n")],
    )

    result = await world.alice.slash(world.channel, "history")

    content = result.response.content
    assert "**Alice:** what is in these? 📎 cat.png, notes.md\n" in content
    assert "secret plan" not in content and '"files"' not in content


@pytest.mark.parametrize("config_overrides", [SMALL_CAPS])
async def test_ask_names_a_file_left_out_under_the_question_and_still_answers(world, llm_server):
    result = await world.alice.slash(
        world.channel, "ask", question="what is in it?", file=("big.log", b"x" * 3000)
    )

    assert result.response.content.splitlines()[-3:] == [
        "-# `big.log` was left out: a file can be at most 2 KiB.",
        "",
        "Hello from the stand-in.",
    ]
    assert "files" not in framed(llm_server.requests[-1])
