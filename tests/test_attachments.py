"""Files that come with a question: recognised by content, normalised, capped — pure."""

from __future__ import annotations

import hashlib
import io

import openai
import pytest
from PIL import Image as PIL

from bot.attachments import (
    CUT_MARKER,
    MAX_PIXELS,
    Files,
    Problem,
    Upload,
    VisionPolicy,
    decode_text,
    image_type,
    plan_downloads,
    read_uploads,
    refuses_images,
)
from tests.fake_openai import FakeOpenAI, Reply


def picture(fmt: str, size: tuple[int, int] = (64, 32), mode: str = "RGB", **save) -> bytes:
    out = io.BytesIO()
    PIL.new(mode, size, "red").save(out, fmt, **save)
    return out.getvalue()


def read(*uploads: Upload, cap: int = 1000) -> Files:
    return read_uploads(uploads, text_max_chars=cap)


@pytest.mark.parametrize(
    ("fmt", "media_type", "stored"),
    [
        ("PNG", "image/png", "image/png"),
        ("JPEG", "image/jpeg", "image/jpeg"),
        ("WEBP", "image/webp", "image/jpeg"),
        ("GIF", "image/gif", "image/png"),
    ],
)
def test_images_are_recognised_by_their_bytes_not_their_name(fmt, media_type, stored):
    data = picture(fmt)
    assert image_type(data) == media_type
    files = read(Upload("notes.txt", data, "text/plain"))  # a misleading name and type
    (image,) = files.images
    assert (image.media_type, image.width, image.height) == (stored, 64, 32)
    assert image.sha256 == hashlib.sha256(image.data).hexdigest()
    assert image.uploaded_size == len(data)
    assert not files.texts and not files.problems


def test_a_gif_sends_its_first_frame_as_png():
    out = io.BytesIO()
    frames = [PIL.new("P", (20, 10), color) for color in (1, 2, 3)]
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    (image,) = read(Upload("a.gif", out.getvalue())).images
    assert image.media_type == "image/png"
    with PIL.open(io.BytesIO(image.data)) as stored:
        assert getattr(stored, "n_frames", 1) == 1


def test_a_large_image_is_scaled_to_what_the_model_sees():
    (image,) = read(Upload("wide.png", picture("PNG", (4096, 2048)))).images
    # 4096x2048 fits 2048x1024, then the shortest side 768: 1536x768 (OpenAI's high detail)
    assert (image.width, image.height) == (1536, 768)


def test_exif_orientation_is_applied_and_metadata_dropped():
    exif = PIL.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    exif[0x010F] = "PhoneMaker"
    data = picture("JPEG", (60, 20), exif=exif.tobytes())
    (image,) = read(Upload("photo.jpg", data)).images
    assert (image.width, image.height) == (20, 60)
    with PIL.open(io.BytesIO(image.data)) as stored:
        assert not stored.getexif()


def test_a_decompression_bomb_is_refused_before_decoding():
    side = int(MAX_PIXELS**0.5) + 100
    bomb = picture("PNG", (side, side), mode="1")  # tiny file, huge declared size
    assert len(bomb) < 200_000
    files = read(Upload("bomb.png", bomb))
    assert files.problems == (Problem("bomb.png", "image_too_large", MAX_PIXELS),)
    assert not files


def test_a_corrupt_image_is_unreadable_not_a_crash():
    broken = picture("PNG")[:40]
    files = read(Upload("broken.png", broken))
    assert files.problems == (Problem("broken.png", "unreadable"),)


@pytest.mark.parametrize(
    "data",
    [
        b"def f():\n    return 1\n",
        '{"k": "värde"}'.encode(),
        "\ufeffa,b\r\n1,2\r\n".encode(),
        "日志 INFO started\n".encode("utf-16"),
        b"\x1b[32mgreen log\x1b[0m\n",
    ],
)
def test_text_files_are_recognised_by_content(data):
    files = read(Upload("no-extension", data, "application/octet-stream"))
    (text,) = files.texts
    assert text.name == "no-extension" and text.size == len(data)
    assert "\r" not in text.text and "\ufeff" not in text.text


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.7\n\x00\x01binary", b"PK\x03\x04\x00\x00", bytes(range(256)), b"\xc3\x28 latin"],
)
def test_binary_files_are_unsupported_whatever_their_name(data):
    files = read(Upload("readme.txt", data, "text/plain"))
    assert files.problems == (Problem("readme.txt", "unsupported"),)
    assert decode_text(data) is None


def test_a_long_text_file_is_cut_with_a_marker():
    files = read(Upload("big.log", b"x" * 250), cap=100)
    (text,) = files.texts
    assert text.text == "x" * 100 + CUT_MARKER.format(total=250, shown=100)
    assert files.cut == ("big.log",)


def test_downloads_stay_within_the_file_and_turn_caps():
    sizes = [("a.png", 50), ("huge.mov", 500), ("b.txt", 40), ("c.png", 30), ("d.txt", 10)]
    taken, problems = plan_downloads(sizes, file_cap=100, turn_cap=100)
    assert taken == [0, 2, 4]
    assert problems == [
        Problem("huge.mov", "too_large", 100),
        Problem("c.png", "turn_too_large", 100),
    ]


def test_files_give_their_records_and_blobs():
    files = read(Upload("a.png", picture("PNG")), Upload("b.md", b"# hi"))
    image, text = files.attachments("gpt-4o")
    assert (image.kind, image.tokens, image.width) == ("image", 85 + 170, 64)
    assert (text.kind, text.name, text.tokens) == ("text", "b.md", 0)
    assert files.blobs == {image.sha256: files.images[0].data}


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ("Invalid content type. image_url is only supported by certain models.", None),
        ("Invalid content type.", "messages.[1].content.[1].type"),
        ("llama3 is not a multimodal model", None),
        ("Model does not support images. Please use a model that does.", None),
        ("image input is not supported by this server", None),
    ],
)
def test_servers_refusing_images_are_recognised(message, param):
    assert refuses_images(message, param)


@pytest.mark.parametrize(
    "message",
    ["Unsupported parameter: 'max_tokens'", "This model's maximum context length is 4096"],
)
def test_other_refusals_are_not_taken_for_image_refusals(message):
    assert not refuses_images(message, "max_tokens")


def test_vision_policy_by_glob_and_by_learning():
    policy = VisionPolicy(text_only=("gpt-3.5*", "llama3:*"))
    assert not policy.sees_images("gpt-3.5-turbo") and not policy.sees_images("llama3:8b")
    assert policy.sees_images("gpt-4o")
    policy.learn("gpt-4o")
    assert not policy.sees_images("gpt-4o")


async def test_the_stand_in_refuses_images_for_text_only_models_as_openai_does():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}}
    asked = [{"role": "user", "content": [{"type": "text", "text": "what is it?"}, image]}]
    async with (
        FakeOpenAI(Reply(echo=True), text_only_models=r"gpt-3\.5") as server,
        openai.AsyncOpenAI(api_key="sk-test", base_url=server.base_url, max_retries=0) as client,
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(model="gpt-3.5-turbo", messages=asked, stream=True)
        error = refused.value.body
        assert isinstance(error, dict) and refuses_images(error["message"], error["param"])
        stream = await client.chat.completions.create(model="gpt-4o", messages=asked, stream=True)
        answer = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert answer == "echo: what is it?"
        assert server.images == [[image], [image]]
