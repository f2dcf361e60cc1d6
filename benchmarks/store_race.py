"""Two chatlab processes starting on one new database at the same instant, many times.

    .venv/bin/python -m benchmarks.store_race [--pairs 40] [--no-lock] [--tree DIR]

Each pair: two children (tests/store_child.py) import the store, wait on a shared "go", then
open the same brand-new database file. A start is *failed* when it ends in anything but an open
store or the deliberate one-line refusal "another chatlab process is using …" (DatabaseInUse),
or when the file afterwards is not a whole, fully migrated database. --no-lock switches the
process lock off, to measure creation and migration on their own. --tree runs the `bot` package
of another checkout (e.g. the code as it was: `git archive <rev> | tar -x -C /tmp/before`).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = ROOT / "tests" / "store_child.py"


def start_pair(database: Path, tree: Path, *, no_lock: bool) -> list[subprocess.Popen[str]]:
    """Two children, both imported and waiting; the caller says go."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, str(CHILD), str(database)] + (["--no-lock"] if no_lock else [])
    children = [
        subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tree,
        )
        for _ in range(2)
    ]
    for child in children:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "READY":
            raise RuntimeError(
                f"child did not start: {child.stderr.read() if child.stderr else ''}"
            )
    return children


def go(children: list[subprocess.Popen[str]]) -> list[str]:
    """Release the children at once; their one-line outcomes."""
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    outcomes = []
    for child in children:
        stdout, stderr = child.communicate(timeout=60)
        line = stdout.strip().splitlines()[-1] if stdout.strip() else ""
        outcomes.append(line or f"FAILED exit {child.returncode}: {stderr.strip()[-200:]}")
    return outcomes


def database_problem(database: Path, version: int | None) -> str | None:
    """Why the file is not a whole database at `version`, or None."""
    try:
        with sqlite3.connect(database) as db:
            if db.execute("PRAGMA integrity_check").fetchone() != ("ok",):
                return "integrity check failed"
            found = db.execute("PRAGMA user_version").fetchone()[0]
            if version is not None and found != version:
                return f"schema version {found}, expected {version}"
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            if not {"channels", "turns", "messages", "meta"} <= tables:
                return "tables missing"
    except sqlite3.Error as exc:
        return str(exc)
    return None


def run_pairs(pairs: int, tree: Path, *, no_lock: bool, directory: Path) -> dict[str, object]:
    kinds: Counter[str] = Counter()
    failed_pairs = 0
    examples: Counter[str] = Counter()
    for number in range(pairs):
        database = directory / f"race-{number}.db"
        outcomes = go(start_pair(database, tree, no_lock=no_lock))
        versions = {int(o.split()[1]) for o in outcomes if o.startswith("OK ")}
        problem = database_problem(database, versions.pop() if len(versions) == 1 else None)
        pair_failed = problem is not None
        for outcome in outcomes:
            kind = outcome.split(" ", 1)[0]
            kinds[kind] += 1
            if kind not in ("OK", "REFUSED"):
                pair_failed = True
                examples[outcome[:120]] += 1
        if problem:
            examples[f"database: {problem}"] += 1
        failed_pairs += pair_failed
    return {"kinds": kinds, "failed_pairs": failed_pairs, "examples": examples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--no-lock", action="store_true", help="switch the process lock off")
    parser.add_argument("--tree", type=Path, default=ROOT, help="checkout whose bot/ to run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_pairs(
            args.pairs, args.tree.resolve(), no_lock=args.no_lock, directory=Path(tmp)
        )
    kinds: Counter[str] = result["kinds"]  # type: ignore[assignment]
    starts = sum(kinds.values())
    lock = "off" if args.no_lock else "on (if the tree has one)"
    print(f"tree: {args.tree}  lock: {lock}  pairs: {args.pairs}")
    print(f"{'outcome':<10}{'starts':>8}")
    for kind in ("OK", "REFUSED", "FAILED"):
        print(f"{kind:<10}{kinds.get(kind, 0):>8}")
    print(f"failed starts: {kinds.get('FAILED', 0)} of {starts}")
    print(f"pairs with a failure: {result['failed_pairs']} of {args.pairs}")
    for example, count in result["examples"].most_common(5):  # type: ignore[attr-defined]
        print(f"  {count:>3} x {example}")


if __name__ == "__main__":
    main()
