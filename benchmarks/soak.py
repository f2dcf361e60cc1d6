"""Load soak: 10,000 turns over 200 channels with 5% of model calls failing at random.

    .venv/bin/python -m benchmarks.soak [--turns 10000] [--channels 200] [--failure-rate 0.05]

Checks, and prints: no turn lost or interleaved (every answered turn stored, whole, in order, and
nothing else), no unhandled exception, every failure explained in a sentence, memory flat.
The stand-in model runs in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.__main__ import chat_service, rss_mb, turn
from bot.app import settle_collector
from bot.conversation import user_content
from bot.errors import LLMError
from cogs._render import explain


async def soak(turns: int, channels: int, failure_rate: float) -> int:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fake_openai",
            "--echo",
            "--failure-rate",
            str(failure_rate),
            "--seed",
            "5",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int((await asyncio.to_thread(process.stdout.readline)).split()[1])
        url = f"http://127.0.0.1:{port}/v1"
        with tempfile.TemporaryDirectory() as tmp:
            async with chat_service(url, Path(tmp) / "soak.db") as service:
                answered: dict[int, list[str]] = {c: [] for c in range(channels)}
                failures: Counter[str] = Counter()
                unexplained: list[BaseException] = []
                unhandled: list[BaseException] = []
                per_channel = turns // channels
                memory: list[float] = []

                async def member(channel: int, who: int) -> None:
                    for n in range(per_channel // 2):
                        text = f"c{channel} u{who} n{n}"
                        try:
                            answer = await turn(service, channel, text, user=who)
                        except LLMError as exc:
                            failures[type(exc).__name__] += 1
                            if explain(exc).startswith("Something went wrong"):
                                unexplained.append(exc)
                            continue
                        except BaseException as exc:  # what must never happen
                            unhandled.append(exc)
                            continue
                        if answer.text != "echo: " + user_content(f"user{who}", text, who):
                            unhandled.append(AssertionError(f"wrong answer for {text}"))
                        answered[channel].append(text)

                async def sample_memory() -> None:
                    while True:
                        memory.append(rss_mb())
                        await asyncio.sleep(0.5)

                sampler = asyncio.create_task(sample_memory())
                gc.collect()
                start_rss = rss_mb()
                started = time.perf_counter()
                # Two members per channel, so each channel also queues.
                await asyncio.gather(*(member(c, w) for c in range(channels) for w in (1, 2)))
                wall = time.perf_counter() - started
                sampler.cancel()
                gc.collect()
                end_rss = rss_mb()

                lost = interleaved = 0
                for channel, texts in answered.items():
                    stored = await service.history(channel, 10_000)
                    questions = [r.question.content for r in stored]
                    lost += len(set(texts) - set(questions))
                    interleaved += questions != texts or any(
                        r.answer.content
                        != "echo: "
                        + user_content(
                            f"user{r.question.author_id}", r.question.content, r.question.author_id
                        )
                        for r in stored
                    )
                total_answered = sum(len(t) for t in answered.values())
    finally:
        process.terminate()
        process.wait(timeout=10)

    asked = total_answered + sum(failures.values())
    print(f"soak: {asked:,} turns over {channels} channels in {wall:.1f} s ({asked / wall:.0f}/s)")
    print(
        f"  answered and stored: {total_answered:,}; failed: {sum(failures.values()):,} "
        f"({sum(failures.values()) / asked:.1%}) {dict(failures)}"
    )
    print(f"  lost turns: {lost}; channels with interleaved or wrong turns: {interleaved}")
    print(
        f"  unhandled exceptions: {len(unhandled)}; failures without an explanation: "
        f"{len(unexplained)}"
    )
    print(
        f"  RSS: {start_rss:.1f} MB at start, peak {max(memory):.1f} MB, {end_rss:.1f} MB at the "
        f"end; per-channel slots left: {service.busy_channels}"
    )
    return int(bool(lost or interleaved or unhandled or unexplained))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--turns", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--failure-rate", type=float, default=0.05)
    args = parser.parse_args()
    settle_collector()  # as `python -m bot` does once set up
    sys.exit(asyncio.run(soak(args.turns, args.channels, args.failure_rate)))


if __name__ == "__main__":
    main()
