"""In-process quota ledger: exact within one process; state is lost on exit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agent_runtime.limits.quota.base import Bucket, QuotaLedger

__all__ = ["MemoryQuotaLedger"]


@dataclass
class _State:
    window_end: float
    spent: int = 0
    reservations: dict[str, tuple[int, float]] = field(default_factory=dict)
    """reservation id -> (amount, expires_at)"""

    def live_reserved(self, now: float) -> int:
        self.reservations = {k: v for k, v in self.reservations.items() if v[1] > now}
        return sum(amount for amount, _ in self.reservations.values())


class MemoryQuotaLedger(QuotaLedger):
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock=clock)
        self._buckets: dict[str, _State] = {}
        self._lock = threading.Lock()
        self._applied: set[str] = set()

    def _state(self, bucket: Bucket, now: float) -> _State:
        if len(self._buckets) > 10_000:  # drop closed windows now and then
            self._buckets = {k: v for k, v in self._buckets.items() if v.window_end > now}
        return self._buckets.setdefault(bucket.key, _State(bucket.window_end))

    async def _reserve(
        self, rid: str, buckets: Sequence[Bucket], amounts: Sequence[int], ttl_s: float
    ) -> tuple[int, bool] | None:
        with self._lock:
            now = self._clock()
            states = [self._state(b, now) for b in buckets]
            for i, (b, st, amount) in enumerate(zip(buckets, states, amounts, strict=True)):
                own = st.reservations.get(rid, (0, 0.0))[0]  # re-reserving an id replaces it
                if st.spent + st.live_reserved(now) - own + amount > b.limit:
                    return i, st.spent + amount <= b.limit
            for st, amount in zip(states, amounts, strict=True):
                st.reservations[rid] = (amount, now + ttl_s)
            return None

    def _first_time(self, op_id: str | None) -> bool:
        if op_id is None:
            return True
        if op_id in self._applied:
            return False
        self._applied.add(op_id)
        return True

    async def _settle(self, rid: str, buckets: Sequence[Bucket], amounts: Sequence[int], op_id: str | None) -> None:
        with self._lock:
            if not self._first_time(op_id):
                return
            now = self._clock()
            for b, amount in zip(buckets, amounts, strict=True):
                st = self._state(b, now)
                st.reservations.pop(rid, None)
                st.spent += amount

    async def _adjust(self, buckets: Sequence[Bucket], amounts: Sequence[int], op_id: str | None) -> None:
        with self._lock:
            if not self._first_time(op_id):
                return
            now = self._clock()
            for b, amount in zip(buckets, amounts, strict=True):
                self._state(b, now).spent += amount

    async def _status(self, buckets: Sequence[Bucket]) -> list[tuple[int, int]]:
        with self._lock:
            now = self._clock()
            out = []
            for b in buckets:
                st = self._buckets.get(b.key)
                out.append((st.spent, st.live_reserved(now)) if st else (0, 0))
            return out
