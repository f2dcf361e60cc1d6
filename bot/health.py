"""The heartbeat and the health check: is this process connected to Discord?

While the gateway is connected (every shard of this process ready, its connection open), the
process touches HEARTBEAT_FILE every third of HEARTBEAT_MAX_AGE. The file is removed when the
process starts (one left by a killed run says nothing about this one) and when it stops cleanly.
A process that hangs, or stays disconnected, stops touching it, so the file grows old.

`python -m bot health` (Docker's HEALTHCHECK, a platform's probe) exits 0 when the file is younger
than HEARTBEAT_MAX_AGE, else 1, with one line saying why. It reads only the two heartbeat settings
(from the environment and `.env`, validated as the bot validates them), so it needs neither the
token nor the API key, and it imports neither discord nor the model client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError, create_model
from pydantic_settings import BaseSettings

from bot.settings import Settings, SettingsError, describe_errors

log = logging.getLogger(__name__)

BEATS_PER_MAX_AGE = 3  # a beat or two may be late (a busy loop, a slow disk) without alarm


@dataclass(frozen=True, slots=True)
class Health:
    healthy: bool
    line: str  # one line, fit for `docker inspect` and a probe's log


def check(path: Path, max_age: float, *, now: float | None = None) -> Health:
    """Whether the heartbeat at `path` is younger than `max_age` seconds."""
    try:
        touched = path.stat().st_mtime
    except FileNotFoundError:
        return Health(
            False, f"no heartbeat at {path}: the bot is not connected to Discord (or not started)"
        )
    except OSError as exc:
        return Health(False, f"cannot read the heartbeat {path}: {exc.strerror or exc}")
    age = max(0.0, (time.time() if now is None else now) - touched)
    if age >= max_age:
        return Health(
            False,
            f"the heartbeat {path} is {age:.0f} s old (HEARTBEAT_MAX_AGE is {max_age:g} s):"
            " the bot has not been connected to Discord since",
        )
    return Health(True, f"connected to Discord (heartbeat {age:.0f} s old)")


class Heartbeat:
    """Touches `path` at each `beat()` while `connected()` says the gateway is connected."""

    def __init__(self, path: Path, connected: Callable[[], bool]) -> None:
        self.path = path
        self._connected = connected
        self._failing = False

    def beat(self) -> bool:
        """Touch the file if connected; whether it was touched."""
        if not self._connected():
            return False
        try:
            self.path.touch()  # one utime (or create) on a local file: microseconds
        except OSError as exc:
            if not self._failing:  # once per failing spell, not at every beat
                log.warning("Cannot touch the heartbeat file %s: %s", self.path, exc)
            self._failing = True
            return False
        if self._failing:
            log.info("The heartbeat file %s is touched again", self.path)
        self._failing = False
        return True

    def remove(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("Cannot remove the heartbeat file %s: %s", self.path, exc)


@contextlib.asynccontextmanager
async def heartbeat(
    path: Path, connected: Callable[[], bool], *, max_age: float, interval: float | None = None
) -> AsyncIterator[Heartbeat]:
    """Beat every `interval` seconds (a third of `max_age` by default) while the context is
    open; the file is removed on entry and on exit."""
    beats = Heartbeat(path, connected)
    beats.remove()
    period = max_age / BEATS_PER_MAX_AGE if interval is None else interval

    async def beat_forever() -> None:
        while True:
            beats.beat()
            await asyncio.sleep(period)

    task = asyncio.create_task(beat_forever(), name="heartbeat")
    try:
        yield beats
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        beats.remove()


class _SettingsSources(BaseSettings):
    model_config = Settings.model_config  # the same sources, names and strictness


_HEARTBEAT_FIELDS: dict[str, Any] = {
    name: (Settings.model_fields[name].annotation, Settings.model_fields[name])
    for name in ("heartbeat_file", "heartbeat_max_age")
}
_HeartbeatSettings = create_model(
    "_HeartbeatSettings", __base__=_SettingsSources, **_HEARTBEAT_FIELDS
)


def load_heartbeat_settings(env_file: str | Path | None = ".env") -> tuple[Path, float]:
    """HEARTBEAT_FILE and HEARTBEAT_MAX_AGE, read and validated exactly as `Settings` reads them
    (same fields, same sources), without the secrets the bot itself requires.

    Raises `SettingsError` (one line) for an invalid value.
    """
    try:
        values = _HeartbeatSettings(_env_file=env_file).model_dump()
    except ValidationError as exc:
        raise SettingsError(describe_errors(exc)) from None
    return Path(values["heartbeat_file"]), float(values["heartbeat_max_age"])


def main() -> int:
    """`python -m bot health`: 0 if the heartbeat is fresh, 1 (and why) if not, 2 for a bad
    setting."""
    try:
        path, max_age = load_heartbeat_settings()
    except SettingsError as exc:
        print(f"chatlab: {exc}", file=sys.stderr)
        return 2
    health = check(path, max_age)
    print(f"chatlab: {health.line}", file=sys.stdout if health.healthy else sys.stderr)
    return 0 if health.healthy else 1
