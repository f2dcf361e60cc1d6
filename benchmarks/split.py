"""Splitting and rendering a huge answer: before (the quadratic splitter) and now. Asserts nothing.

    .venv/bin/python -m benchmarks.split [--sizes 1 4 16] [--repeat 3] [--no-baseline]
                                         [--slow-baseline] [--render-mb 10]

"Before" is bot/text.py and bot/replies.py as they were at BASELINE_COMMIT, read from git and
loaded as modules (nothing in the work tree is touched); "now" is the code in the work tree.
Figures: the best of `--repeat` runs of `split_message` (one run of the old one) over 1, 4 and
16 MB of answer-like text (prose paragraphs with code blocks), and over the same sizes of emoji
with no boundary to cut at (every chunk a hard cut, two UTF-16 units a character; the old code
on 16 MB of it takes minutes, so only with --slow-baseline); then, for a 10 MB answer streamed in
8 KB deltas, the cost of appending it and of one render, with the characters handed to the
splitter.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cogs import _reply as replies
from cogs import _text as text
from tests.screen import Screen

BASELINE_COMMIT = "9dac7a7"  # the last commit before the splitter was made linear
ROOT = Path(__file__).resolve().parent.parent
MB = 1_000_000


def old_module(path: str, name: str, **replace: Any) -> types.ModuleType | None:
    """`path` as it was at BASELINE_COMMIT, loaded as module `name` (None if git cannot say)."""
    try:
        source = subprocess.run(
            ["git", "show", f"{BASELINE_COMMIT}:{path}"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"(no baseline for {path}: {exc})", file=sys.stderr)
        return None
    module = types.ModuleType(name)
    module.__dict__["__name__"] = name
    try:
        exec(compile(source, f"{BASELINE_COMMIT}:{path}", "exec"), module.__dict__)
    except ImportError as exc:  # the old module names something that has since moved
        print(f"(no baseline for {path}: {exc})", file=sys.stderr)
        return None
    module.__dict__.update(replace)
    return module


def answer_like(size: int) -> str:
    """Prose paragraphs with a code block now and then, `size` characters."""
    prose = (
        "A streamed answer is split where a paragraph ends, else a line, else a word, and a "
        "code block cut in two is closed and reopened with its language. "
    ) * 6
    code = "```python\n" + "".join(f"value_{n} = compute({n})  # step {n}\n" for n in range(40))
    block = prose + "\n\n" + prose + "\n\n" + code + "```\n\n"
    return (block * (size // len(block) + 1))[:size]


def emoji_wall(size: int) -> str:
    return "🦊" * size


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def split_table(
    sizes: list[int], repeat: int, old: types.ModuleType | None, slow_baseline: bool
) -> None:
    print("split_message (limit 2000), best of", repeat)
    print(f"{'text':<14}{'size':>7}{'chunks':>9}{'before':>11}{'now':>11}{'ratio':>9}")
    for label, make in (("answer-like", answer_like), ("emoji, no cut", emoji_wall)):
        for megabytes in sizes:
            sample = make(megabytes * MB)
            chunks = text.split_message(sample)
            now = best_of(repeat, lambda s=sample: text.split_message(s))
            if old is not None and (slow_baseline or label != "emoji, no cut" or megabytes <= 4):
                started = time.perf_counter()  # the old splitter is run once
                agrees = old.split_message(sample) == chunks
                before = time.perf_counter() - started
                shown = f"{before:>10.2f}s{now:>10.3f}s{before / now:>8.0f}×"
                shown += "" if agrees else "  (the splitters disagree!)"
            else:
                shown = f"{'-':>11}{now:>10.3f}s{'':>9}"
            print(f"{label:<14}{megabytes:>5}MB{len(chunks):>9}{shown}")


async def stream_once(module: Any, answer: str) -> tuple[float, float, int]:
    """Append `answer` in 8 KB deltas (no paced render), then one render: times and characters."""
    split = module.split_message
    handed: list[int] = []

    def counted(value: str, *args: Any, **kwargs: Any) -> list[str]:
        handed.append(len(value))
        return split(value, *args, **kwargs)

    module.split_message = counted
    try:
        reply = module.StreamedReply(Screen(), interval=3600)
        await reply.add(answer[:8192])  # the first words are rendered at once
        started = time.perf_counter()
        for at in range(8192, len(answer), 8192):
            await reply.add(answer[at : at + 8192])
        appended = time.perf_counter() - started
        handed.clear()
        started = time.perf_counter()
        await reply._render(final=False)  # what the pacer does once a second
        rendered = time.perf_counter() - started
        await reply._stop_pacer()
    finally:
        module.split_message = split
    return appended, rendered, sum(handed)


def render_table(megabytes: int, old: types.ModuleType | None) -> None:
    answer = answer_like(megabytes * MB)
    print(f"\nStreamedReply, a {megabytes} MB answer in 8 KB deltas")
    print(f"{'':<9}{'appending all':>15}{'one render':>13}{'chars split per render':>25}")
    for label, module in (("before", old), ("now", replies)):
        if module is None:
            print(f"{label:<9}{'(no baseline)':>15}")
            continue
        appended, rendered, handed = asyncio.run(stream_once(module, answer))
        print(f"{label:<9}{appended:>14.3f}s{rendered:>12.4f}s{handed:>25,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16], help="MB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--render-mb", type=int, default=10)
    parser.add_argument("--no-baseline", action="store_true", help="skip the slow old code")
    parser.add_argument(
        "--slow-baseline", action="store_true", help="old code on emoji over 4 MB too (minutes)"
    )
    args = parser.parse_args()

    old_text = None if args.no_baseline else old_module("bot/text.py", "baseline_text")
    old_replies = None
    if old_text is not None:
        old_replies = old_module(
            "bot/replies.py", "baseline_replies", split_message=old_text.split_message
        )
    split_table(args.sizes, args.repeat, old_text, args.slow_baseline)
    render_table(args.render_mb, old_replies)


if __name__ == "__main__":
    main()
