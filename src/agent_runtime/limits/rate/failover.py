"""Fail-open rate limiting: a shared limiter backed by a local one for when the shared store is down.

While Redis answers, every decision is the shared (fleet-wide) one. When a call raises
``BackendError`` (Redis down, or its circuit breaker open, which fails in microseconds) the same
decision is taken by an in-process ``MemoryRateLimiter`` instead: limits then hold per worker rather
than per fleet (a fleet of N workers admits up to N times the limit) until Redis is back. The local
limiter starts empty, so the first minute of an outage admits up to a full burst per worker.

A token hold is settled where it was taken: a local hold locally, a shared one on Redis; when Redis
fails at that moment the overrun is charged locally and the unused part of the hold is not given
back (the shared limit keeps it until it refills: over-counted, never under-counted).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from agent_runtime.errors import BackendError
from agent_runtime.limits.rate.base import Decision, Hold, Limit, Mode, RateLimiter
from agent_runtime.limits.rate.memory import MemoryRateLimiter

__all__ = ["FailOpenRateLimiter"]

log = logging.getLogger("agent_runtime.ratelimit")
_WARN_EVERY_S = 10.0


class FailOpenRateLimiter(RateLimiter):
    """``primary`` (shared) with ``fallback`` (local, per worker) taking over while ``primary`` fails.

    Args:
        primary: the shared limiter (Redis).
        fallback: the local limiter used during an outage (default: a fresh ``MemoryRateLimiter``).
        on_fallback: called once per decision taken locally (metrics).
    """

    def __init__(
        self,
        primary: RateLimiter,
        fallback: RateLimiter | None = None,
        *,
        on_fallback: Callable[[], None] | None = None,
    ) -> None:
        self.primary = primary
        self.fallback = fallback or MemoryRateLimiter()
        self.on_fallback = on_fallback
        self.fallback_decisions = 0
        self._warned_at = float("-inf")

    async def _decide(self, mode: Mode, limits: Sequence[Limit], cost: int) -> Decision:
        try:
            return await self.primary._decide(mode, limits, cost)
        except BackendError as exc:
            self._note(exc)
        return await self.fallback._decide(mode, limits, cost)

    async def reserve(self, limits: Sequence[Limit], tokens: int) -> Hold:
        try:
            return await self.primary.reserve(limits, tokens)
        except BackendError as exc:
            self._note(exc)
        return replace(await self.fallback.reserve(limits, tokens), local=True)

    async def settle(self, hold: Hold, used: int) -> Decision:
        if hold.local:
            return await self.fallback.settle(hold, used)
        try:
            return await self.primary.settle(hold, used)
        except BackendError as exc:
            self._note(exc)
        return await self.fallback.charge(hold.limits, max(0, used - hold.tokens))

    def _note(self, exc: BackendError) -> None:
        self.fallback_decisions += 1
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_S:  # one line per outage-ish, not one per request
            self._warned_at = now
            log.warning("shared rate limiter unavailable (%s); limiting per worker until it is back", exc.message)
        if self.on_fallback is not None:
            self.on_fallback()

    async def reset(self, keys: Sequence[str]) -> None:
        await self.fallback.reset(keys)
        await self.primary.reset(keys)

    async def ping(self) -> None:
        await self.primary.ping()

    async def aclose(self) -> None:
        await self.primary.aclose()
        await self.fallback.aclose()
