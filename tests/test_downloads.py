"""Downloading attachments: a CDN that fails, refuses the connection or hangs costs one sentence."""

from __future__ import annotations

import asyncio
import io

import aiohttp
import pytest
from PIL import Image

from bot.attachments import Limits
from cogs import _attachments


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(out, "PNG")
    return out.getvalue()


class FakeAttachment:
    def __init__(
        self, filename: str, data: bytes | None = None, error: BaseException | None = None
    ):
        self.id = hash(filename) & 0xFFFF
        self.filename = filename
        self.content_type = None
        self._data = data
        self._error = error
        self.size = len(data) if data is not None else 100

    async def read(self) -> bytes:
        if self._error is not None:
            raise self._error
        if self._data is None:
            await asyncio.Event().wait()  # a CDN that never answers
        assert self._data is not None
        return self._data


LIMITS = Limits(file_bytes=2**20, turn_bytes=2**22, text_chars=1000)


@pytest.mark.parametrize(
    "error",
    [
        aiohttp.ClientConnectionError("connection refused"),
        aiohttp.ServerDisconnectedError(),
        ConnectionResetError("reset"),
        None,  # hangs: the download's own timeout ends it
    ],
    ids=["refused", "disconnected", "reset", "hangs"],
)
async def test_a_file_that_cannot_be_downloaded_is_named_and_the_rest_kept(monkeypatch, error):
    monkeypatch.setattr(_attachments, "DOWNLOAD_SECONDS", 0.05)
    broken = FakeAttachment("broken.png", error=error)
    good = FakeAttachment("good.png", png())

    files = await _attachments.gather([broken, good], LIMITS)  # type: ignore[list-item]

    assert [(p.name, p.kind) for p in files.problems] == [("broken.png", "download_failed")]
    assert [a.name for a in files.attachments("gpt-4o")] == ["good.png"]
