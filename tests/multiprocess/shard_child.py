"""One bot process of the multi-process test: `python -m tests.multiprocess.shard_child`.

It runs the real `python -m bot` (`bot.__main__.main`: settings from the environment, the
PostgreSQL store, the shard claim, the intents, the sharded bot, the heartbeat), with one thing
replaced: `ChatBot.start` attaches the bot to a simulated Discord (simcord) instead of the real
gateway. simcord routes each guild to its shard as Discord does, so this process sees the guilds
of its own shards only. Each process has a Discord of its own; they share the model server and
the database, which is what the test is about.

Once connected (and so with a fresh heartbeat) it asks one question in a guild on each of its
shards, and prints one JSON line (`ready`). Then it obeys lines on stdin:
`dup <id>` delivers a question whose Discord message id is <id> (the same id the test delivers to
another process: a duplicate delivery) and prints whether it was answered; `stop` returns from
`start`, so the process stops as after a clean shutdown (claims released, heartbeat removed).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import simcord

from bot.__main__ import main
from bot.client import ChatBot


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def attach_to_simcord(bot: ChatBot, token: str, *, reconnect: bool = True) -> None:
    async with simcord.run(bot) as env:
        # Every simulated Discord starts at the same virtual instant, and a snowflake is made of
        # the time and a counter: move each process's clock to instants of its own, or two of
        # them would give two questions the same id (a duplicate delivery the test did not ask
        # for, which the claims rightly answer once).
        await env.advance_time(60.0 * (1 + min(bot.shard_ids or [0])))
        places = []
        for shard in bot.shard_ids or [0]:
            guild = env.create_guild(f"shard {shard}", shard_id=shard)
            channel = guild.create_text_channel("general")
            member = guild.add_member(env.create_user(f"member{shard}", global_name="Member"))
            places.append((shard, guild, channel, member))
        mention = f"<@{bot.user.id}>"
        answers = {}
        for shard, guild, channel, member in places:
            question = await member.send(channel, f"{mention} question on shard {shard}")
            reply = channel.last_message
            answered = reply.author.id == bot.user.id and reply.reference.message_id == question.id
            answers[shard] = {
                "guild": guild.id,
                "channel": channel.id,
                "answer": reply.content if answered else None,
                "last": None if answered else f"{reply.author}: {reply.content}",
            }
        say(ready=True, shards=bot.shard_ids, answers=answers)

        _, _, channel, member = places[0]
        backend = env.backend
        while True:
            command = (await asyncio.to_thread(sys.stdin.readline)).split()
            if not command or command[0] == "stop":
                return
            if command[0] == "dup":
                message_id = int(command[1])

                def this_id_once(message_id: int = message_id) -> int:
                    del backend.snowflake  # every later id as usual
                    return message_id

                backend.snowflake = this_id_once  # the id of the question sent next
                await member.send(channel, f"{mention} the same question, delivered twice")
                replies = [
                    m
                    for m in channel.history()
                    if m.author.id == bot.user.id
                    and m.reference is not None
                    and m.reference.message_id == message_id
                ]
                say(dup=message_id, answered=len(replies))


if __name__ == "__main__":
    ChatBot.start = attach_to_simcord  # type: ignore[method-assign]
    sys.exit(main(["run"]))
