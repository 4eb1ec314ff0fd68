"""In-process session store for tests and single-process development: nothing survives a restart."""

from __future__ import annotations

import time
from typing import Any

from agent_runtime.errors import ConflictError, QuotaExceededError
from agent_runtime.sessions.base import SessionStore
from agent_runtime.sessions.models import Session, decode_session, encode_session, try_decode_session

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
        self._owners.setdefault((session.tenant, session.user_id), {})[session.id] = session.expires_ts

    def _unindex(self, session_id: str, tenant: str, user_id: str) -> None:
        owned = self._owners.get((tenant, user_id))
        if owned is not None:
            owned.pop(session_id, None)
            if not owned:
                del self._owners[(tenant, user_id)]

    def _drop(self, session_id: str) -> Session | None:
        raw = self._sessions.pop(session_id, None)
        self._checkpoints.pop(session_id, None)
        for (tenant, user_id), owned in list(self._owners.items()):
            if session_id in owned:
                self._unindex(session_id, tenant, user_id)
        return None if raw is None else try_decode_session(session_id, raw)

    async def create(self, session: Session, *, max_per_user: int | None) -> None:
        now = time.time()
        existing = self._sessions.get(session.id)
        if existing is not None:
            old = try_decode_session(session.id, existing)
            if old is None or not old.is_expired(now):
                raise ConflictError(f"session id {session.id} is already in use")
            self._drop(session.id)
        if max_per_user is not None:
            owned = self._owners.get((session.tenant, session.user_id), {})
            if sum(1 for exp in owned.values() if exp > now) >= max_per_user:
                raise QuotaExceededError(f"user already has the maximum of {max_per_user} sessions")
        self._sessions[session.id] = encode_session(session)
        self._index(session)

    async def get(self, session_id: str) -> Session | None:
        raw = self._sessions.get(session_id)
        return None if raw is None else decode_session(session_id, raw)

    async def get_with_checkpoint(self, session_id: str) -> tuple[Session | None, bytes | None]:
        return await self.get(session_id), self._checkpoints.get(session_id)

    async def update(self, session: Session) -> bool:
        if session.id not in self._sessions:
            return False
        self._sessions[session.id] = encode_session(session)
        self._index(session)
        return True

    async def put_checkpoint(self, session_id: str, data: bytes) -> bool:
        if session_id not in self._sessions:
            return False
        self._checkpoints[session_id] = data
        return True

    async def delete(self, session: Session) -> bool:
        found = session.id in self._sessions
        self._drop(session.id)
        self._leases.pop(session.id, None)
        return found

    async def list_for_user(self, tenant: str, user_id: str, now: float) -> list[Session]:
        out: list[Session] = []
        for session_id, expires in self._owners.get((tenant, user_id), {}).items():
            raw = self._sessions.get(session_id)
            if expires > now and raw is not None and (session := try_decode_session(session_id, raw)) is not None:
                out.append(session)
        return sorted(out, key=lambda s: s.created_at, reverse=True)

    async def pop_expired(self, now: float) -> list[str]:
        expired = [sid for owned in self._owners.values() for sid, exp in owned.items() if exp <= now]
        for session_id in expired:
            self._drop(session_id)
        return expired

    async def acquire_lease(self, session_id: str, token: str, lease_s: float) -> bool:
        now = time.monotonic()
        held = self._leases.get(session_id)
        if held is not None and held[1] > now:
            return False
        self._leases[session_id] = (token, now + lease_s)
        return True

    async def renew_lease(self, session_id: str, token: str, lease_s: float) -> bool:
        held = self._leases.get(session_id)
        if held is None or held[0] != token:
            return False
        self._leases[session_id] = (token, time.monotonic() + lease_s)
        return True

    async def release_lease(self, session_id: str, token: str) -> None:
        held = self._leases.get(session_id)
        if held is not None and held[0] == token:
            del self._leases[session_id]

    def make_checkpointer(self) -> Any:
        from langgraph.checkpoint.memory import InMemorySaver

        return InMemorySaver()

    async def aclose(self) -> None:
        return None
