"""The store interface the service uses, whatever the engine (SQLite, PostgreSQL).

Every engine keeps these guarantees, and the contract tests (tests/contract/) hold each engine to
them:

- a turn (question, answer, the usage the API reported, the question's attachments) is written in
  one transaction: after a crash the store holds whole turns only;
- reading a channel's window reads only that channel's newest rows (an index on the channel and
  the row order), however long the channel's history or however many channels there are;
- every statement is parameterised; no value is ever formatted into SQL;
- errors are `bot.errors.StoreError`s (one line each, fit for an admin), never the driver's own;
- a credential in the database's address never appears in an error or a log line.

Each engine has its own ordered migrations, one file each in `sql/<engine>/NNNN_name.sql`
(`load_migrations`), and records its schema version in the database.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from importlib import resources
from typing import Protocol

from bot.conversation import Round
from bot.storage.records import (
    ChannelSettings,
    PromptChange,
    StoredMessage,
    TurnRecord,
    Usage,
)


def load_migrations(engine: str) -> tuple[str, ...]:
    """The engine's migration scripts, in order (file n takes the schema from n - 1 to n)."""
    folder = resources.files("bot.storage").joinpath("sql", engine)
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    for number, entry in enumerate(files, 1):
        if not entry.name.startswith(f"{number:04d}_"):
            raise RuntimeError(f"migration {entry.name} is out of sequence (expected {number:04d})")
    return tuple(entry.read_text(encoding="utf-8") for entry in files)


class Store(Protocol):
    """What chatlab keeps: conversations, channel settings, usage, and a few shared facts."""

    # -- conversation -----------------------------------------------------------------------

    async def history(self, channel_id: int, max_rounds: int) -> list[Round]:
        """The channel's newest `max_rounds` whole rounds, oldest first."""
        ...

    async def turn_context(
        self, channel_id: int, parent_id: int | None, max_rounds: int
    ) -> tuple[ChannelSettings, list[Round]]:
        """What a turn reads, in one trip: `channel_settings` and `history` together.

        The history's round count is the channel's "history_rounds" option (its own, else its
        parent's), else `max_rounds`: `history(channel_id, that)`.
        """
        ...

    async def add_turn(self, turn: TurnRecord) -> int:
        """Write a whole turn (and its attachments' bytes) in one transaction; the turn's id.

        The question's attachment records are stored with it; the bytes in `turn.blobs` are
        kept once per digest and linked to the question, as is every image attachment. An image
        whose bytes are neither in `turn.blobs` nor stored already fails the turn (StoreError,
        nothing written). A usage figure that is not a whole number from 0 to 2**63 - 1 is
        stored as unreported.
        """
        ...

    async def blobs(self, digests: Collection[str]) -> dict[str, bytes]:
        """The stored bytes of these attachments (by SHA-256 hex digest); absent ones left out."""
        ...

    async def reset(self, channel_id: int) -> int:
        """Forget the channel's messages and their attachments; how many rounds were forgotten.

        Usage figures stay (accounting), and so do the channel's settings and prompt. An
        attachment's bytes are deleted when no stored message refers to them any more.
        """
        ...

    async def forget_question(self, channel_id: int, message_id: int) -> bool:
        """Forget the turn asked by Discord message `message_id` (its question, answer and
        attachments); True if there was one. The turn's usage stays counted."""
        ...

    def export_pages(
        self, channel_id: int, *, page_size: int = 500, newest_first: bool = False
    ) -> AsyncGenerator[list[StoredMessage], None]:
        """Every stored message of the channel in keyset pages (one trip each), oldest first
        (or newest first). Attachments come as their records, without their bytes."""
        ...

    async def count_rounds(self, channel_id: int) -> int: ...

    async def usage(self, channel_id: int) -> Usage: ...

    # -- channel settings -------------------------------------------------------------------

    async def channel_settings(
        self, channel_id: int, parent_id: int | None = None
    ) -> ChannelSettings:
        """The channel's settings; a thread inherits each one from its parent until set."""
        ...

    async def set_system_prompt(
        self,
        channel_id: int,
        prompt: str | None,
        *,
        by_id: int | None,
        by_name: str | None,
        guild_id: int | None = None,
    ) -> None:
        """Set (or with None, clear) the channel's prompt, and record who changed it, when."""
        ...

    async def prompt_changes(self, channel_id: int, limit: int = 10) -> list[PromptChange]:
        """The channel's latest system-prompt changes, newest first."""
        ...

    async def set_channel_model(
        self, channel_id: int, model: str | None, *, guild_id: int | None = None
    ) -> None: ...

    async def set_channel_effort(
        self, channel_id: int, effort: str | None, *, guild_id: int | None = None
    ) -> None: ...

    async def set_channel_option(
        self, channel_id: int, name: str, value: str | None, *, guild_id: int | None = None
    ) -> None:
        """Set (or with None, unset, so it is inherited or the default again) one option.

        Like the setters above, a `guild_id` given (None in DMs, or not known) is kept with the
        channel's settings; one not given leaves the one kept as it was.
        """
        ...

    async def reset_channel_settings(self, channel_id: int) -> None:
        """Unset the channel's model, effort and every option (not its prompt, not history)."""
        ...

    async def channels_with_option(self, name: str, values: Collection[str]) -> list[int]:
        """The channels whose own `name` option is one of `values` (e.g. the chat channels)."""
        ...

    # -- small key/value facts (e.g. the command tree last synced) -------------------------

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...

    # -- several processes -------------------------------------------------------------------

    async def claim_question(self, question_id: int) -> bool:
        """Claim a question by its Discord message or interaction id: True the first time only.

        A duplicate delivery (a gateway replay, two processes during a rolling deploy) is then
        answered once. Claims are kept long enough to outlive any replay (a day at least).
        """
        ...

    async def take_cooldown(self, key: str, seconds: float) -> float:
        """Start `key`'s cooldown of `seconds` if none is running: 0.0. Otherwise the seconds
        left of the running one (and nothing changes). Shared by every process on one store."""
        ...

    def claim_shards(
        self, shard_ids: Sequence[int], on_lost: Callable[[], object] | None = None
    ) -> AbstractAsyncContextManager[None]:
        """Hold these shards for this process while the context is open.

        Raises `bot.errors.ShardsInUse` (naming the shards) if another process holds any of
        them, so that no two processes ever run one shard. Released when the context closes,
        or when the process dies. If the hold is lost while open (the database connection
        keeping it ended), `on_lost` is called: another process may take the shards now.
        """
        ...
