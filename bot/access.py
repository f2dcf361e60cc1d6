"""Who may ask where, and how often — the same rules for slash commands and mentions.

The original app had a password; on Discord the gate is the server's own structure: optional
lists of channels and roles, whether DMs are answered, and a per-member cooldown (kept by the
store when one is given, so that it holds across processes). Everything here
takes plain ids, so the edge passes what Discord told it and renders the refusal.

A member who keeps being refused (cooldown, a full queue, an empty mention) must not make the bot
post at their rate: `may_notify` allows one public notice per member per `notice_interval`; the
edge answers the rest quietly (a reaction).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

from bot.errors import StoreError
from bot.settings import Settings
from bot.storage.local import LocalCooldowns

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Refusal:
    key: str  # the sentence in the catalogue (bot/messages), rendered in the member's language
    params: dict[str, object] = field(default_factory=dict)
    quiet: bool = False  # True: better not to answer at all (a channel the bot is not used in)


@dataclass(frozen=True, slots=True)
class Asker:
    user_id: int
    role_ids: Collection[int]
    channel_id: int
    parent_id: int | None  # a thread's parent channel
    in_dm: bool


class CooldownBook(Protocol):
    async def take_cooldown(self, key: str, seconds: float) -> float: ...


@dataclass
class AccessPolicy:
    allow_dms: bool = True
    channel_ids: frozenset[int] = frozenset()
    role_ids: frozenset[int] = frozenset()
    cooldown: float = 0.0
    notice_interval: float = 30.0
    clock: Callable[[], float] = field(default=lambda: time.monotonic())
    # Where cooldowns are kept: the store, so that they hold across processes (on PostgreSQL);
    # unset, in this process.
    cooldowns: CooldownBook | None = None
    # State, not configuration: a copy (dataclasses.replace) starts with none.
    _last_notice: dict[int, float] = field(default_factory=dict, init=False, repr=False)
    _local: LocalCooldowns | None = field(default=None, init=False, repr=False)
    _store_failing: bool = field(default=False, init=False, repr=False)

    @classmethod
    def from_settings(
        cls, settings: Settings, cooldowns: CooldownBook | None = None
    ) -> AccessPolicy:
        return cls(
            allow_dms=settings.allow_dms,
            channel_ids=settings.allowed_channel_ids,
            role_ids=settings.allowed_role_ids,
            cooldown=settings.user_cooldown_seconds,
            notice_interval=settings.notice_interval_seconds,
            cooldowns=cooldowns,
        )

    def may_use(self, asker: Asker) -> Refusal | None:
        """Whether the asker may talk to the bot here at all (no cooldown is spent)."""
        if asker.in_dm:
            if not self.allow_dms:
                return Refusal("access.dms_off")
            return None
        if self.channel_ids and not (
            asker.channel_id in self.channel_ids or asker.parent_id in self.channel_ids
        ):
            return Refusal("access.channel_not_enabled", quiet=True)
        if self.role_ids and not self.role_ids.intersection(asker.role_ids):
            return Refusal("access.roles")
        return None

    async def admit(self, asker: Asker) -> Refusal | None:
        """`may_use`, then the cooldown, which is spent only when the question is admitted."""
        refusal = self.may_use(asker)
        if refusal is not None:
            return refusal
        if self.cooldown <= 0:
            return None
        key = f"ask:{asker.user_id}"
        wait: float | None = None
        if self.cooldowns is not None:
            try:
                wait = await self.cooldowns.take_cooldown(key, self.cooldown)
            except StoreError as exc:
                # The store unreachable for a moment must not drop the question in silence:
                # the cooldown is kept in this process until the store answers again.
                if not self._store_failing:
                    log.warning("Cooldowns kept in this process for now: %s", exc)
                self._store_failing = True
            else:
                if self._store_failing:
                    log.info("Cooldowns kept by the store again")
                self._store_failing = False
        if wait is None:
            if self._local is None:
                self._local = LocalCooldowns(self.clock)
            wait = self._local.take(key, self.cooldown)
        if wait > 0:
            return Refusal("access.cooldown", {"seconds": max(1, round(wait))})
        return None

    def may_notify(self, user_id: int) -> bool:
        """Whether the member may get a public notice now (one per `notice_interval`)."""
        now = self.clock()
        last = self._last_notice.get(user_id)
        if last is not None and now - last < self.notice_interval:
            return False
        self._last_notice[user_id] = now
        _forget_older(self._last_notice, now - self.notice_interval)
        return True


def _forget_older(table: dict[int, float], cutoff: float) -> None:
    """Keep a per-member table as small as the set of members seen since `cutoff`."""
    if len(table) > 1024:
        for user_id in [u for u, t in table.items() if t <= cutoff]:
            del table[user_id]
