"""bot/app.py: the core `python -m bot` runs on, and the collector settled once set up."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

from bot.app import YOUNG_THRESHOLD, open_core, settle_collector
from bot.chat import Answer, Question
from bot.settings import load_settings
from tests.fake_openai import FakeOpenAI, Reply


@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
async def test_the_core_answers_and_keeps_the_turn_across_a_reopen(
    llm_server: FakeOpenAI, tmp_path: Path, backend: str
):
    settings = load_settings(
        None,
        discord_token="discord-token-for-tests",
        openai_api_key="sk-test-not-a-real-key",
        openai_base_url=llm_server.base_url,
        database_path=tmp_path / "chatlab.db",
        http_backend=backend,
    )
    llm_server.then(Reply(text="Hello from the core."))

    async with open_core(settings) as core:
        events = [e async for e in core.service.ask(Question(7, 1, "Alice", "hi"))]
    answer = events[-1]

    assert isinstance(answer, Answer) and answer.text == "Hello from the core."
    async with open_core(settings) as core:
        (stored,) = await core.service.history(7, 5)
    assert stored.answer.content == "Hello from the core."


def test_settling_freezes_what_start_up_made_and_collects_the_young_less_often():
    gc.set_threshold(700, 10, 10)
    made_at_start_up = [["a module's table"]]
    assert any(o is made_at_start_up for o in gc.get_objects())

    settle_collector()

    assert not any(o is made_at_start_up for o in gc.get_objects())  # out of the collector's sight
    made_later = [["an answer's buffer"]]
    assert any(o is made_later for o in gc.get_objects())
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    settle_collector()  # again: nothing more changes
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)


def test_settling_turns_a_collector_held_off_during_start_up_back_on():
    gc.disable()

    settle_collector()

    assert gc.isenabled()


def test_python_m_bot_holds_the_collector_off_from_its_first_line(tmp_path: Path):
    # Run as `python -m bot` does (run_name "__main__"), stopped at the first thing main() does.
    code = (
        "import gc, runpy, sys; import argparse;"
        "argparse.ArgumentParser.parse_args = lambda *a, **k: sys.exit(0 if not gc.isenabled()"
        " and 'discord' in sys.modules else 3);"
        "runpy.run_module('bot', run_name='__main__')"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, timeout=60, check=False)

    assert done.returncode == 0


def test_a_higher_young_threshold_set_by_the_operator_is_kept():
    gc.set_threshold(YOUNG_THRESHOLD * 2, 20, 5)

    settle_collector()

    assert gc.get_threshold() == (YOUNG_THRESHOLD * 2, 20, 5)


def test_cycles_are_collected_by_themselves_once_settled():
    gc.disable()  # as `python -m bot` starts
    settle_collector()

    class Node:
        pass

    collected: list[str] = []
    node = Node()
    node.self = node  # type: ignore[attr-defined]
    weakref.finalize(node, collected.append, "gone")
    del node
    kept = [[] for _ in range(3 * YOUNG_THRESHOLD)]  # enough new containers for a collection

    assert collected == ["gone"] and len(kept) == 3 * YOUNG_THRESHOLD


def test_starting_imports_no_heavy_optional_library():
    # Pillow (an image arrives), asyncpg (DATABASE_URL) and tiktoken's native library (a count
    # that must be exact) cost start-up time and memory only when they are needed. A fresh
    # interpreter: this one has imported them for other tests.
    code = (
        "import sys, bot.__main__, cogs.chat, cogs.manage, cogs.settings, cogs.context;"
        "print(','.join(m for m in ('PIL', 'asyncpg', 'tiktoken') if m in sys.modules) or '-')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )

    assert done.stdout.strip() == "-"
