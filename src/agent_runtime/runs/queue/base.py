"""The run queue seam: what a worker takes background runs from, one module per backend.

The run record (``RunRecordStore``) stays the truth about a run; the queue only says which runs to
look at, in which order. A delivery is therefore at-least-once: a worker claims the record with a
compare-and-set before executing it (``runs.lease.claim``), and a delivery whose run was cancelled,
finished or is held by a live worker is simply acknowledged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from agent_runtime.errors import ServiceUnavailableError
from agent_runtime.runs.record import Run

__all__ = ["Delivery", "QueueFullError", "RunQueue"]


class QueueFullError(ServiceUnavailableError):
    """The queue holds its bound of waiting runs: 503 with ``Retry-After``."""

    code = "queue_full"


@dataclass(frozen=True)
class Delivery:
    """One run handed to a worker."""

    run_id: str
    tenant: str
    token: str | None = None
    """The backend's handle of the entry (a Redis stream entry id), for ``ack`` / ``touch``."""


class RunQueue(ABC):
    """Queued background runs of one backend.

    Args:
        max_queued: runs waiting (not yet taken) before ``put`` raises ``QueueFullError``.
    """

    def __init__(self, *, max_queued: int = 1000) -> None:
        self.max_queued = max_queued

    @abstractmethod
    async def put(self, run: Run) -> None:
        """Queue a stored pending run; ``QueueFullError`` when ``max_queued`` runs wait already."""

    @abstractmethod
    async def take(self, limit: int, timeout_s: float) -> list[Delivery]:
        """Up to ``limit`` deliveries, waiting at most ``timeout_s`` for the first; includes the entries
        of workers that died holding them (redelivered once their lease has expired)."""

    @abstractmethod
    async def ack(self, delivery: Delivery) -> None:
        """The delivery's run is done with (finished, cancelled, or not ours to run): forget it."""

    async def touch(self, deliveries: Sequence[Delivery]) -> None:  # noqa: B027 - optional capability
        """Keep these deliveries ours (the heartbeat): no other worker takes them over meanwhile."""

    @abstractmethod
    async def release(self, deliveries: Sequence[Delivery]) -> None:
        """Hand deliveries back for any worker to take (this worker is stopping)."""

    @abstractmethod
    async def depth(self) -> int:
        """Runs waiting to be taken."""

    def _full(self) -> QueueFullError:
        return QueueFullError(
            f"the run queue is full ({self.max_queued} runs waiting)",
            retry_after=1.0,
            details={"queued": self.max_queued},
        )

    async def ping(self) -> None:
        """One cheap round trip to the backend; raises ``BackendError`` when it is down."""
        return None

    async def aclose(self) -> None:
        """Release connections."""
        return None
