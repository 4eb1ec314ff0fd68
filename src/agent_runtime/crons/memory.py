"""In-process schedules: for tests and single-process use (a restart loses them)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from agent_runtime.crons.base import DEFAULT_MAX_PER_TENANT, DEFAULT_TICK_RETENTION_S, CronStore, matches, too_many
from agent_runtime.crons.schedule import Schedule

__all__ = ["MemoryCronStore"]


class MemoryCronStore(CronStore):
    def __init__(
        self,
        *,
        max_per_tenant: int = DEFAULT_MAX_PER_TENANT,
        tick_retention_s: float = DEFAULT_TICK_RETENTION_S,
    ) -> None:
        super().__init__(max_per_tenant=max_per_tenant, tick_retention_s=tick_retention_s)
        self._schedules: dict[str, Schedule] = {}
        self._claimed: dict[str, float] = {}
        """The latest tick claimed per schedule: ticks of a schedule only move forward (each is after
        the clock of the scheduler that computed it), so one number per schedule is the whole set."""
        self._lock = asyncio.Lock()

    async def create(self, schedule: Schedule) -> None:
        async with self._lock:
            if len(await self.tenant_schedules(schedule.tenant)) >= self.max_per_tenant:
                raise too_many(schedule.tenant, self.max_per_tenant)
            self._schedules[schedule.cron_id] = schedule.model_copy(deep=True)

    def _owned(self, cron_id: str, tenant: str | None) -> Schedule | None:
        schedule = self._schedules.get(cron_id)
        if schedule is None or (tenant is not None and schedule.tenant != tenant):
            return None
        return schedule

    async def get(self, cron_id: str, *, tenant: str | None = None) -> Schedule | None:
        schedule = self._owned(cron_id, tenant)
        return None if schedule is None else schedule.model_copy(deep=True)

    async def tenant_schedules(self, tenant: str) -> list[Schedule]:
        return [s.model_copy(deep=True) for s in self._schedules.values() if s.tenant == tenant]

    async def update(
        self, cron_id: str, *, tenant: str | None = None, match: Mapping[str, Any] | None = None, **changes: Any
    ) -> Schedule | None:
        schedule = self._owned(cron_id, tenant)
        if schedule is None or not matches(schedule, match):
            return None
        updated = Schedule.model_validate(schedule.model_dump() | changes)
        self._schedules[cron_id] = updated
        return updated.model_copy(deep=True)

    async def delete(self, cron_id: str, *, tenant: str | None = None) -> bool:
        if self._owned(cron_id, tenant) is None:
            return False
        del self._schedules[cron_id]
        self._claimed.pop(cron_id, None)
        return True

    async def due(self, now: float, limit: int = 100) -> list[Schedule]:
        found = [
            s for s in self._schedules.values() if s.enabled and s.next_run_at is not None and s.next_run_at <= now
        ]
        found.sort(key=lambda s: (s.next_run_at or 0.0, s.cron_id))
        return [s.model_copy(deep=True) for s in found[:limit]]

    async def claim_tick(self, cron_id: str, tick_at: float, now: float) -> bool:
        if self._claimed.get(cron_id, float("-inf")) >= tick_at:
            return False
        self._claimed[cron_id] = tick_at
        return True
