"""The small interface every session backend implements, and the run lock built on it.

A backend stores records and leases; policy (ownership, TTLs, limits, busy handling) lives in
``SessionManager`` so the three backends cannot drift apart.

The per-session run lock has two layers: an in-process ``asyncio.Lock`` (so coroutines of one
worker queue without polling) and a backend *lease* with an expiry (so workers in other
processes are excluded too, and a worker that crashed while holding it stops blocking the
session after ``lease_s``). A held lease is renewed in the background while the run lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any, Literal

from agent_runtime.errors import SessionBusyError
from agent_runtime.sessions.models import Session
from agent_runtime.sessions.retention import DEFAULT_CHECKPOINT_HISTORY

__all__ = ["BusyPolicy", "SessionLocks", "SessionStore"]

logger = logging.getLogger(__name__)

BusyPolicy = Literal["wait", "fail"]


class SessionStore(ABC):
    """Storage of sessions, their JSON checkpoints and run-lock leases for one backend."""

    name: str = "abstract"

    @abstractmethod
    async def create(self, session: Session, *, max_per_user: int | None) -> None:
        """Store a new session.

        Raises:
            ConflictError: a live session with this id exists.
            QuotaExceededError: the owner already has ``max_per_user`` live sessions.
        """

    @abstractmethod
    async def get(self, key: str) -> Session | None:
        """The stored session (possibly expired but not yet cleaned), or ``None``."""

    @abstractmethod
    async def get_with_checkpoint(self, key: str) -> tuple[Session | None, bytes | None]:
        """Session and raw checkpoint together (one round trip where the backend allows)."""

    @abstractmethod
    async def update(self, session: Session) -> bool:
        """Overwrite an existing session (new expiry re-indexed); ``False`` if it is gone."""

    @abstractmethod
    async def put_checkpoint(self, key: str, data: bytes) -> bool:
        """Replace the session's checkpoint; ``False`` if the session does not exist or has expired."""

    @abstractmethod
    async def delete(self, session: Session) -> bool:
        """Remove the session, its checkpoint and index entries."""

    @abstractmethod
    async def list_for_user(self, tenant: str, user_id: str, now: float) -> list[Session]:
        """Live sessions of one owner, newest first; unreadable records are skipped and logged."""

    @abstractmethod
    async def pop_expired(self, now: float) -> list[str]:
        """Delete every session whose expiry is ``<= now`` and return their keys (each once)."""

    @abstractmethod
    async def acquire_lease(self, key: str, token: str, lease_s: float) -> bool:
        """Take the run lease if free or expired."""

    @abstractmethod
    async def renew_lease(self, key: str, token: str, lease_s: float) -> bool:
        """Extend a lease this token still holds."""

    @abstractmethod
    async def release_lease(self, key: str, token: str) -> None:
        """Drop the lease only if this token still holds it."""

    async def lease_held(self, key: str) -> bool:
        """Whether a live run lease is held on ``key`` (by any worker): a thread's ``busy`` status."""
        raise NotImplementedError(f"the {self.name} session store cannot tell whether a run lease is held")

    @abstractmethod
    def make_checkpointer(self, history: int | None = DEFAULT_CHECKPOINT_HISTORY) -> Any:
        """The LangGraph ``BaseCheckpointSaver`` for this backend (call inside the event loop), keeping
        each thread's latest checkpoint plus ``history`` earlier ones (``None``: all; see ``retention.py``)."""

    async def open_checkpointer(self, saver: Any) -> None:  # noqa: B027 - optional hook
        """Finish setting up what ``make_checkpointer`` made (tables, connections)."""

    async def close_checkpointer(self, saver: Any) -> None:  # noqa: B027 - optional hook
        """Release what ``make_checkpointer`` opened."""

    async def ping(self) -> None:  # noqa: B027 - optional hook
        """Raise ``BackendError`` when the backend is unreachable (for readiness checks)."""

    @abstractmethod
    async def aclose(self) -> None: ...


class SessionLocks:
    """Per-session run locks over a store's leases, with a wait-or-fail busy policy."""

    def __init__(
        self,
        store: SessionStore,
        *,
        timeout_s: float,
        lease_s: float,
        policy: BusyPolicy,
        poll_s: float = 0.01,
    ) -> None:
        self._store = store
        self._timeout_s = timeout_s
        self._lease_s = lease_s
        self._policy = policy
        self._poll_s = poll_s
        self._local: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _local_lock(self, session_id: str) -> asyncio.Lock:
        lock = self._local.get(session_id)
        if lock is None:
            lock = asyncio.Lock()
            self._local[session_id] = lock
        return lock

    async def held(self, session_id: str) -> bool:
        """Whether a run holds (or is queued for) the lock of ``session_id``, here or in another worker."""
        local = self._local.get(session_id)
        if local is not None and local.locked():
            return True
        try:
            return await self._store.lease_held(session_id)
        except NotImplementedError:
            return False  # a store without the check: only this process's runs are seen

    @contextlib.asynccontextmanager
    async def hold(self, session_id: str) -> AsyncIterator[None]:
        """Hold the run lock of ``session_id`` for the body of the ``async with``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self._timeout_s if self._policy == "wait" else 0.0)
        local = self._local_lock(session_id)
        if self._policy == "fail" and local.locked():
            raise SessionBusyError(f"session {session_id} is busy with another run")
        try:
            async with asyncio.timeout_at(deadline if self._policy == "wait" else None):
                await local.acquire()
        except TimeoutError:
            raise SessionBusyError(f"session {session_id} is busy: lock not free within {self._timeout_s}s") from None
        try:
            token = uuid.uuid4().hex
            await self._acquire_lease(session_id, token, deadline)
            renewer = asyncio.create_task(self._renew(session_id, token))
            try:
                yield
            finally:
                renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewer
                await self._release(session_id, token)
        finally:
            local.release()

    async def _acquire_lease(self, session_id: str, token: str, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        delay = self._poll_s
        while not await self._store.acquire_lease(session_id, token, self._lease_s):
            remaining = deadline - loop.time()
            if self._policy == "fail" or remaining <= 0:
                raise SessionBusyError(f"session {session_id} is busy with a run in another worker")
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.2)

    async def _renew(self, session_id: str, token: str) -> None:
        interval = max(self._lease_s / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self._store.renew_lease(session_id, token, self._lease_s):
                    logger.warning("run lease of session %s was lost (expired or taken over)", session_id)
                    return
            except Exception:  # a transient backend error must not kill the run; the lease may still hold
                logger.warning("could not renew run lease of session %s", session_id, exc_info=True)

    async def _release(self, session_id: str, token: str) -> None:
        try:
            await self._store.release_lease(session_id, token)
        except Exception:  # the lease expires on its own; never mask the run's own outcome
            logger.warning("could not release run lease of session %s; it expires by itself", session_id)
