"""What a member reads besides the answer itself, in their language: errors and refusals as one
sentence, and the summaries of /system show, /history, /usage, /info and /reset — from the
catalogue (bot/messages), in Discord Markdown, within Discord's limits."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.access import Refusal
from bot.chat import (
    ChannelInfo,
    ChannelPrompt,
    ChannelValues,
    ChatConfig,
    Mode,
    PromptChange,
    ResetOutcome,
    Usage,
)
from bot.conversation import Round
from bot.errors import ChatlabError
from bot.families import Family
from bot.messages import text
from cogs._export import attachment_line
from cogs._text import DISCORD_LIMIT, one_line, quote

THREAD_NAME_LIMIT = 100
# Markdown's emphasis, code and spoiler marks, and Discord's <...> syntax (mentions, emoji,
# timestamps); other text in angle brackets (`<div>`) is part of the question.
_NOT_IN_NAMES = re.compile(r"[`*~|]+|<(?:@[!&]?|#|a?:\w+:|t:)[^<>\s]*>")


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
            question=_asked(r, locale),
            answer=one_line(r.answer.content, 400),
        )
        for r in rounds
    ]
    while len("\n\n".join(blocks)) > DISCORD_LIMIT and len(blocks) > 1:
        blocks.pop(0)
    return "\n\n".join(blocks)[:DISCORD_LIMIT]


def _asked(item: Round, locale: str | None) -> str:
    """A question in a line: the member's words (not the files' text nor the quoted message the
    bot framed around them), then the files' names."""
    words = one_line(item.question.text, 300)
    listed = one_line(attachment_line(item.question, locale), 200)
    return f"{words} {listed}" if words and listed else words or listed


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
    info: ChannelInfo, config: ChatConfig, locale: str | None, *, family: Family
) -> str:
    """/info: the model and each setting in force, where each comes from, and the prompt."""
    values = info.values
    if family.name == "reasoning":
        shown = text(locale, f"effort.{values.reasoning_effort or 'default'}")
        talks = text(locale, "info.reasoning", effort=shown)
    else:
        temperature = _number(values.temperature)
        talks = text(locale, "info.chat", temperature=temperature, top_p=_number(config.top_p))
    lines = [
        text(
            locale,
            "info.model",
            model=info.model,
            context=config.context_window,
            max_tokens=values.max_tokens,
        ),
        talks,
        text(locale, "info.history", rounds=values.history_rounds),
        text(
            locale,
            "channel_setting.info.mode",
            mode=mode_name(values, locale),
            source=_source(values.sources["mode"], locale),
        ),
        text(locale, "channel_setting.info.heading"),
        _line("model", f"`{info.model}`", info.model_source, locale),
    ]
    for name in ("temperature", "max_tokens", "history_rounds", "reasoning_effort"):
        shown = setting_value(name, values, locale)
        if name == "temperature" and not family.sampling:
            shown = text(locale, "channel_setting.value.unused", value=shown)
        lines.append(_line(name, shown, values.sources[name], locale))
    source = text(locale, f"system.source.{info.prompt.source}")
    lines += [text(locale, "system.heading", source=source), quote(info.prompt.text, 800)]
    return "\n".join(lines)[:DISCORD_LIMIT]


def setting_value(name: str, values: ChannelValues, locale: str | None) -> str:
    """A setting's value in force, as a member reads it ("0.7", "512 tokens", "chat channel")."""
    if name == "temperature":
        return _number(values.temperature)
    if name == "max_tokens":
        return text(locale, "channel_setting.value.tokens", count=values.max_tokens)
    if name == "history_rounds":
        return text(locale, "channel_setting.value.rounds", count=values.history_rounds)
    if name == "reasoning_effort":
        return text(locale, f"effort.{values.reasoning_effort or 'default'}")
    return mode_name(values, locale)


def mode_name(values: ChannelValues, locale: str | None) -> str:
    if values.members_thread and values.mode is Mode.THREADS:
        return text(locale, "channel_setting.mode.members_thread")
    if values.in_thread and values.answers_every_message:
        return text(locale, "channel_setting.mode.thread_chat")
    return text(locale, f"channel_setting.mode.{values.mode.value}")


def setting_changed(name: str, values: ChannelValues, locale: str | None, *, unset: bool) -> str:
    """One sentence: the setting's value now, and if it was unset, where that comes from."""
    setting = text(locale, f"channel_setting.name.{name}")
    value = setting_value(name, values, locale)
    if not unset:
        return text(locale, "channel_setting.changed.set", setting=setting, value=value)
    source = _source(values.sources[name], locale)
    return text(
        locale, "channel_setting.changed.unset", setting=setting, value=value, source=source
    )


def mode_changed(
    values: ChannelValues, locale: str | None, *, unset: bool, prefix: str, can_read: bool
) -> str:
    """What the channel's new mode means; and if this session cannot read messages that do not
    mention the bot (no Message Content intent), that too, and what happens next."""
    if unset:
        sentence = setting_changed("mode", values, locale, unset=True)
    elif values.answers_every_message:
        key = "chat" if prefix else "chat_all"
        sentence = text(locale, f"channel_setting.mode_set.{key}", prefix=prefix)
    else:
        sentence = text(locale, f"channel_setting.mode_set.{values.mode.value}")
    if not can_read and (values.answers_every_message or values.opens_threads):
        sentence += " " + text(locale, "channel_setting.intent.missing")
    return sentence


def temperature_note(model: str, locale: str | None) -> str:
    return text(locale, "channel_setting.changed.temperature_unused", model=model)


def settings_reset(who: str, locale: str | None) -> str:
    """What /settings reset did, in one public sentence (sent without pings)."""
    return text(locale, "channel_setting.changed.reset", who=who)


def _line(name: str, value: str, source: str, locale: str | None) -> str:
    return text(
        locale,
        "channel_setting.info.line",
        setting=text(locale, f"channel_setting.name.{name}"),
        value=value,
        source=_source(source, locale),
    )


def _source(source: str, locale: str | None) -> str:
    return text(locale, f"system.source.{source}")


def _number(value: float) -> str:
    return f"{value:g}"


def thread_name(question: str, fallback: str) -> str:
    """A thread's name from the question: one line, no Markdown or mention syntax, within
    Discord's 100 characters (`fallback` when nothing is left)."""
    plain = _NOT_IN_NAMES.sub(" ", question)
    flat = " ".join(plain.split()).lstrip("#>- ").rstrip()
    if not flat:
        flat = " ".join(fallback.split())
    return flat if len(flat) <= THREAD_NAME_LIMIT else flat[: THREAD_NAME_LIMIT - 1].rstrip() + "…"


def reset_summary(who: str, outcome: ResetOutcome, locale: str | None) -> str:
    """What /reset did, in one public sentence (the caller sends it without pings)."""
    done = [text(locale, "reset.forgot", count=outcome.rounds)]
    if outcome.dropped:
        done.append(text(locale, "reset.dropped", count=outcome.dropped))
    if outcome.stopped:
        done.append(text(locale, "reset.stopped"))
    actions = text(locale, "reset.separator").join(done)
    return text(locale, "reset.done", who=who, actions=actions)
