"""A `ReplySink` that keeps what a member would see, one string per message (no Discord)."""

from __future__ import annotations


class Screen:
    def __init__(self) -> None:
        self.messages: list[str] = []

    async def send(self, text: str) -> int:
        self.messages.append(text)
        return len(self.messages) - 1

    async def edit(self, handle: int, text: str) -> int:
        self.messages[handle] = text
        return handle
