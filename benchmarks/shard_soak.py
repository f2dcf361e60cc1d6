"""Sharded soak: turns over many channels served by 3 bot processes on one PostgreSQL, with model
failures, and one process killed with SIGKILL mid-run and started again.

    .venv/bin/python -m benchmarks.shard_soak [--quick] [--turns 10000] [--channels 200]
                                              [--failure-rate 0.05] [--tree DIR]

Each process is the real `python -m bot` on simcord (benchmarks/shard_soak_child.py), running
two of SHARD_COUNT=6 shards (0-1, 2-3, 4-5); a channel belongs to a guild of one of them. They
share one PostgreSQL (the embedded server of the tests, tests/support/postgres.py, on a unix
socket, with fsync, synchronous_commit and full_page_writes off) and one loopback model server
(in this process) whose answers echo the question, and of which `--failure-rate` fail at random
(seeded): a 500, a stream cut after its first words, or a stream that stalls until the bot's
REQUEST_TIMEOUT (1 s) gives up.

The driver plays Discord's side: it delivers each channel's questions in order, in rounds of
--per-round questions per channel (two members taking turns, so each channel's queue holds
several at once), each process's rounds at its own pace. In the middle of the run one process is
killed with SIGKILL while a round is being answered, and started again with the same shards (it
must get them back once PostgreSQL has noticed the dead connection); the questions it had been
delivered that have neither a stored turn nor a final reply (an answer or an error sentence)
are delivered again to it, in their order, as a gateway replay would.

Counts, read from the database and from what each process's Discord saw:
- delivered: questions (each id once), and how many were delivered again after the kill;
- stored: turns in the database; error replies: questions told an error and not stored;
- lost: delivered, neither stored nor told an error;
- duplicated: a question with two stored turns, or two final replies;
- interleaved: a channel whose stored turns are not in its delivery order, or a question row
  not followed by its own answer.
Target: 0 lost, 0 duplicated, 0 interleaved. Exit status 1 if any is not 0. --tree runs another
checkout's bot (e.g. `git archive <rev> | tar -x -C /tmp/before`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARD_COUNT = 6
SHARDS = ("0-1", "2-3", "4-5")
REQUEST_TIMEOUT = 1.0  # seconds a stalled stream holds its channel before the bot gives up
# Question ids: Discord snowflakes from a day before simcord's clock starts (2026-01-01), so that
# no id simcord gives a reply ever equals one; in each channel they grow with delivery order.
FIRST_ID = (1_767_139_200_000 - 1_420_070_400_000) << 22
RESTART_ATTEMPTS = 100


def faulty_model(failure_rate: float, seed: int) -> Any:
    """The loopback model server: echoes, and fails `failure_rate` of requests three ways."""
    from tests.fake_openai import FakeOpenAI, Reply, server_error

    class FaultyModel(FakeOpenAI):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.kinds: Counter[str] = Counter()

        def _unscripted(self) -> Reply:
            if self._random.random() >= failure_rate:
                return self.default
            self.failures += 1
            sort = self._random.choice(("500", "cut", "stall"))
            self.kinds[sort] += 1
            if sort == "500":
                return server_error()
            if sort == "cut":
                return Reply(echo=True, chunk_size=4, cut_after=1)
            return Reply(echo=True, chunk_size=4, stall_after=1)

    return FaultyModel(Reply(echo=True, chunk_size=16), seed=seed)


def stop_embedded_server(admin_url: str) -> None:
    """Stop this process's embedded PostgreSQL (fast shutdown) and delete its files.

    tests/support/postgres.py leaves that to exit handlers, which a benchmark's driver does not
    reliably reach (seen: servers left running after the driver ended).
    """
    import shutil
    import urllib.parse

    data = Path(urllib.parse.parse_qs(urllib.parse.urlsplit(admin_url).query)["host"][0])
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.05)
    except (OSError, ValueError, IndexError):
        pass  # gone (or never started)
    shutil.rmtree(data.parent, ignore_errors=True)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child is killed if the driver dies, so a crashed driver leaves no bots."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class Question:
    id: int
    channel: int  # soak channel number
    member: int
    process: int
    redelivered: bool = False


@dataclass
class Outcomes:
    """What each process's Discord showed, per question: reply message id -> last kind."""

    replies: dict[int, dict[int, str]] = field(default_factory=lambda: defaultdict(dict))
    others: list[str] = field(default_factory=list)

    def final(self, question: int) -> list[str]:
        """The kinds of the question's replies that ended (an answer or an error)."""
        return [k for k in self.replies.get(question, {}).values() if k in ("answer", "error")]


class Bot:
    """One bot process: its plan, its pipes, its stderr file."""

    def __init__(self, number: int, channels: list[int], env: dict[str, str], tmp: Path) -> None:
        self.number = number
        self.channels = channels
        self.env = env
        self.tmp = tmp
        self.process: asyncio.subprocess.Process | None = None
        self.channel_ids: dict[int, int] = {}
        self.starts = 0
        self._reader: asyncio.Task[None] | None = None
        self._done: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.events = 0  # reply events seen since the last round was sent

    async def start(self, outcomes: Outcomes, tree: Path) -> None:
        self.starts += 1
        plan = json.dumps({"process": self.number, "channels": self.channels})
        stderr = open(self.tmp / f"bot{self.number}-{self.starts}.log", "wb")  # noqa: SIM115
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "benchmarks.shard_soak_child",
                plan,
                cwd=self.tmp,
                env=self.env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                preexec_fn=_die_with_parent,
                limit=1 << 20,
            )
        finally:
            stderr.close()
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), 120)
        if not raw:
            await self.process.wait()
            raise ChildFailed(self, self.error_text())
        ready = json.loads(raw)
        self.channel_ids = {int(k): v for k, v in ready["channels"].items()}
        self._done = asyncio.Queue()
        self._reader = asyncio.create_task(self._read(outcomes))

    def error_text(self) -> str:
        path = self.tmp / f"bot{self.number}-{self.starts}.log"
        return path.read_text(errors="replace").strip()

    async def _read(self, outcomes: Outcomes) -> None:
        assert self.process is not None and self.process.stdout is not None
        while raw := await self.process.stdout.readline():
            event = json.loads(raw)
            if "r" in event:
                outcomes.replies[event["r"]][event["m"]] = event["k"]
                if event["k"] == "other":
                    outcomes.others.append(event.get("c", ""))
                self.events += 1
            elif "done" in event:
                await self._done.put(event)
        await self._done.put({"eof": True})

    async def send(self, number: int, questions: list[Question], texts: dict[int, str]) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.events = 0
        rows = [[q.channel, q.id, q.member, texts[q.id]] for q in questions]
        line = json.dumps({"batch": number, "questions": rows}) + "\n"
        self.process.stdin.write(line.encode())
        await self.process.stdin.drain()

    async def round_done(self) -> dict[str, Any]:
        event = await self._done.get()
        if "eof" in event:
            assert self.process is not None
            await self.process.wait()
            raise ChildFailed(self, self.error_text())
        return event

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        if self._reader is not None:
            await self._reader  # every line written before the kill is read

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ConnectionError):
            assert self.process.stdin is not None
            self.process.stdin.write(b'{"stop": true}\n')
            await self.process.stdin.drain()
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    def abandon(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()


class ChildFailed(Exception):
    def __init__(self, bot: Bot, error: str) -> None:
        super().__init__(f"bot process {bot.number} ended: {error[-2000:]}")
        self.bot = bot
        self.error = error


def bot_environment(
    url: str, model_url: str, shards: str, heartbeat: Path, tree: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    env.update(
        PYTHONPATH=str(tree),
        XDG_RUNTIME_DIR=str(heartbeat.parent),
        DISCORD_TOKEN="MTAx.FAKE-DISCORD-TOKEN.secret",
        OPENAI_API_KEY="sk-soak-not-a-real-key",
        OPENAI_BASE_URL=model_url,
        MODEL="gpt-4o-mini",
        MAX_RETRIES="0",
        REQUEST_TIMEOUT=str(REQUEST_TIMEOUT),
        DATABASE_URL=url,
        SHARD_COUNT=str(SHARD_COUNT),
        SHARD_IDS=shards,
        HEARTBEAT_FILE=str(heartbeat),
        USER_COOLDOWN_SECONDS="0",
        MAX_WAITING_PER_CHANNEL="1000",
        MAX_WAITING_PER_MEMBER="100",
        LOG_LEVEL="WARNING",
    )
    return env


async def soak(args: argparse.Namespace) -> int:
    from tests.support import postgres

    tree = Path(args.tree).resolve() if args.tree else ROOT
    rng = random.Random(args.seed)
    per_channel = args.turns // args.channels
    rounds = -(-per_channel // args.per_round)
    victim = args.victim
    kill_round = rounds // 2

    # Questions: channel c belongs to process c % 3; each channel's ids grow in delivery order.
    questions: dict[int, Question] = {}
    order: dict[int, list[int]] = defaultdict(list)  # channel -> question ids, delivery order
    plan: list[list[list[Question]]] = [[[] for _ in range(rounds)] for _ in SHARDS]
    texts: dict[int, str] = {}
    next_id = FIRST_ID
    for n in range(per_channel):
        for channel in range(args.channels):
            next_id += 1 << 22  # one millisecond later
            process = channel % len(SHARDS)
            question = Question(next_id, channel, n % 2, process)
            questions[next_id] = question
            order[channel].append(next_id)
            plan[process][n // args.per_round].append(question)
            texts[next_id] = f"q{next_id} question {n} in channel {channel}"

    outcomes = Outcomes()
    await asyncio.to_thread(postgres.server_url)  # the embedded server, started
    # Another checkout migrates the database with its own migrations.
    url = await postgres.create_database(migrated=tree == ROOT)
    model = faulty_model(args.failure_rate, args.seed)
    bots: list[Bot] = []
    restart: dict[str, Any] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chatlab-shard-soak-") as tmpdir:
        tmp = Path(tmpdir)
        async with model:
            try:
                for number, shards in enumerate(SHARDS):
                    env = bot_environment(
                        url, model.base_url, shards, tmp / f"heartbeat-{number}", tree
                    )
                    channels = [c for c in range(args.channels) if c % len(SHARDS) == number]
                    bots.append(Bot(number, channels, env, tmp))
                await asyncio.gather(*(bot.start(outcomes, tree) for bot in bots))
                ready = time.perf_counter()

                async def drive(bot: Bot) -> None:
                    for number, batch in enumerate(plan[bot.number]):
                        await bot.send(number, batch, texts)
                        if bot.number == victim and number == kill_round:
                            await kill_and_restart(bot, batch, number)
                            continue
                        done = await bot.round_done()
                        if done["unended"]:
                            print(
                                f"  process {bot.number} round {number + 1}: no reply ended for "
                                f"{len(done['unended'])} question(s) after {done['seconds']:.0f} s",
                                file=sys.stderr,
                            )

                async def kill_and_restart(bot: Bot, batch: list[Question], number: int) -> None:
                    # SIGKILL once a third of the round's questions have replies on screen.
                    while bot.events < len(batch) // 3 and bot.process.returncode is None:  # type: ignore[union-attr]
                        await asyncio.sleep(0.005)
                    await asyncio.sleep(rng.random() * 0.05)
                    before = dict(bot.channel_ids)
                    await bot.kill()
                    killed = time.perf_counter()
                    attempts = 0
                    while True:
                        attempts += 1
                        try:
                            await bot.start(outcomes, tree)
                            break
                        except ChildFailed as failed:
                            if "another chatlab process runs shard" not in failed.error:
                                raise
                            if attempts >= RESTART_ATTEMPTS:
                                raise
                            await asyncio.sleep(0.1)
                    restart["seconds"] = time.perf_counter() - killed
                    restart["attempts"] = attempts
                    if bot.channel_ids != before:
                        raise RuntimeError("the restarted process's channels have other ids")
                    # Every question this process was given that has neither a stored turn
                    # nor a final reply, in delivery order (the round in flight, in practice).
                    given = [q for r in plan[bot.number][: number + 1] for q in r]
                    stored = await stored_question_ids(url)
                    again = [q for q in given if q.id not in stored and not outcomes.final(q.id)]
                    for q in again:
                        q.redelivered = True
                    restart["redelivered"] = len(again)
                    restart["cut"] = sum(
                        1 for q in again if q.id in outcomes.replies
                    )  # a partial reply was on screen when the process died
                    restart["in_flight"] = len(batch)
                    await bot.send(number, again, texts)
                    await bot.round_done()

                await asyncio.gather(*(drive(bot) for bot in bots))
                wall = time.perf_counter() - ready
                for bot in bots:
                    await bot.stop()
            finally:
                for bot in bots:
                    bot.abandon()
        counts = await account(url, questions, order, outcomes)
    await postgres.drop_database(url)

    total = time.perf_counter() - started
    delivered = len(questions)
    print(
        f"shard soak: {delivered:,} questions over {args.channels} channels, 3 processes "
        f"(shards {', '.join(SHARDS)} of {SHARD_COUNT}), one PostgreSQL; model failures "
        f"{args.failure_rate:.0%} ({model.failures} failed: {dict(model.kinds)})"
    )
    print(
        f"  wall {wall:.1f} s from all ready ({delivered / wall:.0f} questions/s), "
        f"{total:.1f} s in all"
    )
    print(
        f"  process {victim} SIGKILLed in round {kill_round + 1} of {rounds} "
        f"({restart.get('in_flight', 0)} questions in flight); started again with its shards "
        f"after {restart.get('seconds', float('nan')):.2f} s ({restart.get('attempts', 0)} "
        f"attempt(s)); delivered again: {restart.get('redelivered', 0)} "
        f"(of which {restart.get('cut', 0)} had a partial reply on screen)"
    )
    print(
        f"  delivered {delivered:,}; turns stored {counts['stored']:,}; error replies "
        f"{counts['errors']:,}; lost {counts['lost']}; duplicated {counts['duplicated']}; "
        f"interleaved {counts['interleaved']}"
    )
    for name in ("lost", "duplicated", "interleaved"):
        if counts[f"{name}_examples"]:
            print(f"  {name}: {counts[f'{name}_examples'][:5]}")
    if counts["stored_and_error"] or counts["stored_no_reply"] or outcomes.others:
        print(
            f"  also: stored yet told an error {counts['stored_and_error']}; stored with no "
            f"final reply seen {counts['stored_no_reply']}; replies of another shape "
            f"{len(outcomes.others)} {outcomes.others[:3]}"
        )
    return int(bool(counts["lost"] or counts["duplicated"] or counts["interleaved"]))


async def stored_question_ids(url: str) -> set[int]:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT question_message_id FROM turns")
    finally:
        await connection.close()
    return {int(r[0]) for r in rows}


async def account(
    url: str,
    questions: dict[int, Question],
    order: dict[int, list[int]],
    outcomes: Outcomes,
) -> dict[str, Any]:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        turns = await connection.fetch("SELECT id, question_message_id FROM turns ORDER BY id")
        messages = await connection.fetch(
            "SELECT channel_id, turn_id, role, content FROM messages ORDER BY channel_id, id"
        )
    finally:
        await connection.close()
    stored = Counter(int(r["question_message_id"]) for r in turns)
    asked = {r["id"]: int(r["question_message_id"]) for r in turns}  # turn id -> question id
    lost: list[Any] = []
    duplicated: list[Any] = []
    interleaved: list[Any] = []
    errors = stored_and_error = stored_no_reply = 0
    for qid in questions:
        final = outcomes.final(qid)
        if stored[qid] > 1 or len(final) > 1:
            duplicated.append((qid, stored[qid], final))
        if stored[qid]:
            stored_and_error += "error" in final
            stored_no_reply += not final
        elif "error" in final:
            errors += 1
        else:
            lost.append((qid, questions[qid].redelivered, final))
    # Each channel's stored turns in delivery order; each question row followed by its answer.
    channel_of = {q.id: q.channel for q in questions.values()}
    stored_order: dict[int, list[int]] = defaultdict(list)
    for row in turns:
        qid = int(row["question_message_id"])
        stored_order[channel_of[qid]].append(qid)
    for channel, ids in stored_order.items():
        position = {qid: n for n, qid in enumerate(order[channel])}
        places = [position[qid] for qid in ids]
        if places != sorted(places):
            swapped = sum(1 for a, b in itertools.pairwise(places) if a > b)
            interleaved.append(("order", channel, f"{swapped} swap(s)", places[:12]))
    rows_by_channel: dict[int, list[Any]] = defaultdict(list)
    for row in messages:
        rows_by_channel[row["channel_id"]].append(row)
    for channel_id, rows in rows_by_channel.items():
        pairs_ok = len(rows) % 2 == 0 and all(
            rows[i]["role"] == "user"
            and rows[i + 1]["role"] == "assistant"
            and rows[i]["turn_id"] == rows[i + 1]["turn_id"]
            and f"q{asked[rows[i]['turn_id']]} " in rows[i]["content"]
            and f"q{asked[rows[i]['turn_id']]} " in rows[i + 1]["content"]
            for i in range(0, len(rows), 2)
        )
        if not pairs_ok:
            interleaved.append(("rows", channel_id))
    return {
        "stored": sum(stored.values()),
        "errors": errors,
        "lost": len(lost),
        "duplicated": len(duplicated),
        "interleaved": len(interleaved),
        "lost_examples": lost,
        "duplicated_examples": duplicated,
        "interleaved_examples": interleaved,
        "stored_and_error": stored_and_error,
        "stored_no_reply": stored_no_reply,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shard_soak", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 turns over 40 channels")
    parser.add_argument("--turns", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--per-round", type=int, default=5, help="questions per channel a round")
    parser.add_argument("--failure-rate", type=float, default=0.05)
    parser.add_argument("--victim", type=int, default=1, choices=(0, 1, 2))
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--tree", help="run the bot package of this checkout instead")
    args = parser.parse_args()
    if args.quick:
        args.turns, args.channels = 1_000, 40
    # Stopped from outside (SIGTERM): unwind, so the bots are killed and the embedded
    # PostgreSQL is stopped and deleted by its exit handler.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        status = asyncio.run(soak(args))
    finally:
        from tests.support import postgres

        if postgres._server is not None:
            stop_embedded_server(postgres.server_url())
    sys.exit(status)


if __name__ == "__main__":
    main()
