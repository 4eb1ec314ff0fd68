"""The run queue: where background runs wait for a worker; one module per backend.

``build_run_queue(settings, store, consumer=...)`` picks the queue of ``settings.state_backend``:
memory and SQLite queue on the run store's pending records (``local``), Redis on a stream with a
consumer group (``redis``).
"""

from __future__ import annotations

from agent_runtime.errors import ConfigurationError
from agent_runtime.runs.base import RunRecordStore
from agent_runtime.runs.queue.base import Delivery, QueueFullError, RunQueue
from agent_runtime.runs.queue.fair import FairBuffer
from agent_runtime.runs.queue.local import LocalRunQueue
from agent_runtime.settings import Settings

__all__ = ["Delivery", "FairBuffer", "LocalRunQueue", "QueueFullError", "RunQueue", "build_run_queue"]


def build_run_queue(settings: Settings, store: RunRecordStore, *, consumer: str) -> RunQueue:
    """The run queue of ``settings.state_backend`` (``consumer``: this worker's name on it)."""
    runs = settings.runs
    backend = settings.state_backend
    if backend in ("memory", "sqlite"):
        return LocalRunQueue(store, max_queued=runs.max_queued_runs, scan_s=runs.scan_s)
    if backend == "redis":
        from agent_runtime.runs.queue.redis import RedisRunQueue

        return RedisRunQueue(
            settings.redis_url,
            settings.redis,
            consumer=consumer,
            max_queued=runs.max_queued_runs,
            lease_s=runs.lease_s,
            scan_s=runs.scan_s,
        )
    raise ConfigurationError(f"unknown state backend {backend!r}")
