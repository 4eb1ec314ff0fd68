"""The cron store seam: schedules and their claimed ticks in the state backend, one module per engine.

Two writes matter for exactly-once firing across a fleet:

- ``claim_tick(cron_id, tick_at)`` stores the unique key ``(cron_id, tick_at)`` once (Redis ``SET NX``,
  SQL ``INSERT ... ON CONFLICT DO NOTHING``): of every scheduler that sees a tick due, exactly one gets
  ``True`` and starts the run. Claims are kept ``tick_retention_s`` (a day), far longer than a tick stays due: the
  winner, or any other scheduler that lost the claim, moves ``next_run_at`` past it at once.
- ``update(cron_id, match=...)`` is a compare-and-set (like ``RunRecordStore.transition``): a scheduler
  moves ``next_run_at`` on only from the value it saw, so a stale scheduler never moves it back.

Each tenant holds at most ``max_per_tenant`` schedules (``create`` refuses more with 409), so listing a
tenant's schedules reads a bounded set; filters and pagination are applied here, once for every engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from agent_runtime.crons.schedule import Schedule
from agent_runtime.errors import ConflictError

__all__ = [
    "DEFAULT_MAX_PER_TENANT",
    "DEFAULT_TICK_RETENTION_S",
    "CronFilter",
    "CronStore",
    "SortBy",
    "changed",
    "matches",
    "owned",
    "too_many",
]

DEFAULT_MAX_PER_TENANT: Final = 100
DEFAULT_TICK_RETENTION_S: Final = 86_400.0
SortBy = Literal["cron_id", "template", "session_id", "next_run_at", "end_time", "created_at", "updated_at"]


@dataclass(frozen=True, kw_only=True)
class CronFilter:
    """What ``CronStore.find`` returns: one tenant's schedules narrowed by these fields, sorted, paginated."""

    tenant: str
    user: str | None = None
    """Only this user's schedules (``None``: the whole tenant's, for its admins)."""
    template: str | None = None
    session_id: str | None = None
    enabled: bool | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    sort_by: SortBy = "created_at"
    descending: bool = True
    limit: int = 50
    offset: int = 0

    def matches(self, schedule: Schedule) -> bool:
        return (
            schedule.tenant == self.tenant
            and (self.user is None or schedule.user == self.user)
            and (self.template is None or schedule.template == self.template)
            and (self.session_id is None or schedule.session_id == self.session_id)
            and (self.enabled is None or schedule.enabled == self.enabled)
            and all(schedule.metadata.get(k) == v for k, v in self.metadata.items())
        )

    def apply(self, schedules: list[Schedule]) -> list[Schedule]:
        found = [s for s in schedules if self.matches(s)]
        found.sort(key=lambda s: s.cron_id)  # a stable order among equal keys, the same on every engine
        found.sort(key=lambda s: _sort_key(getattr(s, self.sort_by)), reverse=self.descending)
        return found[self.offset : self.offset + self.limit]


def _sort_key(value: Any) -> tuple[bool, Any]:
    """Missing values (``None``) sort apart from present ones, so the comparison never mixes types."""
    return (value is not None, value if value is not None else "")


def matches(schedule: Schedule, match: Mapping[str, Any] | None) -> bool:
    """The guard of ``update``: every ``match`` field has that value."""
    return all(getattr(schedule, name) == value for name, value in (match or {}).items())


def owned(found: list[Schedule], tenant: str | None) -> Schedule | None:
    """The schedule a lookup found, if ``tenant`` (when given) owns it."""
    if not found or (tenant is not None and found[0].tenant != tenant):
        return None
    return found[0]


def changed(
    schedule: Schedule, tenant: str | None, match: Mapping[str, Any] | None, changes: Mapping[str, Any]
) -> Schedule | None:
    """``update``'s compare-and-set on a stored schedule: the new record, or ``None`` when the guard fails."""
    if (tenant is not None and schedule.tenant != tenant) or not matches(schedule, match):
        return None
    return Schedule.model_validate(schedule.model_dump() | dict(changes))


def too_many(tenant: str, limit: int) -> ConflictError:
    return ConflictError(
        f"tenant {tenant!r} already has {limit} schedules, the most allowed; delete one first",
        details={"limit": limit},
    )


class CronStore(ABC):
    """Schedules of one backend (memory, SQLite, Redis, PostgreSQL).

    Args:
        max_per_tenant: schedules a tenant may hold.
        tick_retention_s: how long a claimed tick is remembered.
    """

    def __init__(
        self,
        *,
        max_per_tenant: int = DEFAULT_MAX_PER_TENANT,
        tick_retention_s: float = DEFAULT_TICK_RETENTION_S,
    ) -> None:
        self.max_per_tenant = max_per_tenant
        self.tick_retention_s = tick_retention_s

    @abstractmethod
    async def create(self, schedule: Schedule) -> None:
        """Store a new schedule; ``ConflictError`` when its tenant already holds ``max_per_tenant``."""

    @abstractmethod
    async def get(self, cron_id: str, *, tenant: str | None = None) -> Schedule | None:
        """The schedule, or ``None`` when unknown or (with ``tenant``) another tenant's."""

    @abstractmethod
    async def tenant_schedules(self, tenant: str) -> list[Schedule]:
        """Every schedule of ``tenant`` (at most ``max_per_tenant``)."""

    async def find(self, query: CronFilter) -> list[Schedule]:
        """``query.tenant``'s schedules matching the filter, sorted and paginated."""
        return query.apply(await self.tenant_schedules(query.tenant))

    @abstractmethod
    async def update(
        self, cron_id: str, *, tenant: str | None = None, match: Mapping[str, Any] | None = None, **changes: Any
    ) -> Schedule | None:
        """Atomically apply ``changes`` when every ``match`` field has that value; the updated schedule,
        or ``None`` (unknown, another tenant's, or the guard failed)."""

    @abstractmethod
    async def delete(self, cron_id: str, *, tenant: str | None = None) -> bool:
        """Remove it; ``False`` when there was none (or it is another tenant's)."""

    @abstractmethod
    async def due(self, now: float, limit: int = 100) -> list[Schedule]:
        """Enabled schedules whose ``next_run_at`` is at or before ``now``, earliest first."""

    @abstractmethod
    async def claim_tick(self, cron_id: str, tick_at: float, now: float) -> bool:
        """Take the tick ``(cron_id, tick_at)``: ``True`` for exactly one caller across the fleet."""

    async def ping(self) -> None:
        """One cheap round trip to the backend; raises ``BackendError`` when it is down."""
        return None

    async def aclose(self) -> None:
        """Release connections."""
        return None
