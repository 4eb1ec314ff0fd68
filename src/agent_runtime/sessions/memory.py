"""In-process session store for tests and single-process development: nothing survives a restart."""

from __future__ import annotations

import time
from typing import Any

from agent_runtime.errors import ConflictError, QuotaExceededError
from agent_runtime.sessions.base import SessionStore
from agent_runtime.sessions.models import Session, decode_session, encode_session, try_decode_session
from agent_runtime.sessions.retention import DEFAULT_CHECKPOINT_HISTORY

__all__ = ["MemorySessionStore"]


class MemorySessionStore(SessionStore):
    """Sessions in dicts; records are kept encoded so corruption behaves as on the real backends."""

    name = "memory"

    def __init__(self) -> None:
        self._sessions: dict[str, bytes] = {}
        self._checkpoints: dict[str, bytes] = {}
        self._owners: dict[tuple[str, str], dict[str, float]] = {}
        self._leases: dict[str, tuple[str, float]] = {}

    def _index(self, session: Session) -> None:
        self._owners.setdefault((session.tenant, session.user_id), {})[session.key] = session.expires_ts

    def _unindex(self, key: str, tenant: str, user_id: str) -> None:
        owned = self._owners.get((tenant, user_id))
        if owned is not None:
            owned.pop(key, None)
            if not owned:
                del self._owners[(tenant, user_id)]

    def _drop(self, key: str) -> Session | None:
        raw = self._sessions.pop(key, None)
        self._checkpoints.pop(key, None)
        for (tenant, user_id), owned in list(self._owners.items()):
            if key in owned:
                self._unindex(key, tenant, user_id)
        return None if raw is None else try_decode_session(key, raw)

    async def create(self, session: Session, *, max_per_user: int | None) -> None:
        now = time.time()
        existing = self._sessions.get(session.key)
        if existing is not None:
            old = try_decode_session(session.key, existing)
            if old is None or not old.is_expired(now):
                raise ConflictError(f"session id {session.id} is already in use")
            self._drop(session.key)
        if max_per_user is not None:
            owned = self._owners.get((session.tenant, session.user_id), {})
            if sum(1 for exp in owned.values() if exp > now) >= max_per_user:
                raise QuotaExceededError(f"user already has the maximum of {max_per_user} sessions")
        self._sessions[session.key] = encode_session(session)
        self._index(session)

    async def get(self, key: str) -> Session | None:
        raw = self._sessions.get(key)
        return None if raw is None else decode_session(key, raw)

    async def get_with_checkpoint(self, key: str) -> tuple[Session | None, bytes | None]:
        return await self.get(key), self._checkpoints.get(key)

    async def update(self, session: Session) -> bool:
        if session.key not in self._sessions:
            return False
        self._sessions[session.key] = encode_session(session)
        self._index(session)
        return True

    async def put_checkpoint(self, key: str, data: bytes) -> bool:
        session = await self.get(key)
        if session is None or session.is_expired():
            return False
        self._checkpoints[key] = data
        return True

    async def delete(self, session: Session) -> bool:
        found = session.key in self._sessions
        self._drop(session.key)
        self._leases.pop(session.key, None)
        return found

    async def list_for_user(self, tenant: str, user_id: str, now: float) -> list[Session]:
        out: list[Session] = []
        for key, expires in self._owners.get((tenant, user_id), {}).items():
            raw = self._sessions.get(key)
            if expires > now and raw is not None and (session := try_decode_session(key, raw)) is not None:
                out.append(session)
        return sorted(out, key=lambda s: s.created_at, reverse=True)

    async def pop_expired(self, now: float) -> list[str]:
        expired = [key for owned in self._owners.values() for key, exp in owned.items() if exp <= now]
        for key in expired:
            self._drop(key)
        return expired

    async def acquire_lease(self, key: str, token: str, lease_s: float) -> bool:
        now = time.monotonic()
        held = self._leases.get(key)
        if held is not None and held[1] > now:
            return False
        self._leases[key] = (token, now + lease_s)
        return True

    async def lease_held(self, key: str) -> bool:
        held = self._leases.get(key)
        return held is not None and held[1] > time.monotonic()

    async def renew_lease(self, key: str, token: str, lease_s: float) -> bool:
        held = self._leases.get(key)
        if held is None or held[0] != token:
            return False
        self._leases[key] = (token, time.monotonic() + lease_s)
        return True

    async def release_lease(self, key: str, token: str) -> None:
        held = self._leases.get(key)
        if held is not None and held[0] == token:
            del self._leases[key]

    def make_checkpointer(self, history: int | None = DEFAULT_CHECKPOINT_HISTORY) -> Any:
        from agent_runtime.sessions.checkpoint_memory import BoundedInMemorySaver

        return BoundedInMemorySaver(history=history)

    async def aclose(self) -> None:
        return None
