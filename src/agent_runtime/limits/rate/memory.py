"""In-process GCRA limiter: exact within one process (threads included), not shared between processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from agent_runtime.limits.rate.base import Decision, Limit, Mode, RateLimiter, gcra

__all__ = ["MemoryRateLimiter"]


class MemoryRateLimiter(RateLimiter):
    """TATs in a dict guarded by a lock; stale entries are pruned when the dict grows past ``max_keys``."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._max_keys = max_keys

    async def _decide(self, mode: Mode, limits: Sequence[Limit], cost: int) -> Decision:
        with self._lock:
            now = self._clock()
            decision, new_tats = gcra([self._tats.get(lim.key) for lim in limits], limits, cost, mode, now)
            if new_tats is not None:
                for lim, tat in zip(limits, new_tats, strict=True):
                    self._tats[lim.key] = tat
                if len(self._tats) > self._max_keys:
                    self._tats = {k: v for k, v in self._tats.items() if v > now}
            return decision

    async def reset(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self._tats.pop(key, None)
