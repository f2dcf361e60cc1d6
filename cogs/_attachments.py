"""Discord attachments turned into what the core takes (`bot.attachments.Files`).

Discord states each attachment's size before it is downloaded: a file over the per-file cap, or
past the per-question cap, is never downloaded. The rest are downloaded (Discord's CDN links
expire, so the core stores what it keeps) and recognised by content in a worker thread (decoding
an image is CPU work the event loop must not wait on). What was left out, and why, comes back as
`Problem`s, told to the member in one sentence each (`problem_lines`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aiohttp
import discord

from bot.attachments import Files, Limits, Problem, Upload, plan_downloads, read_uploads
from bot.messages import text
from cogs._export import upload_size

log = logging.getLogger(__name__)

# How long one file's download may take. Discord's CDN serves a file within the caps in seconds;
# one that hangs must not hold the channel's queue for the HTTP session's 5 minutes.
DOWNLOAD_SECONDS = 30.0


async def gather(attachments: Sequence[discord.Attachment], limits: Limits) -> Files:
    """Download (within the caps) and read a message's or a command's attachments."""
    if not attachments:
        return Files()
    sizes = [(a.filename, a.size) for a in attachments]
    taken, problems = plan_downloads(sizes, file_cap=limits.file_bytes, turn_cap=limits.turn_bytes)
    uploads: list[Upload] = []
    for index in taken:
        attachment = attachments[index]
        try:
            async with asyncio.timeout(DOWNLOAD_SECONDS):
                data = await attachment.read()
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            # Gone, the CDN failed, the connection to it failed, or it hung.
            log.info("Could not download attachment %s: %r", attachment.id, exc)
            problems.append(Problem(attachment.filename, "download_failed"))
            continue
        if len(data) > limits.file_bytes:  # larger than Discord said
            problems.append(Problem(attachment.filename, "too_large", limits.file_bytes))
            continue
        uploads.append(Upload(attachment.filename, data, attachment.content_type))
    read = await asyncio.to_thread(read_uploads, uploads, text_max_chars=limits.text_chars)
    return Files(read.images, read.texts, (*problems, *read.problems), read.cut, read.text_cap)


def problem_lines(files: Files, locale: str | None) -> list[str]:
    """One sentence per file left out, and one for the text files that were cut."""
    lines = [
        text(
            locale,
            f"attachment.{problem.kind}",
            name=_name(problem.name),
            limit=upload_size(problem.limit),
            megapixels=problem.limit // 1_000_000,
        )
        for problem in files.problems
    ]
    if files.cut:
        names = ", ".join(_name(name) for name in files.cut)
        lines.append(text(locale, "attachment.cut", names=names, chars=files.text_cap))
    return lines


def _name(filename: str) -> str:
    """A file's name as a member reads it in a sentence: short, in code style, inert."""
    shown = filename if len(filename) <= 80 else filename[:77] + "…"
    return "`" + shown.replace("`", "'") + "`"
