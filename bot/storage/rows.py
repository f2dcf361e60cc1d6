"""Rows to records and back, the same for every engine (no SQL, no driver).

Each engine reads its own rows; what a row means — a message's attachment records as JSON, the
images whose bytes a question keeps, a usage figure a broken server reported, a window's rows
paired into rounds — is decided once, here, so the engines cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence

from bot.conversation import Attachment, Message, Round

MAX_FIGURE = 2**63 - 1  # the largest figure either engine stores in a BIGINT / INTEGER
ATTACHMENT_FIELDS = frozenset(field.name for field in dataclasses.fields(Attachment))


def encode_attachments(attachments: Sequence[Attachment]) -> str | None:
    """A message's attachment records as stored (a JSON array; NULL when there are none)."""
    if not attachments:
        return None
    return json.dumps(
        [dataclasses.asdict(attachment) for attachment in attachments],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def decode_attachments(stored: str | None) -> tuple[Attachment, ...]:
    """A message's attachment records back from their JSON (fields unknown here are skipped)."""
    if not stored:
        return ()
    return tuple(
        Attachment(**{name: value for name, value in record.items() if name in ATTACHMENT_FIELDS})
        for record in json.loads(stored)
    )


def linked_blobs(attachments: Sequence[Attachment], blobs: Mapping[str, bytes]) -> list[Attachment]:
    """The attachments whose bytes are stored with the question, one per digest: every image,
    and any other whose bytes came with the turn."""
    linked: dict[str, Attachment] = {}
    for attachment in attachments:
        if attachment.kind == "image" or attachment.sha256 in blobs:
            linked.setdefault(attachment.sha256, attachment)
    return list(linked.values())


def usage_figure(value: object) -> int | None:
    """A usage figure as reported if it is a whole number from 0 to 2**63 - 1, else None
    (unreported): what a broken server sends must not fail the turn."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_FIGURE:
        return value
    return None


def pair_rounds(messages_oldest_first: Iterable[tuple[int, Message]]) -> list[Round]:
    """Pair each turn's question with its answer (by turn id); a turn cut by the LIMIT is left
    out."""
    rounds: list[Round] = []
    pending: tuple[int, Message] | None = None
    for turn_id, message in messages_oldest_first:
        if message.role == "user":
            pending = (turn_id, message)
        elif pending is not None and pending[0] == turn_id:
            rounds.append(Round(pending[1], message))
            pending = None
    return rounds
