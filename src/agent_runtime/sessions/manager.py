"""``SessionManager``: the seed's session API over any ``SessionStore``, plus the LangGraph checkpointer.

Policy lives here, once for every backend: ownership (someone else's session is reported as not
found, never as forbidden, so ids do not leak), sliding TTLs, the per-user session limit, the
checkpoint size limit and the busy policy of the per-session run lock.

Session ids are unique per tenant (two tenants may both name a session ``support``), and stored
under ``Session.key`` = ``tenant/id``. A user who chooses an id another user of the tenant already
holds is not refused (that would tell him the id is in use): his session is stored in his own
namespace instead (``Session.per_user``). So a lookup by ``(tenant, session_id, user)`` tries the
user's namespace, then the tenant's; a lookup without a user (an admin's, or a trusted caller's)
tries ``namespace``'s when given, then the tenant's. Existing keys never change.

Conversation state is LangGraph's: the executor compiles agents with ``manager.checkpointer`` and
runs them with ``thread_id = session.key``, so the next run in the session sees the messages of
the previous ones. ``get_messages`` reads them back from the latest checkpoint. The history
length policy is ``HistoryLimitMiddleware`` (see ``history.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

from agent_runtime.errors import ConflictError, SessionNotFoundError, ValidationError
from agent_runtime.sessions.base import BusyPolicy, SessionLocks, SessionStore
from agent_runtime.sessions.models import (
    MAX_CHOSEN_ID,
    ResumedSession,
    Session,
    check_id,
    decode_checkpoint,
    encode_checkpoint,
    from_ts,
    now_ts,
    session_key,
    split_session_key,
)
from agent_runtime.sessions.retention import DEFAULT_CHECKPOINT_HISTORY
from agent_runtime.settings import Settings
from agent_runtime.types import new_id

__all__ = ["SessionManager", "build_session_manager", "message_to_dict"]


class SessionManager:
    """Create, find, resume, lock and expire sessions on one backend.

    Args:
        store: the backend (memory, SQLite or Redis store).
        ttl_s: default lifetime; each recorded run slides the expiry to now + the session's TTL.
        max_sessions_per_user: live sessions one (tenant, user) may hold; ``None`` for no limit.
        max_checkpoint_bytes: largest JSON checkpoint ``save_checkpoint`` accepts.
        lock_timeout_s: how long ``lock`` waits for a busy session under ``busy_policy="wait"``.
        lock_lease_s: how long a lock outlives a crashed holder (renewed while the holder lives).
        busy_policy: ``"wait"`` (bounded by ``lock_timeout_s``) or ``"fail"`` at once; both end in
            ``SessionBusyError`` when the session stays busy.
        on_event: called as ``on_event("session.created" | "session.expired", data)`` (the event bus
            hook); best effort: its failures are swallowed, never the session operation's.
        checkpoint_history: LangGraph checkpoints kept per session thread besides the latest
            (``None``: all; see ``retention.py``).
        clock: wall-clock seconds for creation times, expiries and the sweep; injectable for tests.
            The stores' own safety checks and Redis key expiry follow the real clock.
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        ttl_s: float = 7 * 24 * 3600,
        max_sessions_per_user: int | None = 1000,
        max_checkpoint_bytes: int = 1_000_000,
        lock_timeout_s: float = 30.0,
        lock_lease_s: float = 30.0,
        busy_policy: BusyPolicy = "wait",
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        checkpoint_history: int | None = DEFAULT_CHECKPOINT_HISTORY,
        clock: Callable[[], float] = now_ts,
    ) -> None:
        if ttl_s <= 0 or lock_lease_s <= 0 or lock_timeout_s < 0:
            raise ValidationError("ttl_s and lock_lease_s must be positive, lock_timeout_s non-negative")
        if busy_policy not in ("wait", "fail"):
            raise ValidationError(f"busy_policy must be 'wait' or 'fail', not {busy_policy!r}")
        if checkpoint_history is not None and checkpoint_history < 0:
            raise ValidationError("checkpoint_history must be non-negative (or None to keep every checkpoint)")
        self.store = store
        self.ttl_s = ttl_s
        self.max_sessions_per_user = max_sessions_per_user
        self.max_checkpoint_bytes = max_checkpoint_bytes
        self.busy_policy = busy_policy
        self._locks = SessionLocks(store, timeout_s=lock_timeout_s, lease_s=lock_lease_s, policy=busy_policy)
        self.checkpoint_history = checkpoint_history
        self.clock = clock
        self._checkpointer: Any = None
        self._checkpointer_ready = False
        self.on_event = on_event

    def _emit(self, type: str, data: dict[str, Any]) -> None:
        if self.on_event is not None:
            with contextlib.suppress(Exception):  # events are best effort: never fail a session operation
                self.on_event(type, data)

    @property
    def backend(self) -> str:
        return self.store.name

    @property
    def checkpointer(self) -> Any:
        """The LangGraph ``BaseCheckpointSaver`` of this backend (created on first use, inside the loop)."""
        if self._checkpointer is None:
            self._checkpointer = self.store.make_checkpointer(self.checkpoint_history)
        return self._checkpointer

    async def _saver(self) -> Any:
        saver = self.checkpointer
        if not self._checkpointer_ready:
            await self.store.open_checkpointer(saver)
            self._checkpointer_ready = True
        return saver

    async def saver(self) -> Any:
        """The checkpointer, set up (tables, connections) on first use: for reading a thread's states."""
        return await self._saver()

    async def is_busy(self, session: Session) -> bool:
        """Whether a run holds the session's run lock (in this worker or any other): a thread's ``busy``."""
        return await self._locks.held(_keys(session.tenant, session.id, session.user_id)[0])

    async def update_session(
        self,
        session: Session,
        *,
        metadata: dict[str, Any] | None = None,
        ttl_s: float | None = None,
        template: str | None = None,
    ) -> Session:
        """Merge ``metadata`` into the session's (a ``None`` value removes its key), with ``ttl_s`` give
        it a new lifetime, with ``template`` bind it to a template; either way its expiry slides forward."""
        if ttl_s is not None and ttl_s <= 0:
            raise ValidationError("ttl_s must be positive")
        merged = {k: v for k, v in {**session.metadata, **(metadata or {})}.items() if v is not None}
        changes: dict[str, Any] = {"metadata": merged}
        if template is not None:
            changes["template"] = template
        return await self._save(session, ttl_s=ttl_s, **changes)

    async def create_session(
        self,
        user_id: str,
        *,
        tenant: str = "default",
        template: str | None = None,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
        ttl_s: float | None = None,
    ) -> Session:
        """Start a session for ``user_id`` (a fresh random id unless ``session_id`` is given).

        Raises:
            ValidationError: malformed id, tenant or user.
            ConflictError: ``session_id`` is already in use.
            QuotaExceededError: the user holds ``max_sessions_per_user`` live sessions.
        """
        check_id(user_id, "user id")
        check_id(tenant, "tenant")
        sid = new_id("ses") if session_id is None else check_id(session_id)
        ttl = self.ttl_s if ttl_s is None else ttl_s
        if ttl <= 0:
            raise ValidationError("ttl_s must be positive")
        now = from_ts(self.clock())
        session = Session(
            id=sid,
            tenant=tenant,
            user_id=user_id,
            template=template,
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(seconds=ttl),
            ttl_s=ttl,
            metadata=dict(metadata or {}),
        )
        if session_id is None:
            await self.store.create(session, max_per_user=self.max_sessions_per_user)
        else:
            session = await self._claim(session)
            # a chosen id may name an expired, not yet swept session: its old conversation must not leak in
            await (await self._saver()).adelete_thread(session.key)
        self._emit("session.created", {"session_id": sid, "tenant": tenant, "user": user_id, "template": template})
        return session

    async def _claim(self, session: Session) -> Session:
        """Store a session of a chosen id under its tenant's key, or, when another user of the tenant
        holds that id, under its user's: either way the caller gets a session, so the id's use by
        someone else shows nowhere. Only the caller's own session of that id is a conflict."""
        if len(session.id) > MAX_CHOSEN_ID:
            raise ValidationError(f"a chosen session id must be at most {MAX_CHOSEN_ID} characters")
        own = session.model_copy(update={"per_user": True})
        if _visible(await self.store.get(own.key), session.id, session.tenant, session.user_id, self.clock()):
            raise ConflictError(f"session id {session.id} is already in use")
        try:
            await self.store.create(session, max_per_user=self.max_sessions_per_user)
            return session
        except ConflictError:
            holder = await self.store.get(session.key)
            if holder is not None and holder.user_id == session.user_id:
                raise
        await self.store.create(own, max_per_user=self.max_sessions_per_user)
        return own

    async def get_session(
        self, session_id: str, *, tenant: str = "default", user_id: str | None = None, namespace: str | None = None
    ) -> Session:
        """The live session; ``SessionNotFoundError`` if missing, expired or owned by another user.
        ``namespace``: whose client-chosen ids to look in when ``user_id`` is ``None`` (an admin's)."""
        for key in _keys(tenant, session_id, user_id or namespace):
            session = await self.store.get(key)
            if _visible(session, session_id, tenant, user_id, self.clock()):
                assert session is not None
                return session
        raise SessionNotFoundError(f"session {session_id} not found")

    async def save_checkpoint(
        self, session_id: str, data: dict[str, Any], *, tenant: str = "default", user_id: str | None = None
    ) -> None:
        """Store ``data`` (a JSON object) as the session's checkpoint, replacing the previous one.

        Raises:
            InputTooLargeError: the encoded data exceeds ``max_checkpoint_bytes``.
            SessionNotFoundError: no such live session for this owner.
        """
        raw = encode_checkpoint(session_id, data, self.max_checkpoint_bytes)
        session = await self.get_session(session_id, tenant=tenant, user_id=user_id)
        if not await self.store.put_checkpoint(session.key, raw):
            raise SessionNotFoundError(f"session {session_id} not found")

    async def resume_session(
        self, session_id: str, *, tenant: str = "default", user_id: str | None = None
    ) -> ResumedSession:
        """The session and its last saved checkpoint (``None`` if never saved)."""
        for key in _keys(tenant, session_id, user_id):
            session, raw = await self.store.get_with_checkpoint(key)
            if _visible(session, session_id, tenant, user_id, self.clock()):
                assert session is not None
                return ResumedSession(session, decode_checkpoint(session_id, raw))
        raise SessionNotFoundError(f"session {session_id} not found")

    async def list_sessions(self, tenant: str, user_id: str) -> list[Session]:
        """Live sessions of one owner, newest first."""
        return await self.store.list_for_user(check_id(tenant, "tenant"), check_id(user_id, "user id"), self.clock())

    async def delete_session(
        self, session_id: str, *, tenant: str = "default", user_id: str | None = None, namespace: str | None = None
    ) -> None:
        """Delete the session, its checkpoint and its LangGraph thread."""
        session = await self.get_session(session_id, tenant=tenant, user_id=user_id, namespace=namespace)
        await self.store.delete(session)
        await (await self._saver()).adelete_thread(session.key)

    async def touch(
        self, session_id: str, ttl_s: float | None = None, *, tenant: str = "default", user_id: str | None = None
    ) -> Session:
        """Extend the session to expire ``ttl_s`` (default: its own TTL) from now."""
        session = await self.get_session(session_id, tenant=tenant, user_id=user_id)
        ttl = session.ttl_s if ttl_s is None else ttl_s
        if ttl <= 0:
            raise ValidationError("ttl_s must be positive")
        return await self._save(session, ttl_s=ttl)

    async def record_run(
        self,
        session_id: str,
        message_count: int | None = None,
        *,
        added: int = 0,
        tenant: str = "default",
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Session:
        """Note a finished run: the conversation's message count (given, or grown by ``added``), updated
        time, expiry slid forward, and ``metadata`` merged in (a ``None`` value removes its key). Call it
        while holding the session's lock when using ``added``."""
        if (message_count is not None and message_count < 0) or added < 0:
            raise ValidationError("message counts must be non-negative")
        session = await self.get_session(session_id, tenant=tenant, user_id=user_id)
        total = message_count if message_count is not None else session.message_count + added
        if not metadata:
            return await self._save(session, message_count=total)
        merged = {k: v for k, v in {**session.metadata, **metadata}.items() if v is not None}
        return await self._save(session, message_count=total, metadata=merged)

    async def _save(self, session: Session, *, ttl_s: float | None = None, **changes: Any) -> Session:
        now = from_ts(self.clock())
        ttl = session.ttl_s if ttl_s is None else ttl_s
        updated = session.model_copy(
            update={"updated_at": now, "expires_at": now + timedelta(seconds=ttl), "ttl_s": ttl, **changes}
        )
        if not await self.store.update(updated):
            raise SessionNotFoundError(f"session {session.id} not found")
        return updated

    async def cleanup_expired(self) -> int:
        """Remove every expired session (record, checkpoint, index entries, LangGraph thread)."""
        removed = await self.store.pop_expired(self.clock())
        for key in removed:
            await (await self._saver()).adelete_thread(key)
            tenant, session_id = split_session_key(key)
            self._emit("session.expired", {"session_id": session_id, "tenant": tenant})
        return len(removed)

    @contextlib.asynccontextmanager
    async def lock(
        self, session_id: str, *, tenant: str = "default", user_id: str | None = None
    ) -> AsyncIterator[None]:
        """Hold the session's run lock, so two runs never interleave their messages (runs by its owner
        pass ``user_id``: another user's session of the same id is another lock).

        Raises:
            SessionBusyError: busy past ``lock_timeout_s`` ("wait") or busy at all ("fail").
        """
        async with self._locks.hold(_keys(tenant, session_id, user_id)[0]):
            yield

    async def open_for_run(
        self,
        session_id: str,
        *,
        tenant: str,
        user_id: str,
        template: str | None = None,
        create_missing: bool = False,
    ) -> Session:
        """The session a run will use: ownership-checked, created with this id when asked to. A session
        without a template is bound to the run's (so its thread states are read through that graph)."""
        try:
            session = await self.get_session(session_id, tenant=tenant, user_id=user_id)
        except SessionNotFoundError:
            if not create_missing:
                raise
        else:
            if session.template is None and template is not None:
                session = await self.update_session(session, template=template)
            return session
        try:
            return await self.create_session(user_id, tenant=tenant, template=template, session_id=session_id)
        except ConflictError:
            # created concurrently by the same owner (fine), or the id belongs to someone else (not found)
            return await self.get_session(session_id, tenant=tenant, user_id=user_id)

    async def get_messages(
        self, session_id: str, *, tenant: str = "default", user_id: str | None = None, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """The conversation so far, from the latest LangGraph checkpoint, as ``{role, content}`` dicts."""
        session = await self.get_session(session_id, tenant=tenant, user_id=user_id, namespace=namespace)
        config = {"configurable": {"thread_id": session.key, "checkpoint_ns": ""}}
        found = await (await self._saver()).aget_tuple(config)
        if found is None:
            return []
        return [message_to_dict(m) for m in found.checkpoint["channel_values"].get("messages", [])]

    async def ping(self) -> None:
        """Raise ``BackendError`` if the backend is unreachable."""
        await self.store.ping()

    async def aclose(self) -> None:
        if self._checkpointer is not None:
            saver, self._checkpointer = self._checkpointer, None
            self._checkpointer_ready = False
            await self.store.close_checkpointer(saver)
        await self.store.aclose()


def _keys(tenant: str, session_id: str, user: str | None) -> list[str]:
    """Where a session may be stored, most specific first: the user's namespace, then the tenant's."""
    tenant, session_id = check_id(tenant, "tenant"), check_id(session_id)
    shared = session_key(tenant, session_id)
    if user is None or len(session_id) > MAX_CHOSEN_ID:
        return [shared]
    return [session_key(tenant, session_id, check_id(user, "user id")), shared]


def _visible(session: Session | None, session_id: str, tenant: str, user_id: str | None, now: float) -> bool:
    """Live at ``now``, owned by ``user_id`` (when given), and the session asked for (a legacy id could
    spell a per-user key)."""
    if session is None or session.id != session_id or session.is_expired(now):
        return False
    return session.owned_by(tenant, user_id)


_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def message_to_dict(message: Any) -> dict[str, Any]:
    """A LangChain message as ``{role, content}`` (plus tool calls / tool call id when present)."""
    role = _ROLES.get(getattr(message, "type", ""), str(getattr(message, "type", "unknown")))
    text = getattr(message, "text", None)
    content = text if isinstance(text, str) else str(getattr(message, "content", ""))
    out: dict[str, Any] = {"role": role, "content": content}
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        out["tool_calls"] = [{"id": c.get("id"), "name": c["name"], "args": c.get("args", {})} for c in tool_calls]
    if role == "tool" and getattr(message, "tool_call_id", None):
        out["tool_call_id"] = message.tool_call_id
    return out


def build_session_manager(settings: Settings) -> SessionManager:
    """The manager on the sessions backend of ``settings`` (see ``agent_runtime.backends``)."""
    from agent_runtime.backends import build

    store: SessionStore = build("sessions", settings)
    limits = settings.limits
    return SessionManager(
        store,
        ttl_s=limits.session_ttl_s,
        max_sessions_per_user=limits.max_sessions_per_user,
        max_checkpoint_bytes=limits.max_request_bytes,
        lock_timeout_s=limits.session_lock_timeout_s,
        lock_lease_s=limits.session_lease_s,
        busy_policy=limits.session_busy_policy,
        checkpoint_history=settings.sessions.checkpoint_history,
    )
