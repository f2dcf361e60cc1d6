"""What a member reads besides the answer itself, in their language: errors and refusals as one
sentence, and the summaries of /system show, /history, /usage, /info and /reset — from the
catalogue (bot/messages), in Discord Markdown, within Discord's limits."""

from __future__ import annotations

from collections.abc import Sequence

from bot.access import Refusal
from bot.chat import ChannelPrompt, ChatConfig, PromptChange, ResetOutcome, Usage
from bot.conversation import Round
from bot.errors import ChatlabError
from bot.families import Family
from bot.messages import text
from cogs._text import DISCORD_LIMIT, one_line, quote


def explain(error: BaseException, locale: str | None = None) -> str:
    """One friendly sentence: what happened and what to do (anything unforeseen: an apology)."""
    if isinstance(error, ChatlabError):
        return text(locale, error.message_key, **error.params)
    return text(locale, "error.unexpected")


def refusal_sentence(refusal: Refusal, locale: str | None) -> str:
    return text(locale, refusal.key, **refusal.params)


def prompt_summary(
    prompt: ChannelPrompt, changes: Sequence[PromptChange], locale: str | None
) -> str:
    """The prompt in force, where it comes from, and who changed it when (newest first)."""
    source = text(locale, f"system.source.{prompt.source}")
    lines = [text(locale, "system.heading", source=source), quote(prompt.text, 1000), ""]
    lines.append(text(locale, "system.changes"))
    for change in changes:
        when, who = f"<t:{int(change.set_at)}:R>", change.set_by_name
        if change.prompt:
            lines.append(
                text(
                    locale,
                    "system.change_set",
                    when=when,
                    who=who,
                    prompt=one_line(change.prompt, 60),
                )
            )
        else:
            lines.append(text(locale, "system.change_cleared", when=when, who=who))
    if not changes:
        lines.append(text(locale, "system.no_changes"))
    return "\n".join(lines)[:DISCORD_LIMIT]


def history_summary(rounds: Sequence[Round], locale: str | None) -> str:
    """Recent rounds, oldest first, each shortened; the oldest are left out to fit one message."""
    if not rounds:
        return text(locale, "history.empty")
    someone = text(locale, "history.someone")
    blocks = [
        text(
            locale,
            "history.round",
            who=one_line(r.question.author_name or someone, 32),
            question=one_line(r.question.content, 300),
            answer=one_line(r.answer.content, 400),
        )
        for r in rounds
    ]
    while len("\n\n".join(blocks)) > DISCORD_LIMIT and len(blocks) > 1:
        blocks.pop(0)
    return "\n\n".join(blocks)[:DISCORD_LIMIT]


def usage_summary(usage: Usage, locale: str | None) -> str:
    summary = text(
        locale,
        "usage.summary",
        count=usage.answers,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )
    if usage.unreported:
        summary += " " + text(locale, "usage.unreported", count=usage.unreported)
    return summary


def family_line(family: Family, effort: str | None, locale: str | None) -> str:
    """How chatlab talks to a model, in a few words ("reasoning; effort: medium")."""
    if family.name == "reasoning":
        shown = text(locale, f"effort.{effort or 'default'}")
        return text(locale, "model.family_reasoning", effort=shown)
    return text(locale, "model.family_chat")


def settings_summary(
    model: str,
    prompt: ChannelPrompt,
    config: ChatConfig,
    locale: str | None,
    *,
    family: Family,
    effort: str | None,
) -> str:
    source = text(locale, f"system.source.{prompt.source}")
    if family.name == "reasoning":
        shown = text(locale, f"effort.{effort or 'default'}")
        talks = text(locale, "info.reasoning", effort=shown)
    else:
        talks = text(locale, "info.chat", temperature=config.temperature, top_p=config.top_p)
    return "\n".join(
        [
            text(
                locale,
                "info.model",
                model=model,
                context=config.context_window,
                max_tokens=config.max_tokens,
            ),
            talks,
            text(locale, "info.history", rounds=config.max_rounds),
            text(locale, "system.heading", source=source),
            quote(prompt.text, 800),
        ]
    )


def reset_summary(who: str, outcome: ResetOutcome, locale: str | None) -> str:
    """What /reset did, in one public sentence (the caller sends it without pings)."""
    done = [text(locale, "reset.forgot", count=outcome.rounds)]
    if outcome.dropped:
        done.append(text(locale, "reset.dropped", count=outcome.dropped))
    if outcome.stopped:
        done.append(text(locale, "reset.stopped"))
    actions = text(locale, "reset.separator").join(done)
    return text(locale, "reset.done", who=who, actions=actions)
