"""Text for Discord: fence-aware splitting, stripping mentions, quoting — pure.

Discord caps a message at 2,000 characters. `split_message` cuts at a paragraph, else a line,
else a word boundary, and never leaves a code block cut: a chunk that ends inside a fence closes
it, and the next chunk reopens it with the same language tag. Lengths are measured in UTF-16 code
units (what Discord's limit counts), so emoji-heavy text stays within the limit too.
"""

from __future__ import annotations

import re

DISCORD_LIMIT = 2000
_FENCE = re.compile(r"^ {0,3}(`{3,})([^`]*)$")
_FENCE_RUN = re.compile(r"`{3,}")
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ANY_MENTION = re.compile(r"<(@[!&]?|#)(\d+)>")
_NEWLINES = re.compile(r"\n*")


def utf16_len(text: str) -> int:
    # surrogatepass: a lone surrogate (valid in a Python str, e.g. from JSON) counts as one unit
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _fit(text: str, room: int) -> int:
    """The longest prefix of `text` (in code points) that is at most `room` UTF-16 units.

    Looks at no more than `room` code points: a code point is one or two units.
    """
    head = text[:room]
    if head.isascii() or utf16_len(head) <= room:
        return len(head)
    # Some code points take two units: search for the cut (a prefix of room // 2 always fits).
    low, high = room // 2, len(head)
    while low < high:
        middle = (low + high + 1) // 2
        if utf16_len(head[:middle]) <= room:
            low = middle
        else:
            high = middle - 1
    return low


def _fence_after(text: str, fence: str | None) -> str | None:
    """The fence still open at the end of `text`, given the one open at its start."""
    if "```" not in text:  # no fence line can change anything
        return fence
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if not match:
            continue
        ticks, info = match.groups()
        if fence is None:
            fence = ticks + info.strip().split(" ")[0] if info.strip() else ticks
        elif not info.strip() and len(ticks) >= len(_ticks(fence)):
            fence = None
    return fence


def _ticks(fence: str) -> str:
    return fence[: len(fence) - len(fence.lstrip("`"))]


def _cut(text: str, room: int) -> int:
    """Where to cut `text` so the first part is at most `room` units: the best boundary.

    Reads at most `room + 1` code points of `text`, so the caller may pass a window.
    """
    hard = _fit(text, room)
    if hard >= len(text):
        return len(text)
    window = text[:hard]
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator)
        if at > room // 4:  # a boundary, unless it would leave a tiny chunk
            return at + len(separator)
    if hard > 0 and "\udc00" <= text[hard] <= "\udfff":  # never split a surrogate pair
        hard -= 1
    return max(hard, 1)


def split_message(
    text: str, limit: int = DISCORD_LIMIT, *, max_chunks: int | None = None
) -> list[str]:
    """Split `text` into chunks of at most `limit` UTF-16 units, fences closed and reopened.

    With `max_chunks`, stop once that many chunks are made (the rest of `text` is not read).
    Linear in the length of what is read: the text is walked by index, never re-sliced whole.
    """
    if limit < 64:
        raise ValueError("limit too small to hold a fence and some text")
    chunks: list[str] = []
    fence: str | None = None
    start, end = 0, len(text)
    while start < end and (max_chunks is None or len(chunks) < max_chunks):
        opening = f"{fence}\n" if fence else ""
        # Room for the text, keeping space to close a fence that may be open at the cut
        # (with as many backticks as it was opened with).
        runs = [len(run) for run in _FENCE_RUN.findall(text, start, start + limit + 1)]
        if fence:
            runs.append(len(_ticks(fence)))
        room = limit - utf16_len(opening) - (1 + max(runs) if runs else 0)
        cut = _cut(text[start : start + room + 1], room)
        body = text[start : start + cut]
        start += cut
        fence_at_end = _fence_after(body, fence)
        chunk = (opening + body).rstrip()  # Discord trims message edges anyway
        if fence_at_end is not None:
            chunk += "\n" + _ticks(fence_at_end)
        if chunk.strip():
            chunks.append(chunk)
        fence = fence_at_end
        if fence is None:
            start = _NEWLINES.match(text, start).end()  # type: ignore[union-attr]
    if chunks or not text:
        return chunks
    return [text[: _fit(text, limit)]]  # only whitespace: one chunk, as Discord would trim it


def closing_fence(text: str) -> str:
    """What closes a code block left open at the end of `text` (a newline and its backticks).

    Empty when no block is open. For a note under an answer that was cut inside a block.
    """
    fence = _fence_after(text, None)
    return "" if fence is None else "\n" + _ticks(fence)


def strip_mentions(content: str, user_id: int) -> str:
    """The message without mentions of `user_id` (the bot), trimmed."""
    return _USER_MENTION.sub(
        lambda m: "" if int(m.group(1)) == user_id else m.group(0), content
    ).strip()


def readable_mentions(text: str, names: dict[str, str]) -> str:
    """Mentions as names: `names` maps "@id", "@&id" (roles) and "#id" (channels) to text."""

    def name(match: re.Match[str]) -> str:
        kind, number = match.groups()
        return names.get(kind.replace("!", "") + number, match.group(0))

    return _ANY_MENTION.sub(name, text)


def quote(text: str, limit: int = 300) -> str:
    """`text` as a Markdown block quote, shortened to about `limit` characters."""
    short = text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
    return "\n".join(f"> {line}" for line in short.split("\n"))


def one_line(text: str, limit: int = 80) -> str:
    """`text` on one line, shortened to `limit` characters (for lists)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
