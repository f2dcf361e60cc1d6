"""Several bot processes on one PostgreSQL, each running its own shards (issue 12).

Each process is the real `python -m bot` with simcord for its Discord (tests/multiprocess/
shard_child.py); they share one PostgreSQL database and one model server.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from bot.storage.postgres import PostgresStore
from tests.fake_openai import FakeOpenAI, Reply
from tests.support.postgres import fresh_database

ROOT = Path(__file__).resolve().parents[2]
SHARD_COUNT = 8  # 6 and 7 run nowhere: the fourth process asks for 5 and 6


class Child:
    """One bot process: JSON lines out, commands in."""

    def __init__(self, process: asyncio.subprocess.Process, heartbeat: Path) -> None:
        self.process = process
        self.heartbeat = heartbeat

    async def line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), 60)
        if not raw:
            assert self.process.stderr is not None
            error = (await self.process.stderr.read()).decode()
            raise AssertionError(f"the bot process ended: {error}")
        return json.loads(raw)

    async def tell(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()


def bot_environment(url: str, model_url: str, shard_ids: str, heartbeat: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    env.update(
        PYTHONPATH=str(ROOT),
        DISCORD_TOKEN="MTAx.FAKE-DISCORD-TOKEN.secret",
        OPENAI_API_KEY="sk-test-not-a-real-key",
        OPENAI_BASE_URL=model_url,
        MAX_RETRIES="0",
        DATABASE_URL=url,
        SHARD_COUNT=str(SHARD_COUNT),
        SHARD_IDS=shard_ids,
        HEARTBEAT_FILE=str(heartbeat),
        HEARTBEAT_MAX_AGE="30",
        USER_COOLDOWN_SECONDS="0",
        LOG_LEVEL="WARNING",
    )
    return env


async def start_child(
    tmp_path: Path, url: str, model_url: str, shard_ids: str, *args: str
) -> asyncio.subprocess.Process:
    heartbeat = tmp_path / f"heartbeat-{shard_ids}"
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=tmp_path,
        env=bot_environment(url, model_url, shard_ids, heartbeat),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def health(heartbeat: Path, tmp_path: Path) -> int:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env.update(PYTHONPATH=str(ROOT), HEARTBEAT_FILE=str(heartbeat), HEARTBEAT_MAX_AGE="30")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "health",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await process.wait()


# Slower than most (about 3 s): four Python processes start, each importing the whole bot.
async def test_three_processes_with_disjoint_shards_share_one_postgresql(tmp_path):
    async with fresh_database() as url, FakeOpenAI() as model:
        model.default = Reply(echo=True)
        ranges = ("0-1", "2-3", "4-5")
        children = [
            Child(
                await start_child(
                    tmp_path, url, model.base_url, shards, "-m", "tests.multiprocess.shard_child"
                ),
                tmp_path / f"heartbeat-{shards}",
            )
            for shards in ranges
        ]
        try:
            ready = await asyncio.gather(*(child.line() for child in children))

            # Each answered a question in a guild of each of its shards, and is healthy.
            assert [r["shards"] for r in ready] == [[0, 1], [2, 3], [4, 5]]
            for report in ready:
                for shard, place in report["answers"].items():
                    assert place["answer"] is not None, (shard, place)
                    assert f"question on shard {shard}" in place["answer"]
            healthy = await asyncio.gather(*(health(c.heartbeat, tmp_path) for c in children))
            assert healthy == [0, 0, 0]

            # A fourth process with an overlapping shard refuses, in one line, before connecting.
            fourth = await start_child(tmp_path, url, model.base_url, "5-6", "-m", "bot")
            _, err = await asyncio.wait_for(fourth.communicate(), 60)
            assert fourth.returncode == 1, err.decode()
            lines = err.decode().strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("chatlab: "), lines
            assert "shard 5 " in lines[0]  # the one taken, not 6
            assert "Traceback" not in err.decode()

            # The same message id delivered to two processes at once is answered once.
            duplicate = 1_234_567_890_123_456_789
            await asyncio.gather(*(child.tell(f"dup {duplicate}") for child in children[:2]))
            answered = await asyncio.gather(*(child.line() for child in children[:2]))
            assert sorted(a["answered"] for a in answered) == [0, 1], answered

            for child in children:
                await child.tell("stop")
            codes = await asyncio.gather(*(child.process.wait() for child in children))
            assert codes == [0, 0, 0]
            assert not any(child.heartbeat.exists() for child in children)
        finally:
            for child in children:
                if child.process.returncode is None:
                    child.process.kill()
                    await child.process.wait()

        # Every turn is in the one database: 2 per process, and the duplicate once.
        async with PostgresStore.open(url) as store:
            rounds = [
                await store.count_rounds(place["channel"])
                for report in ready
                for place in report["answers"].values()
            ]
        assert sorted(rounds) == [1, 1, 1, 1, 1, 2]
