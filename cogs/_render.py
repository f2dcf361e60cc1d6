"""What a member reads besides the answer itself: errors as one sentence, and the summaries of
/system show, /history, /usage, /info and /reset — in Discord Markdown, within Discord's limits."""

from __future__ import annotations

from collections.abc import Sequence

from bot.chat import ChannelPrompt, ChatConfig, PromptChange, ResetOutcome, Usage
from bot.conversation import Round
from bot.errors import (
    AuthenticationFailed,
    ChatError,
    ContextTooLong,
    DatabaseMissing,
    EmptyAnswer,
    EmptyQuestion,
    Interrupted,
    InvalidModel,
    LLMError,
    ModelNotFound,
    ModelServerError,
    ModelTimedOut,
    ModelUnreachable,
    PromptTooLong,
    QuestionTooLong,
    QuotaExhausted,
    RateLimited,
    Refused,
    ShuttingDown,
    StorageFull,
    StoreError,
)
from cogs._text import DISCORD_LIMIT, one_line, quote

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


def reset_summary(who: str, outcome: ResetOutcome) -> str:
    """What /reset did, in one public sentence (the caller sends it without pings)."""
    rounds, dropped = outcome.rounds, outcome.dropped
    done = [f"forgot {rounds:,} {'round' if rounds == 1 else 'rounds'}"]
    if dropped:
        done.append(f"dropped {dropped:,} waiting {'question' if dropped == 1 else 'questions'}")
    if outcome.stopped:
        done.append("stopped the answer in progress")
    return f"{who} reset the conversation: {', '.join(done)}. The system prompt stays."


def explain(error: BaseException) -> str:
    """One friendly sentence: what happened and what to do."""
    match error:
        case RateLimited(retry_after=seconds) if seconds and seconds <= 120:
            return f"The model is rate-limited; try again in about {round(seconds)} seconds."
        case RateLimited():
            return "The model is rate-limited right now; try again in a minute."
        case QuotaExhausted():
            return "The model account has run out of quota; the bot's owner needs to check billing."
        case ContextTooLong():
            return (
                "This conversation is too long for the model even after dropping old rounds; "
                "ask a shorter question or use /reset."
            )
        case QuestionTooLong(needed=needed, available=available):
            return (
                f"That question is too long for the model ({needed} tokens, {available} "
                "available); please shorten it."
            )
        case ModelTimedOut():
            return "The model took too long to answer; please try again."
        case ModelUnreachable():
            return "I can't reach the model server right now; please try again in a few minutes."
        case AuthenticationFailed():
            return "The model server rejected the bot's API key; the bot's owner needs to fix it."
        case ModelNotFound(model=model):
            name = f" `{model}`" if model else ""
            return (
                f"The model{name} isn't available on the server; a moderator can pick another "
                "with /model."
            )
        case Refused():
            return "The model refused this request; try rephrasing it."
        case ModelServerError():
            return "The model server had an error; please try again in a moment."
        case Interrupted():
            return "The answer was cut off before it finished and was not saved; please ask again."
        case EmptyAnswer():
            return "The model returned an empty answer; please try again or rephrase."
        case LLMError():
            return "The model could not answer; please try again."
        case EmptyQuestion():
            return "There's no question there — write it after the mention or in /ask."
        case PromptTooLong(limit=limit):
            return f"That system prompt is too long; keep it under {limit} characters."
        case InvalidModel(choices=choices):
            return f"Unknown model; choose one of: {', '.join(choices)}."
        case ShuttingDown():
            return "I'm restarting; please ask again in a minute."
        case ChatError():
            return str(error).capitalize() + "."
        case StorageFull():
            return (
                "I couldn't save this conversation because the bot's disk is full; "
                "nothing was lost, please try again later."
            )
        case DatabaseMissing():
            return (
                "I can't save conversations right now (my database file is gone); "
                "the bot's owner needs to restart me."
            )
        case StoreError():
            return "I couldn't save this conversation (a database error); please try again later."
    return "Something went wrong on my side; please try again."
