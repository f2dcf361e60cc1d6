"""One bot process of the sharded soak: `python -m benchmarks.shard_soak_child PLAN`.

The real `python -m bot` (`bot.__main__.main`: settings from the environment, the PostgreSQL
store, the shard claim, the sharded bot, the heartbeat), with `ChatBot.start` attaching the bot
to a simulated Discord (simcord) instead of the gateway, as tests/multiprocess/shard_child.py
does. PLAN is JSON: {"process": n, "channels": [soak channel numbers this process serves]}. The
process builds its guilds (two per shard, routed to that shard as Discord does) and channels in
a fixed order, so a process started again with the same plan and shards sees the same ids.

Out (JSON lines on stdout, flushed at once, so the driver has them even after a SIGKILL):
- {"ready": true, "channels": {number: channel id}, "bot": bot user id}
- {"r": question id, "m": reply message id, "k": kind} whenever the bot posts or edits a
  message answering a question; kind is "answer" (holds the question's tag), "error" (a "⚠️"
  sentence), "partial" (still streaming), or "other" (then "c" has the content);
- {"done": batch number, "seconds": wall time} once the bot is idle after a batch.
In (JSON lines on stdin): {"batch": n, "questions": [[channel number, question id, member,
text], ...]}: each question is posted as Discord would deliver it (its message id is the one
given), all of them at once, then the bot runs until idle. EOF or {"stop": true} ends the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import simcord

from bot.__main__ import main
from bot.client import ChatBot

GUILDS_PER_SHARD = 2
MEMBERS = 2
IN_PROGRESS = "⏳"
FAILED = "⚠️"
SETTLE_SECONDS = 2.0  # past REQUEST_TIMEOUT and the reply's edit interval (1 s each)
TIMEOUT_STEP = 1.5  # virtual seconds: past the driver's REQUEST_TIMEOUT (1 s)
ROUND_LIMIT = 60.0  # seconds a round may take before the driver is told it is done anyway


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def kind(content: str, tag: str) -> str:
    if FAILED in content:
        return "error"
    if IN_PROGRESS in content:
        return "partial"
    return "answer" if tag in content else "other"


def tag_of(question_id: int) -> str:
    """The word each question carries, echoed back in its answer."""
    return f"q{question_id}"


async def until_answered(env: Any, asked: list[int], final: dict[int, int], limit: float) -> None:
    """Let the bot run until every question asked has a reply that ended and the bot is idle.

    simcord's settle returns once nothing is left but waits on timers further away than its
    timeout (the heartbeat, keep-alives): a short timeout, tried again while answers stream.
    simcord runs the bot's timers on a virtual clock, the model client's read timeout too: once
    the bot is idle with a question still unanswered (a stalled stream), the clock is moved on
    past REQUEST_TIMEOUT (when no answer ended for a while), as real time would have.
    """
    while True:
        seen = sum(final.values()), len(final)
        with contextlib.suppress(TimeoutError):  # still answering, or a stalled stream
            await env.settle(timeout=SETTLE_SECONDS)
        if all(question in final for question in asked) or time.monotonic() > limit:
            return
        if (sum(final.values()), len(final)) == seen:  # nothing ended for SETTLE_SECONDS
            env.backend.advance_clock(TIMEOUT_STEP)  # due timers fire in the next settle


async def attach_to_simcord(bot: ChatBot, token: str, *, reconnect: bool = True) -> None:
    plan = json.loads(sys.argv[1])
    async with simcord.run(bot) as env:
        backend = env.backend
        # Every simulated Discord starts at the same virtual instant: each process gets instants
        # of its own, so that guilds and channels of two processes never share an id.
        backend.advance_clock(600.0 * (1 + plan["process"]))
        assert bot.user is not None
        bot_id = bot.user.id
        shards = bot.shard_ids or [0]
        guilds = []
        for shard in shards:
            for n in range(GUILDS_PER_SHARD):
                guild = env.create_guild(f"shard {shard} guild {n}", shard_id=shard)
                members = [
                    guild.add_member(env.create_user(f"s{shard}g{n}m{m}", global_name=f"M{m}"))
                    for m in range(MEMBERS)
                ]
                guilds.append((guild, members))
        channels: dict[int, Any] = {}
        members_of: dict[int, list[Any]] = {}
        for position, number in enumerate(plan["channels"]):
            guild, members = guilds[position % len(guilds)]
            channels[number] = guild.create_text_channel(f"soak-{number}")
            members_of[number] = members

        replies: dict[int, tuple[int, str]] = {}  # reply message id -> (question id, tag)

        final: dict[int, int] = {}  # question id -> replies that ended (answer or error)
        ended: set[int] = set()  # reply message ids that ended

        def report(message: Any) -> None:
            question, tag = replies[message.id]
            sort = kind(message.content, tag)
            if sort in ("answer", "error") and message.id not in ended:
                ended.add(message.id)
                final[question] = final.get(question, 0) + 1
            fields: dict[str, Any] = {"r": question, "m": message.id, "k": sort}
            if sort == "other":
                fields["c"] = message.content[:300]
            say(**fields)

        tags: dict[int, str] = {}
        commit_message = backend.commit_message
        edit_message = backend.edit_message

        def committed(message: Any, **kwargs: Any) -> Any:
            result = commit_message(message, **kwargs)
            reference = message.reference or {}
            asked = int(reference.get("message_id") or 0)
            if message.author_id == bot_id and asked in tags:
                replies[message.id] = (asked, tags[asked])
                report(result)
            return result

        def edited(channel_id: int, message_id: int, fields: dict[str, Any]) -> Any:
            result = edit_message(channel_id, message_id, fields)
            if message_id in replies:
                report(result)
            return result

        backend.commit_message = committed
        backend.edit_message = edited
        say(ready=True, channels={n: c.id for n, c in channels.items()}, bot=bot_id)

        mention = f"<@{bot_id}>"
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                return
            command = json.loads(line)
            if command.get("stop"):
                return
            started = time.perf_counter()
            for number, question_id, member, text in command["questions"]:
                tags[question_id] = tag_of(question_id)

                def this_id(question_id: int = question_id) -> int:
                    del backend.snowflake  # every later id as usual
                    return question_id

                backend.snowflake = this_id  # the id of the message posted next
                backend.create_message(
                    channels[number].id, members_of[number][member].id, f"{mention} {text}"
                )
            asked = [question_id for _, question_id, _, _ in command["questions"]]
            await until_answered(env, asked, final, time.monotonic() + ROUND_LIMIT)
            unended = [question for question in asked if question not in final]
            say(done=command["batch"], seconds=time.perf_counter() - started, unended=unended)


if __name__ == "__main__":
    ChatBot.start = attach_to_simcord  # type: ignore[method-assign]
    sys.exit(main(["run"]))
