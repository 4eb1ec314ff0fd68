"""In-process run registry: for tests and single-process use (a dead process takes its runs with it)."""

from __future__ import annotations

from collections.abc import Sequence

from agent_runtime.orchestration.runs.base import ABANDONED_RETENTION_S, RunRecord, RunStore

__all__ = ["MemoryRunStore"]


class MemoryRunStore(RunStore):
    in_process = True

    def __init__(self) -> None:
        self._live: dict[str, RunRecord] = {}
        self._abandoned: dict[str, tuple[RunRecord, float]] = {}

    async def start(self, record: RunRecord) -> None:
        self._live[record.key] = record

    async def finish(self, key: str) -> None:
        self._live.pop(key, None)

    async def heartbeat(self, keys: Sequence[str], now: float) -> None:
        for key in keys:
            record = self._live.get(key)
            if record is not None:
                record.heartbeat_at = now

    async def claim_stale(self, cutoff: float, now: float, limit: int = 100) -> list[RunRecord]:
        stale = [record for record in self._live.values() if record.heartbeat_at < cutoff][:limit]
        for record in stale:
            del self._live[record.key]
            record.status = "abandoned"
            self._abandoned[record.key] = (record, now)
        self._abandoned = {k: v for k, v in self._abandoned.items() if v[1] > now - ABANDONED_RETENTION_S}
        return stale

    async def get(self, key: str) -> RunRecord | None:
        if key in self._live:
            return self._live[key]
        entry = self._abandoned.get(key)
        return entry[0] if entry is not None else None
