"""In-process run records: for tests and single-process use (a restart loses them)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from agent_runtime.runs.base import (
    DEFAULT_MAX_PER_TENANT,
    DEFAULT_TTL_S,
    RunFilter,
    RunRecordStore,
    lease_expired,
    matches,
)
from agent_runtime.runs.record import ACTIVE, TERMINAL, Run

__all__ = ["MemoryRunRecordStore"]


class MemoryRunRecordStore(RunRecordStore):
    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_per_tenant: int = DEFAULT_MAX_PER_TENANT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(ttl_s=ttl_s, max_per_tenant=max_per_tenant)
        self._runs: dict[str, Run] = {}
        self._clock = clock

    async def create(self, run: Run) -> None:
        self._runs.pop(run.run_id, None)
        self._runs[run.run_id] = run.model_copy(deep=True)
        self._prune(run.tenant)

    def _prune(self, tenant: str) -> None:
        cutoff = self._clock() - self.ttl_s
        finished = [r for r in self._oldest_first() if r.tenant == tenant and r.status in TERMINAL]
        excess = len(finished) - self.max_per_tenant
        for index, run in enumerate(finished):
            if index < excess or (run.ended_at or run.created_at) < cutoff:
                del self._runs[run.run_id]

    def _live(self, run: Run) -> bool:
        return run.status not in TERMINAL or (run.ended_at or run.created_at) >= self._clock() - self.ttl_s

    async def get(self, run_id: str, *, tenant: str | None = None) -> Run | None:
        run = self._runs.get(run_id)
        if run is None or not self._live(run) or (tenant is not None and run.tenant != tenant):
            return None
        return run.model_copy(deep=True)

    async def find(self, query: RunFilter) -> list[Run]:
        found = [r for r in reversed(self._oldest_first()) if query.matches(r) and self._live(r)]
        return [r.model_copy(deep=True) for r in found[query.offset : query.offset + query.limit]]

    async def transition(
        self, run_id: str, expected: Collection[str], *, match: Mapping[str, Any] | None = None, **changes: Any
    ) -> Run | None:
        run = self._runs.get(run_id)
        if run is None or not matches(run, expected, match):
            return None
        updated = Run.model_validate(run.model_dump() | changes)
        self._runs[run_id] = updated
        return updated.model_copy(deep=True)

    async def active(self, tenant: str, session_id: str) -> list[Run]:
        found = (r for r in self._runs.values() if r.tenant == tenant and r.session_id == session_id)
        return [r.model_copy(deep=True) for r in found if r.status in ACTIVE]

    async def delete(self, run_id: str) -> bool:
        return self._runs.pop(run_id, None) is not None

    async def pending(self, limit: int = 1000) -> list[Run]:
        return [r.model_copy(deep=True) for r in self._oldest_first() if r.status == "pending"][:limit]

    async def expired(self, now: float, limit: int = 100) -> list[Run]:
        found = sorted((r for r in self._runs.values() if lease_expired(r, now)), key=lambda r: r.lease_until or 0.0)
        return [r.model_copy(deep=True) for r in found[:limit]]

    def _oldest_first(self) -> list[Run]:
        return sorted(self._runs.values(), key=lambda r: r.created_at)
