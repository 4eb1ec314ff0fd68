"""How retries are paced (``RetryPolicy``) and capped (``RetryBudget``).

A retry budget per tenant, so a failing provider cannot turn every request into a retry storm.

Each tenant has a token bucket of ``per_minute`` retries (refilling continuously, bursting up to
``per_minute``). A retry is taken only if the bucket has a token; otherwise the error is returned to
the caller at once with ``details["retry_budget_exhausted"] = True``. First attempts never spend
from it. The budget is per worker process (it caps load, it is not an accounting quantity).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from agent_runtime.errors import AgentRuntimeError

__all__ = ["RetryBudget", "RetryPolicy"]


class RetryBudget:
    """Token buckets of retries, one per tenant.

    Args:
        per_minute: retries a tenant may make per minute (0: no retries at all).
        max_tenants: buckets kept; past it, full (idle) buckets are dropped.
    """

    def __init__(
        self, per_minute: int, *, max_tenants: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute = per_minute
        self.max_tenants = max_tenants
        self.exhausted = 0
        """Retries refused since start (a metric for "the provider is failing and we shed retries")."""
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, at)
        self._lock = threading.Lock()

    def try_spend(self, tenant: str | None) -> bool:
        """Take one retry from ``tenant``'s bucket; ``False`` (and nothing taken) when it is empty."""
        key = tenant or "-"
        capacity = float(self.per_minute)
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(key, (capacity, now))
            tokens = min(capacity, tokens + (now - at) * capacity / 60.0)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                self.exhausted += 1
                return False
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > self.max_tenants:
                self._prune(now, capacity)
            return True

    def _prune(self, now: float, capacity: float) -> None:
        refill = capacity / 60.0
        self._buckets = {k: v for k, v in self._buckets.items() if v[0] + (now - v[1]) * refill < capacity}


class RetryPolicy:
    """Exponential backoff with full jitter, capped; a provider's ``Retry-After`` wins when larger.

    A ``Retry-After`` longer than ``max_wait_s`` (4 x ``max_delay_s``) is not waited out: the error goes
    back to the caller at once, carrying it (the HTTP layer turns it into a ``Retry-After`` header)."""

    def __init__(self, base_delay_s: float = 0.5, max_delay_s: float = 8.0, *, rng: random.Random | None = None):
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self._rng = rng or random.Random()

    @property
    def max_wait_s(self) -> float:
        return self.max_delay_s * 4

    def delay(self, attempt: int, error: AgentRuntimeError) -> float:
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        delay = self._rng.uniform(0, ceiling)
        if error.retry_after is not None:
            delay = max(delay, min(error.retry_after, self.max_wait_s))
        return delay
