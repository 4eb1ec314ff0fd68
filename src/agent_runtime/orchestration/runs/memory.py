"""In-process run registry: for tests and single-process use (a dead process takes its runs with it)."""

from __future__ import annotations

from collections.abc import Sequence

from agent_runtime.orchestration.runs.base import ABANDONED_RETENTION_S, ChargePolicy, RunRecord, RunStore

__all__ = ["MemoryRunStore"]


class MemoryRunStore(RunStore):
    in_process = True

    def __init__(self) -> None:
        self._live: dict[str, RunRecord] = {}
        self._abandoned: dict[str, tuple[RunRecord, float]] = {}

    async def start_many(self, records: Sequence[RunRecord]) -> None:
        for record in records:
            self._live[record.key] = record

    async def finish_many(self, keys: Sequence[str]) -> dict[str, RunRecord]:
        claimed = {}
        for key in keys:
            if self._live.pop(key, None) is None and key in self._abandoned:
                claimed[key] = self._abandoned[key][0]
        return claimed

    async def heartbeat(self, keys: Sequence[str], now: float) -> None:
        for key in keys:
            record = self._live.get(key)
            if record is not None:
                record.heartbeat_at = now

    async def claim_stale(
        self, cutoff: float, now: float, limit: int = 100, *, charge: ChargePolicy = "reserved"
    ) -> list[RunRecord]:
        stale = [record for record in self._live.values() if record.heartbeat_at < cutoff][:limit]
        claimed = []
        for record in stale:
            del self._live[record.key]
            record = record.model_copy(update={"status": "abandoned", "charge": charge})
            self._abandoned[record.key] = (record, now)
            claimed.append(record)
        self._abandoned = {k: v for k, v in self._abandoned.items() if v[1] > now - ABANDONED_RETENTION_S}
        return claimed

    async def get(self, key: str) -> RunRecord | None:
        if key in self._live:
            return self._live[key]
        entry = self._abandoned.get(key)
        return entry[0] if entry is not None else None
