"""What the management commands show: a channel's prompt, history, usage, settings and export.

Pure formatting of what `ChatService` returns, in Discord Markdown, within Discord's limits.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bot.chat import ChannelPrompt, ChatConfig
from bot.conversation import Round
from bot.store import PromptChange, StoredMessage, Usage
from bot.text import DISCORD_LIMIT, one_line, quote

SOURCES = {
    "channel": "set in this channel",
    "parent": "inherited from the parent channel",
    "default": "the bot's default",
}


def prompt_summary(prompt: ChannelPrompt, changes: Sequence[PromptChange]) -> str:
    """The prompt in force, where it comes from, and who changed it when (newest first)."""
    lines = [f"**System prompt** ({SOURCES[prompt.source]}):", quote(prompt.text, 1000), ""]
    lines.append("**Changes:**")
    for change in changes:
        what = f"set to “{one_line(change.prompt, 60)}”" if change.prompt else "cleared"
        lines.append(f"- <t:{int(change.set_at)}:R> {change.set_by_name} {what}")
    if not changes:
        lines.append("- none in this channel")
    return "\n".join(lines)[:DISCORD_LIMIT]


def history_summary(rounds: Sequence[Round]) -> str:
    """Recent rounds, oldest first, each shortened; the oldest are left out to fit one message."""
    if not rounds:
        return "No conversation yet."
    blocks = [
        f"**{one_line(r.question.author_name or 'someone', 32)}:** "
        f"{one_line(r.question.content, 300)}\n**→** {one_line(r.answer.content, 400)}"
        for r in rounds
    ]
    while len("\n\n".join(blocks)) > DISCORD_LIMIT and len(blocks) > 1:
        blocks.pop(0)
    return "\n\n".join(blocks)[:DISCORD_LIMIT]


def usage_summary(usage: Usage) -> str:
    text = (
        f"This channel: {usage.answers} answers, {usage.prompt_tokens:,} prompt + "
        f"{usage.completion_tokens:,} completion = **{usage.total_tokens:,} tokens**."
    )
    if usage.unreported:
        text += f" ({usage.unreported} answers came from a server that reports no usage.)"
    return text


def settings_summary(model: str, prompt: ChannelPrompt, config: ChatConfig) -> str:
    return "\n".join(
        [
            f"**Model:** `{model}` (context {config.context_window:,} tokens, "
            f"replies up to {config.max_tokens:,})",
            f"**History sent with a question:** up to {config.max_rounds} rounds that fit",
            f"**System prompt** ({SOURCES[prompt.source]}):",
            quote(prompt.text, 800),
        ]
    )


def export_markdown(channel_id: int, messages: Sequence[StoredMessage]) -> str:
    """The whole conversation as a Markdown document."""
    lines = [f"# chatlab conversation in channel {channel_id}", ""]
    for stored in messages:
        message = stored.message
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(stored.created_at))
        speaker = (
            f"{message.author_name or 'someone'} ({message.author_id})"
            if message.role == "user"
            else "assistant"
        )
        lines += [f"## {speaker} — {when}", "", message.content, ""]
    return "\n".join(lines)
