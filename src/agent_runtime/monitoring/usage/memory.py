"""In-process usage ledger: the default for one process and for tests."""

from __future__ import annotations

import threading
from datetime import date

from agent_runtime.monitoring.usage.base import UsageQuery, UsageRecord, UsageStore

__all__ = ["MemoryUsageStore"]

_Cell = tuple[str, date, str, str, str]


class MemoryUsageStore(UsageStore):
    """Counters in a dict (mutated in place: this is on every run's path); a lock makes increments safe
    when sync wrappers call in from other threads."""

    def __init__(self) -> None:
        self._cells: dict[_Cell, list[float]] = {}
        self._lock = threading.Lock()
        self._applied: set[str] = set()

    async def _add(self, record: UsageRecord, op_id: str | None) -> None:
        key = record.cell
        with self._lock:
            if op_id is not None:
                if op_id in self._applied:
                    return
                self._applied.add(op_id)
            counters = self._cells.get(key)
            if counters is None:
                counters = self._cells[key] = [0, 0, 0, 0.0, 0]
            counters[0] += record.input_tokens
            counters[1] += record.output_tokens
            counters[2] += record.cached_tokens
            counters[3] += record.cost_usd
            counters[4] += record.runs

    async def _scan(self, query: UsageQuery) -> list[UsageRecord]:
        with self._lock:
            cells = [(key, list(counters)) for key, counters in self._cells.items()]
        records = [
            UsageRecord(tenant, user, template, model, day, int(inp), int(out), int(cached), cost, int(runs))
            for (tenant, day, user, template, model), (inp, out, cached, cost, runs) in cells
        ]
        return [rec for rec in records if query.matches(rec)]
