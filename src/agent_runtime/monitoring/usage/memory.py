"""In-process usage ledger: the default for one process and for tests."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import date

from agent_runtime.monitoring.usage.base import UsageQuery, UsageRecord, UsageStore

__all__ = ["MemoryUsageStore"]


class MemoryUsageStore(UsageStore):
    """Cells in a dict; a lock makes increments safe when sync wrappers call in from other threads."""

    def __init__(self) -> None:
        self._cells: dict[tuple[str, date, str, str, str], UsageRecord] = {}
        self._lock = threading.Lock()

    async def _add(self, record: UsageRecord) -> None:
        key = record.cell
        with self._lock:
            old = self._cells.get(key)
            if old is None:
                self._cells[key] = record
            else:
                self._cells[key] = replace(
                    old,
                    input_tokens=old.input_tokens + record.input_tokens,
                    output_tokens=old.output_tokens + record.output_tokens,
                    cached_tokens=old.cached_tokens + record.cached_tokens,
                    cost_usd=old.cost_usd + record.cost_usd,
                    runs=old.runs + record.runs,
                )

    async def _scan(self, query: UsageQuery) -> list[UsageRecord]:
        with self._lock:
            cells = list(self._cells.values())
        return [rec for rec in cells if query.matches(rec)]
