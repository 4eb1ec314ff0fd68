"""Rate limiting by GCRA (generic cell rate algorithm), shared by the memory and Redis backends.

GCRA keeps one number per limit, the theoretical arrival time (TAT): a limit of ``n`` per
``period`` spaces units ``period / n`` apart and tolerates a burst of the full ``n``. It is exact
(no window-boundary double bursts, unlike fixed windows) and O(1) in memory (unlike a sliding log).

Three operations, each atomic over *all* the limits passed together (e.g. per key and per tenant):

- ``acquire(limits, cost)``: admit only if every limit has room for ``cost``, then charge all of them.
- ``peek(limits)``: would one more unit fit in every limit? Charges nothing.
- ``charge(limits, cost)``: charge unconditionally (tokens known only after a run); a limit may go
  into debt, and later ``peek``/``acquire`` calls are refused until it is paid back.
- ``reserve(limits, tokens)`` then ``settle(hold, used)``: ``acquire`` a run's upper bound before it
  starts, then charge the overrun or give back (``refund``) what it did not use; a refund never fills
  a limit above its burst. Concurrent runs thus never admit more than the limit between them.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from agent_runtime.errors import ValidationError

__all__ = ["Decision", "Hold", "Limit", "Mode", "RateLimiter", "gcra"]

Mode = Literal["acquire", "peek", "charge", "refund"]
# Rounding (floats here, whole microseconds in gcra.lua) accumulates over a burst: a unit is never
# refused for being early by less than a microsecond or a thousandth of its interval.
_SLACK_S = 1e-6
_SLACK_SHARE = 1e-3


@dataclass(frozen=True, slots=True)
class Limit:
    """``limit`` units per ``period_s`` seconds under the name ``key``."""

    key: str
    limit: int
    period_s: float = 60.0

    def __post_init__(self) -> None:
        if self.limit <= 0 or self.period_s <= 0:
            raise ValidationError(f"rate limit {self.key!r} must have a positive limit and period")


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0
    """Seconds until the request would be admitted (0 when allowed)."""
    remaining: int = 0
    """Units still available in the tightest limit after this decision (after ``peek``: right now)."""
    blocked_by: int | None = None
    """Index into the ``limits`` argument of the limit that refused, if any."""


@dataclass(frozen=True, slots=True)
class Hold:
    """What ``reserve`` took: ``tokens`` in every one of ``limits`` (0 when it was refused)."""

    limits: tuple[Limit, ...]
    tokens: int
    decision: Decision
    local: bool = False
    """Taken by a fail-open limiter's local fallback (it settles there too)."""


def gcra(
    tats: Sequence[float | None], limits: Sequence[Limit], cost: int, mode: Mode, now: float
) -> tuple[Decision, list[float] | None]:
    """One GCRA decision over several limits; returns the decision and the TATs to store (or ``None``).

    This is the reference the Redis Lua script mirrors line by line.
    """
    new_tats: list[float] = []
    wait, blocked, remaining = 0.0, None, math.inf
    for i, (stored, lim) in enumerate(zip(tats, limits, strict=True)):
        interval = lim.period_s / lim.limit
        tat = max(stored if stored is not None else now, now)
        units = 1 if mode == "peek" else cost
        step = -cost if mode == "refund" else cost
        # Offsets from ``now``, not absolute times: ``now + x - x`` may round above ``now`` and
        # refuse a unit that fits exactly (the first request of a 1-per-minute limit, say).
        ahead = tat - now
        early = ahead + units * interval - lim.period_s
        if early > max(_SLACK_S, interval * _SLACK_SHARE) and early > wait:
            wait, blocked = early, i
        new_tats.append(max(tat + step * interval, now))  # a refund never fills a limit above its burst
        after = max(ahead + step * interval, 0.0)
        remaining = min(remaining, math.floor((lim.period_s - after) / interval + _SLACK_S))
    allowed = blocked is None
    unconditional = mode in ("charge", "refund")
    store = unconditional or (mode == "acquire" and allowed)
    left = max(0, int(remaining)) if remaining != math.inf else 0
    decision = Decision(allowed or unconditional, 0.0 if allowed else wait, left, blocked)
    return decision, new_tats if store else None


class RateLimiter(ABC):
    """A shared rate limiter; every backend gives the same answers for the same sequence of calls."""

    async def acquire(self, limits: Sequence[Limit], cost: int = 1) -> Decision:
        """Admit and charge ``cost`` units if every limit has room, else charge nothing."""
        return await self._run("acquire", limits, cost)

    async def peek(self, limits: Sequence[Limit]) -> Decision:
        """Whether one more unit would fit in every limit; charges nothing."""
        return await self._run("peek", limits, 0)

    async def charge(self, limits: Sequence[Limit], cost: int) -> Decision:
        """Charge ``cost`` units whatever the state (may leave the limits in debt)."""
        return await self._run("charge", limits, cost)

    async def reserve(self, limits: Sequence[Limit], tokens: int) -> Hold:
        """Take ``tokens`` (a run's upper bound) from every limit if all have room, else nothing."""
        decision = await self._run("acquire", limits, tokens)
        return Hold(tuple(limits), tokens if decision.allowed else 0, decision)

    async def settle(self, hold: Hold, used: int) -> Decision:
        """Turn a hold into ``used`` tokens: charge the overrun or give back what was not used."""
        delta = max(0, used) - hold.tokens
        return await self._run("charge" if delta >= 0 else "refund", hold.limits, abs(delta))

    async def _run(self, mode: Mode, limits: Sequence[Limit], cost: int) -> Decision:
        if cost < 0:
            raise ValidationError("rate limit cost must not be negative")
        if not limits:
            return Decision(True, remaining=0)
        return await self._decide(mode, limits, cost)

    @abstractmethod
    async def _decide(self, mode: Mode, limits: Sequence[Limit], cost: int) -> Decision:
        """Apply ``gcra`` atomically to the stored TATs of ``limits``."""

    @abstractmethod
    async def reset(self, keys: Sequence[str]) -> None:
        """Forget the state of these limit keys."""

    async def ping(self) -> None:
        """One cheap round trip to the backend (``/readyz``); raises ``BackendError`` when it is down."""
        return None

    async def aclose(self) -> None:
        """Release connections."""
        return None
