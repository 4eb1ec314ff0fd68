"""The run registry seam: one record per in-flight run attempt, in the state backend.

Records are written in batches by ``RunTracker`` (see tracker.py: an attempt that ends within the
flush interval is never written at all) and deleted when the attempt ends. A record whose heartbeat
is older than the abandon timeout belongs to a dead (or stalled) worker: ``claim_stale`` moves it,
atomically, to the *abandoned* marks (kept ``ABANDONED_RETENTION_S``), stamped with what the reaper
does with its quota reservation, so that exactly one reaper handles it, and a worker that was only
stalled learns it from ``finish`` and settles just the difference.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Literal

from pydantic import BaseModel, Field

from agent_runtime.errors import BackendError
from agent_runtime.limits.quota.base import Bucket, Reservation

__all__ = ["ABANDONED_RETENTION_S", "ChargePolicy", "RunRecord", "RunStatus", "RunStore"]

ABANDONED_RETENTION_S = 7 * 86_400
RunStatus = Literal["running", "abandoned"]
ChargePolicy = Literal["reserved", "release"]
"""What a reaper does with an abandoned run's quota reservation: charge it in full, or drop it."""


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
    charge: ChargePolicy | None = None
    """Set when claimed: what the claiming reaper does with ``reservation``."""
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

    def reaper_charge(self) -> tuple[int, int]:
        """``(tokens, usd_micros)`` the claiming reaper charged for this attempt's reservation."""
        reservation = self.quota_reservation()
        if self.charge != "reserved" or reservation is None:
            return 0, 0
        return reservation.tokens, reservation.usd_micros


def reservation_dict(reservation: Reservation) -> dict[str, Any]:
    return asdict(reservation)


class RunStore(ABC):
    """Storage of run records for one backend (memory, SQLite, Redis)."""

    in_process: bool = False
    """True when calls never leave the process (and so never suspend)."""

    async def start(self, record: RunRecord) -> None:
        """Store the record of one attempt that is starting."""
        await self.start_many([record])

    @abstractmethod
    async def start_many(self, records: Sequence[RunRecord]) -> None:
        """Store the records of attempts that are running, in one write."""

    async def finish(self, key: str) -> RunRecord | None:
        """``finish_many`` of one key: the abandoned record if a reaper claimed it first, else ``None``."""
        return (await self.finish_many([key])).get(key)

    @abstractmethod
    async def finish_many(self, keys: Sequence[str]) -> dict[str, RunRecord]:
        """Drop the records of attempts that ended, in one write. Returns, atomically with the drop, the
        abandoned records of those a reaper claimed first (their worker was stalled), by key."""

    @abstractmethod
    async def heartbeat(self, keys: Sequence[str], now: float) -> None:
        """Set ``heartbeat_at = now`` on these running records, in one write."""

    @abstractmethod
    async def claim_stale(
        self, cutoff: float, now: float, limit: int = 100, *, charge: ChargePolicy = "reserved"
    ) -> list[RunRecord]:
        """Atomically mark at most ``limit`` running records with ``heartbeat_at < cutoff`` abandoned (with
        ``charge`` stamped on them) and return them; each stale record is returned by exactly one call,
        whoever else is reaping."""

    @abstractmethod
    async def get(self, key: str) -> RunRecord | None:
        """A running record, or an abandoned one (``status="abandoned"``) still within retention."""

    async def ping(self) -> None:
        """One cheap round trip to the backend; raises ``BackendError`` when it is down."""
        return None

    async def aclose(self) -> None:
        """Release connections."""
        return None
