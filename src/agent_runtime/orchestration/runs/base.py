"""The run registry seam: one record per in-flight run attempt, in the state backend.

A worker writes a record when an attempt starts and deletes it when the attempt ends (one write
each). Attempts that last longer than the heartbeat interval get their ``heartbeat_at`` refreshed
by one batched write per interval per process. A record whose heartbeat is older than the abandon
timeout belongs to a dead worker: ``claim_stale`` moves it, atomically, to the *abandoned* marks
(kept ``ABANDONED_RETENTION_S``), so that exactly one reaper handles it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Literal

from pydantic import BaseModel, Field

from agent_runtime.errors import BackendError
from agent_runtime.limits.quota.base import Bucket, Reservation

__all__ = ["ABANDONED_RETENTION_S", "RunRecord", "RunStatus", "RunStore"]

ABANDONED_RETENTION_S = 7 * 86_400
RunStatus = Literal["running", "abandoned"]


class RunRecord(BaseModel):
    """What a reaper needs to close a run whose worker died."""

    key: str
    """``<run_id>:<attempt>``: each attempt of a retried run is its own record."""
    run_id: str
    attempt: int = 1
    template: str
    tenant: str | None = None
    user: str | None = None
    session_id: str | None = None
    model: str | None = None
    worker: str = ""
    """``host:pid`` of the worker running it."""
    started_at: float
    heartbeat_at: float
    status: RunStatus = "running"
    reservation: dict[str, Any] | None = None
    """The quota reservation held by the attempt (see ``reservation_dict``)."""
    metadata: dict[str, Any] = Field(default_factory=dict)

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> RunRecord:
        try:
            return cls.model_validate_json(raw)
        except ValueError as exc:
            raise BackendError("corrupt run record in the run registry") from exc

    def quota_reservation(self) -> Reservation | None:
        raw = self.reservation
        if not raw:
            return None
        buckets = tuple(Bucket(**bucket) for bucket in raw["buckets"])
        return Reservation(raw["reservation_id"], buckets, int(raw["tokens"]), int(raw["usd_micros"]))


def reservation_dict(reservation: Reservation) -> dict[str, Any]:
    return asdict(reservation)


class RunStore(ABC):
    """Storage of run records for one backend (memory, SQLite, Redis)."""

    in_process: bool = False
    """True when calls never leave the process (and so never suspend)."""

    @abstractmethod
    async def start(self, record: RunRecord) -> None:
        """Store the record of an attempt that is starting (one write)."""

    @abstractmethod
    async def finish(self, key: str) -> None:
        """Drop the record of an attempt that ended (one write); a no-op if it was already reaped."""

    @abstractmethod
    async def heartbeat(self, keys: Sequence[str], now: float) -> None:
        """Set ``heartbeat_at = now`` on these running records, in one write."""

    @abstractmethod
    async def claim_stale(self, cutoff: float, now: float, limit: int = 100) -> list[RunRecord]:
        """Atomically mark at most ``limit`` running records with ``heartbeat_at < cutoff`` abandoned and
        return them; each stale record is returned by exactly one call, whoever else is reaping."""

    @abstractmethod
    async def get(self, key: str) -> RunRecord | None:
        """A running record, or an abandoned one (``status="abandoned"``) still within retention."""

    async def ping(self) -> None:
        """One cheap round trip to the backend; raises ``BackendError`` when it is down."""
        return None

    async def aclose(self) -> None:
        """Release connections."""
        return None
