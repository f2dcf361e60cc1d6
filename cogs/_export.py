"""What the management commands show: a channel's prompt, history, usage, settings and export.

Pure formatting of what `ChatService` returns, in Discord Markdown, within Discord's limits;
and the export file, written page by page into a directory the caller owns, never larger than
the upload limit it is given (see `build_export`).
"""

from __future__ import annotations

import asyncio
import bisect
import time
import zipfile
from array import array
from collections.abc import AsyncIterable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bot.chat import StoredMessage
from bot.conversation import Message
from bot.messages import text


def export_header(channel_id: int, locale: str | None, note: str | None = None) -> str:
    """The top of an export file; a partial export says so right under the title."""
    header = text(locale, "export.title", channel=channel_id) + "\n\n"
    return f"{header}> {note}\n\n" if note else header


def export_lines(messages: Iterable[StoredMessage], locale: str | None) -> Iterator[str]:
    """Each message as a Markdown section: speaker (and their id), time, then the text."""
    someone, assistant = text(locale, "export.someone"), text(locale, "export.assistant")
    for stored in messages:
        message = stored.message
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(stored.created_at))
        speaker = (
            text(locale, "export.member", name=message.author_name or someone, id=message.author_id)
            if message.role == "user"
            else assistant
        )
        entry = text(locale, "export.entry", speaker=speaker, when=when)
        yield f"{entry}\n\n{message_body(message, locale)}\n\n"


def message_body(message: Message, locale: str | None) -> str:
    """What a member wrote, with the message they asked about quoted above it and the files
    and images that came with it listed by name below it (their contents are not repeated)."""
    body = message.text
    about = message.about
    if about is not None:
        quoted = "\n".join(f"> {line}" for line in about.text.splitlines() or [""])
        body = f"> **{about.author_name}**\n{quoted}\n\n{body}"
    listed = attachment_line(message, locale)
    return f"{body}\n\n{listed}" if listed else body


def attachment_line(message: Message, locale: str | None) -> str:
    """'📎 cat.png, notes.md' for a message with attachments, else ''."""
    if not message.attachments:
        return ""
    return text(locale, "attachment.attached", names=", ".join(a.name for a in message.attachments))


def export_markdown(
    channel_id: int, messages: Iterable[StoredMessage], locale: str | None = None
) -> str:
    """A (short) conversation as one Markdown document; /export writes it page by page."""
    return export_header(channel_id, locale) + "".join(export_lines(messages, locale))


# -- the export file ------------------------------------------------------------------------

MIB = 1024 * 1024
_CHUNK = MIB  # bytes read and deflated at a time
_ZIP_OVERHEAD = 512  # headers, data descriptor, central directory and end record, with room
_SAFETY = 0.95  # aim this far under the limit when guessing how much compresses to fit
_PROJECT_AFTER = 8 * MIB  # read this much before judging from the ratio so far


@dataclass(frozen=True, slots=True)
class ExportFile:
    """What /export sends: a file of the newest `rounds` of the conversation's `total_rounds`.

    `path` is None when there is nothing to send: the conversation is empty, or not even its
    newest round fits within `limit` bytes.
    """

    path: Path | None
    filename: str
    rounds: int
    total_rounds: int
    limit: int

    @property
    def whole(self) -> bool:
        return self.rounds == self.total_rounds

    @property
    def zipped(self) -> bool:
        return self.filename.endswith(".zip")


def upload_size(limit: int) -> str:
    """A byte count as Discord states upload limits: '10 MiB', '9.51 MiB', '48.8 KiB'."""
    value, unit = (limit / MIB, "MiB") if limit >= MIB else (limit / 1024, "KiB")
    return f"{value:,.2f}".rstrip("0").rstrip(".") + f" {unit}"


def partial_note(rounds: int, total_rounds: int, limit: int, locale: str | None) -> str:
    return text(
        locale, "export.partial_note", rounds=rounds, total=total_rounds, limit=upload_size(limit)
    )


def export_message(export: ExportFile, locale: str | None) -> str:
    """The sentence sent with the file: how many rounds it holds, and why not all if not."""
    limit = upload_size(export.limit)
    if not export.total_rounds:
        return text(locale, "export.nothing")
    if export.path is None:
        return text(locale, "export.none_fits", limit=limit)
    if not export.whole:
        return partial_note(export.rounds, export.total_rounds, export.limit, locale)
    if export.zipped:
        return text(locale, "export.whole_zipped", count=export.total_rounds, limit=limit)
    return text(locale, "export.whole", count=export.total_rounds)


async def build_export(
    pages: AsyncIterable[Sequence[StoredMessage]],
    channel_id: int,
    directory: Path,
    limit: int,
    locale: str | None = None,
) -> ExportFile:
    """Write the conversation (`pages`, oldest first) into `directory` as a file of at most
    `limit` bytes: the Markdown if it fits, else that zipped, else the newest rounds that fit,
    zipped, with a note at the top (see `ExportFile`).

    Memory stays flat: a page at a time is formatted and written, and the file is deflated a
    chunk at a time, both off the event loop. The caller owns `directory` and removes it.
    """
    name = f"chatlab-{channel_id}"
    markdown = directory / f"{name}.md"
    header = export_header(channel_id, locale).encode()
    starts = array("q")  # where each round (a question and its answer) starts in the file
    with open(markdown, "wb") as out:  # noqa: ASYNC230 (a new file; writes go to a thread)
        size = await asyncio.to_thread(out.write, header)
        async for page in pages:
            size = await asyncio.to_thread(_write_page, out, page, size, starts, locale)
    total = len(starts)
    if not total:
        return ExportFile(None, "", 0, 0, limit)
    if size <= limit:
        return ExportFile(markdown, markdown.name, total, total, limit)

    zipped = directory / f"{name}.zip"
    fits, read, written = await asyncio.to_thread(
        _deflate, markdown, zipped, markdown.name, start=0, prefix=b"", limit=limit
    )
    if fits:
        return ExportFile(zipped, zipped.name, total, total, limit)

    # The newest rounds that fit, zipped: guess how many from how well the text compressed so
    # far, and shrink the guess until the file fits.
    newest = directory / f"{name}-newest.zip"
    ratio = written / max(read, 1)
    rounds = total
    while True:
        note = partial_note(rounds, total, limit, locale)
        prefix = export_header(channel_id, locale, note).encode()
        raw_budget = (limit - _ZIP_OVERHEAD) * _SAFETY / ratio - len(prefix)
        first = bisect.bisect_left(starts, size - raw_budget)  # the oldest round kept
        rounds = min(total - first, rounds - 1)
        if rounds <= 0:
            return ExportFile(None, "", 0, total, limit)
        note = partial_note(rounds, total, limit, locale)
        prefix = export_header(channel_id, locale, note).encode()
        fits, read, written = await asyncio.to_thread(
            _deflate,
            markdown,
            newest,
            f"{name}-newest.md",
            start=starts[total - rounds],
            prefix=prefix,
            limit=limit,
        )
        if fits:
            return ExportFile(newest, newest.name, rounds, total, limit)
        ratio = max(ratio, written / max(read, 1)) * 1.1


def _write_page(
    out: BinaryIO,
    page: Sequence[StoredMessage],
    size: int,
    starts: array[int],
    locale: str | None,
) -> int:
    """Append a page to the Markdown file at byte `size`, noting where each round starts;
    returns the file's new size."""
    chunk = bytearray()
    for stored, block in zip(page, export_lines(page, locale), strict=True):
        if stored.message.role == "user":
            starts.append(size + len(chunk))
        chunk += block.encode()
    return size + out.write(chunk)


def _deflate(
    source: Path, target: Path, member: str, *, start: int, prefix: bytes, limit: int
) -> tuple[bool, int, int]:
    """Zip `prefix` and `source` from byte `start` on as `member` of a new zip `target`,
    giving up as soon as the zip outgrows `limit` bytes, or once enough is read to see that
    it would end far over it.

    Returns whether the whole zip fits, the bytes of `source` read and the zip's size.
    """
    info = zipfile.ZipInfo(member, date_time=time.localtime()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    remaining = source.stat().st_size - start
    large = remaining + len(prefix) >= zipfile.ZIP64_LIMIT
    read = 0
    with (
        open(target, "wb") as raw,
        zipfile.ZipFile(raw, "w") as archive,
        archive.open(info, "w", force_zip64=large) as entry,
        open(source, "rb") as markdown,
    ):
        entry.write(prefix)
        markdown.seek(start)
        while chunk := markdown.read(_CHUNK):
            entry.write(chunk)
            read += len(chunk)
            written = raw.tell()
            if written > limit - _ZIP_OVERHEAD or (
                read >= _PROJECT_AFTER and written / read * remaining > limit * 1.5
            ):
                return False, read, written
    size = target.stat().st_size
    return size <= limit, read, size
