"""The run store seam: run records in the state backend, one module per backend, one contract suite.

Retention is bounded: a finished run is kept ``ttl_s`` and at most ``max_per_tenant`` finished runs
per tenant (the oldest go first). Pending and running runs are never dropped by retention: a run
accepted is either executed or ends with a recorded error.

``transition`` is the one write that changes a stored run: a compare-and-set on its status, atomic
on every backend, so that of two workers picking the same pending run exactly one gets it, and a
cancel never overwrites a run that has just finished.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from agent_runtime.runs.record import Run

__all__ = ["DEFAULT_MAX_PER_TENANT", "DEFAULT_TTL_S", "RunFilter", "RunRecordStore", "lease_expired", "matches"]

DEFAULT_TTL_S: Final = 7 * 86_400.0
DEFAULT_MAX_PER_TENANT: Final = 10_000


@dataclass(frozen=True, kw_only=True)
class RunFilter:
    """What ``RunRecordStore.find`` returns: one tenant's runs, newest first, narrowed by these fields."""

    tenant: str
    session_id: str | None = None
    status: str | None = None
    template: str | None = None
    limit: int = 50
    offset: int = 0

    def matches(self, run: Run) -> bool:
        return (
            run.tenant == self.tenant
            and (self.session_id is None or run.session_id == self.session_id)
            and (self.status is None or run.status == self.status)
            and (self.template is None or run.template == self.template)
        )


def matches(run: Run, expected: Collection[str], match: Mapping[str, Any] | None) -> bool:
    """The guard of ``transition``: status in ``expected`` and every ``match`` field equal."""
    return run.status in expected and all(getattr(run, name) == value for name, value in (match or {}).items())


def lease_expired(run: Run, now: float) -> bool:
    return run.status == "running" and run.lease_until is not None and run.lease_until < now


class RunRecordStore(ABC):
    """Run records of one backend (memory, SQLite, Redis).

    Args:
        ttl_s: how long a finished run is kept.
        max_per_tenant: finished runs kept per tenant (the oldest beyond it are dropped on create).
    """

    def __init__(self, *, ttl_s: float = DEFAULT_TTL_S, max_per_tenant: int = DEFAULT_MAX_PER_TENANT) -> None:
        self.ttl_s = ttl_s
        self.max_per_tenant = max_per_tenant

    @abstractmethod
    async def create(self, run: Run) -> None:
        """Store a new run (replacing one with the same id), then apply the tenant's retention."""

    @abstractmethod
    async def get(self, run_id: str, *, tenant: str | None = None) -> Run | None:
        """The run, or ``None`` when unknown, expired, or (with ``tenant``) another tenant's."""

    @abstractmethod
    async def find(self, query: RunFilter) -> list[Run]:
        """``query.tenant``'s runs matching the filter, newest first, paginated."""

    @abstractmethod
    async def transition(
        self, run_id: str, expected: Collection[str], *, match: Mapping[str, Any] | None = None, **changes: Any
    ) -> Run | None:
        """Atomically apply ``changes`` when the run's status is one of ``expected`` (and each field in
        ``match`` has that value: a lease is renewed only by its holder); the updated run, or ``None``
        (unknown run, or in another state)."""

    @abstractmethod
    async def active(self, tenant: str, session_id: str) -> list[Run]:
        """The session's pending and running runs, in any order, from one read (a run moving from pending
        to running meanwhile is seen either way): what makes the session busy (``runs.multitask``)."""

    @abstractmethod
    async def delete(self, run_id: str) -> bool:
        """Remove a run's record whatever its status (a rolled-back run); ``False`` when there was none."""

    @abstractmethod
    async def pending(self, limit: int = 1000) -> list[Run]:
        """Pending runs of every tenant, oldest first: what a starting worker picks up."""

    @abstractmethod
    async def expired(self, now: float, limit: int = 100) -> list[Run]:
        """Running runs whose lease ended before ``now`` (their worker died), oldest lease first."""

    async def ping(self) -> None:
        """One cheap round trip to the backend; raises ``BackendError`` when it is down."""
        return None

    async def aclose(self) -> None:
        """Release connections."""
        return None
