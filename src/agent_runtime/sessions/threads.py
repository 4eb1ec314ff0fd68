"""Threads: sessions seen as LangGraph threads (the Agent Protocol's view), for every protocol's routes.

A thread *is* a session (``thread_id`` = session id): the same record, the same LangGraph checkpoints
(``thread_id`` = ``Session.key`` inside the checkpointer), so a conversation started through
``/v1/sessions`` continues through ``/threads`` and back. This module holds what is not HTTP shaping:
ownership lookups, status, metadata search, reading and updating states, history and copies.

A thread's graph is its session's template (or the template its metadata names as ``graph_id``): it
gives exact states (``next``, tasks, interrupts) and is what ``update_state`` writes through. A
thread without one (created bare, not run yet) is read straight from the checkpointer.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from langgraph.errors import InvalidUpdateError
from langgraph.types import StateSnapshot, StateUpdate

from agent_runtime.agents.assistants import assistant_id
from agent_runtime.errors import (
    AgentRuntimeError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    SessionNotFoundError,
    ValidationError,
)
from agent_runtime.sessions._thread_state import EMPTY_STATE, check_state_keys, raw_snapshot, waiting
from agent_runtime.sessions.manager import SessionManager
from agent_runtime.sessions.models import IMPLICIT_KEY, PENDING_RUN_KEY, RESERVED_METADATA, RUN_ERROR_KEY, Session
from agent_runtime.types import Principal

__all__ = [
    "CHECKPOINT_NS",
    "GRAPH_ID_KEY",
    "Owner",
    "ThreadFilter",
    "ThreadStatus",
    "ThreadView",
    "Threads",
    "check_client_metadata",
]

logger = logging.getLogger(__name__)

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
THREAD_STATUSES: tuple[ThreadStatus, ...] = ("idle", "busy", "interrupted", "error")
GRAPH_ID_KEY = "graph_id"
"""Thread metadata naming the template the thread runs (LangGraph's clients set it)."""
ASSISTANT_ID_KEY = "assistant_id"
CHECKPOINT_NS = ""
MAX_HISTORY = 1000
GraphResolver = Callable[[str], Any]
"""Template name -> its compiled graph bound to the sessions' checkpointer (``TemplateNotFoundError`` if none)."""


class Owner(NamedTuple):
    """Whose threads a caller may see: ``user_id=None`` for an admin (the whole tenant), whose own
    client-chosen ids are looked up in ``namespace``."""

    tenant: str
    user_id: str | None
    namespace: str

    @classmethod
    def of(cls, principal: Principal, *, admin: bool, user: str | None = None) -> Owner:
        """The ownership filter of ``principal``; ``user`` (admins only) names another user's namespace."""
        if user is not None and user != principal.user and not admin:
            raise PermissionDeniedError("another user's sessions need the admin scope")
        if admin:
            return cls(principal.tenant, None, user or principal.user)
        return cls(principal.tenant, principal.user, principal.user)

    def lookup(self) -> dict[str, Any]:
        """Keyword arguments of ``SessionManager.get_session`` / ``delete_session``."""
        return {"tenant": self.tenant, "user_id": self.user_id, "namespace": self.namespace}


@dataclass(frozen=True)
class ThreadFilter:
    """What ``Threads.search`` selects: metadata is a subset match, ``ids`` an allow-list."""

    metadata: Mapping[str, Any] | None = None
    ids: Sequence[str] | None = None
    status: ThreadStatus | None = None
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] = "created_at"
    descending: bool = True
    limit: int = 10
    offset: int = 0


@dataclass(frozen=True)
class ThreadView:
    """A thread at one moment: its session, its status and its latest state (``None``: never run)."""

    session: Session
    status: ThreadStatus
    state: StateSnapshot | None

    @property
    def metadata(self) -> dict[str, Any]:
        return client_metadata(self.session)


def client_metadata(session: Session) -> dict[str, Any]:
    """The session's metadata as a client sees it: the runtime's own keys left out, and, as LangGraph's
    server adds them, the ``graph_id`` and ``assistant_id`` of the template it runs (Agent Chat UI
    finds an assistant's threads by them)."""
    out = {k: v for k, v in session.metadata.items() if k not in RESERVED_METADATA}
    if session.template is not None:
        out.setdefault(GRAPH_ID_KEY, session.template)
        out.setdefault(ASSISTANT_ID_KEY, assistant_id(session.template))
    return out


def check_client_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Client metadata, refusing the keys the runtime keeps for itself."""
    reserved = sorted(set(metadata or {}) & RESERVED_METADATA)
    if reserved:
        raise ValidationError(f"metadata keys {reserved} are reserved by agent-runtime", details={"param": "metadata"})
    return dict(metadata or {})


class Threads:
    """Thread operations over a ``SessionManager`` and the factory's graphs.

    Args:
        sessions: the session manager (its store and checkpointer are the threads').
        graph_for: compiles (or returns the cached) graph of a template, bound to ``sessions.checkpointer``.
        is_template: whether a name is a registered template (without compiling it).
    """

    def __init__(self, sessions: SessionManager, graph_for: GraphResolver, is_template: Callable[[str], bool]) -> None:
        self.sessions = sessions
        self._graph_for = graph_for
        self._is_template = is_template

    # -- records -----------------------------------------------------------------------------------
    async def create(
        self,
        principal: Principal,
        *,
        thread_id: str | None,
        metadata: Mapping[str, Any] | None,
        if_exists: Literal["raise", "do_nothing"] = "raise",
        ttl_s: float | None = None,
        template: str | None = None,
        supersteps: Sequence[Sequence[tuple[Any, str]]] | None = None,
    ) -> Session:
        """A new thread of ``principal`` (``if_exists="do_nothing"``: its existing one of that id),
        seeded with ``supersteps`` (each a list of ``(values, as_node)`` updates) when given."""
        data = check_client_metadata(metadata)
        if template is None and isinstance(data.get(GRAPH_ID_KEY), str):
            template = self._known(data[GRAPH_ID_KEY])
        if supersteps and template is None:
            raise ConflictError(
                "supersteps need the thread's graph: give metadata graph_id (a template)",
                details={"param": "supersteps"},
            )
        try:
            session = await self.sessions.create_session(
                principal.user,
                tenant=principal.tenant,
                template=template,
                metadata=data,
                session_id=thread_id or str(uuid.uuid4()),  # LangGraph's thread ids are UUIDs
                ttl_s=ttl_s,
            )
        except ConflictError:
            if if_exists != "do_nothing" or thread_id is None:
                raise
            return await self.get(thread_id, Owner(principal.tenant, principal.user, principal.user))
        if supersteps:
            await self._seed(session, supersteps)
        return session

    async def _seed(self, session: Session, supersteps: Sequence[Sequence[tuple[Any, str]]]) -> None:
        """Apply ``supersteps`` as successive checkpoints (LangGraph's bulk update); on failure the
        thread is deleted again, so a refused request leaves nothing behind."""
        graph = self.graph(session)
        try:
            if graph is None:
                raise ValidationError(f"template {session.template!r} keeps no checkpoints: supersteps cannot apply")
            for step in supersteps:
                for values, _ in step:
                    check_state_keys(graph, values)
            steps = [[StateUpdate(values, as_node, None) for values, as_node in step] for step in supersteps]
            await graph.abulk_update_state(self.config(session), steps)
        except (ValidationError, InvalidUpdateError, ValueError, TypeError, KeyError, NotImplementedError) as exc:
            await self.sessions.delete_session(session.id, tenant=session.tenant, user_id=session.user_id)
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError(f"supersteps: {exc}", details={"param": "supersteps"}) from exc

    async def get(self, thread_id: str, owner: Owner) -> Session:
        return await self.sessions.get_session(thread_id, **owner.lookup())

    async def update(
        self, session: Session, *, metadata: Mapping[str, Any] | None, ttl_s: float | None = None
    ) -> Session:
        """Merge client metadata (a ``graph_id`` naming a template also binds the thread to it)."""
        data = check_client_metadata(metadata)
        updated = await self.sessions.update_session(session, metadata=data, ttl_s=ttl_s)
        graph = data.get(GRAPH_ID_KEY)
        if isinstance(graph, str) and updated.template is None and self._known(graph):
            updated = await self.bind_template(updated, graph)
        return updated

    async def bind_template(self, session: Session, template: str) -> Session:
        """Record which template runs the thread (runs call this, so its states are read through it)."""
        if session.template == template:
            return session
        return await self.sessions.update_session(session, template=template)

    async def mark_run(self, session: Session, error: str | None) -> Session:
        """Record the outcome of the thread's last run: an error message makes its status ``error``."""
        if session.metadata.get(RUN_ERROR_KEY) == error:
            return session
        return await self.sessions.update_session(session, metadata={RUN_ERROR_KEY: error})

    async def delete(self, thread_id: str, owner: Owner) -> None:
        await self.sessions.delete_session(thread_id, **owner.lookup())

    async def prune(self, owner: Owner, thread_ids: Sequence[str], strategy: Literal["delete", "keep_latest"]) -> int:
        """Delete the owner's threads among ``thread_ids``, or (``keep_latest``) drop all but their latest
        checkpoint; ids the owner does not have are skipped unseen. Returns how many were pruned."""
        pruned = 0
        for thread_id in dict.fromkeys(thread_ids):
            try:
                session = await self.get(thread_id, owner)
            except SessionNotFoundError:
                continue
            if strategy == "delete":
                await self.sessions.delete_session(session.id, tenant=session.tenant, user_id=session.user_id)
            else:
                await (await self.sessions.saver()).aprune([session.key], strategy="keep_latest", keep_last=1)
            pruned += 1
        return pruned

    async def copy(self, session: Session) -> Session:
        """A new thread of the same owner holding the same checkpoints (and metadata)."""
        from agent_runtime.sessions._thread_copy import copy_checkpoints

        clone = await self.sessions.create_session(
            session.user_id,
            tenant=session.tenant,
            template=session.template,
            metadata={k: v for k, v in session.metadata.items() if k not in RESERVED_METADATA},
            ttl_s=session.ttl_s,
        )
        await copy_checkpoints(await self.sessions.saver(), session.key, clone.key)
        return await self.sessions.record_run(
            clone.id, session.message_count, tenant=clone.tenant, user_id=clone.user_id
        )

    # -- views -------------------------------------------------------------------------------------
    async def view(self, session: Session) -> ThreadView:
        state = await self.state(session)
        return ThreadView(session, await self.status(session, state), state if state.config else None)

    async def status(self, session: Session, state: StateSnapshot | None) -> ThreadStatus:
        """``busy`` while a run holds the thread, ``interrupted`` while one awaits an answer, ``error``
        after a failed run, else ``idle``."""
        if await self.sessions.is_busy(session):
            return "busy"
        if session.metadata.get(PENDING_RUN_KEY) or (state is not None and (state.interrupts or waiting(state))):
            return "interrupted"
        if session.metadata.get(RUN_ERROR_KEY):
            return "error"
        return "idle"

    async def search(self, owner: Owner, query: ThreadFilter) -> list[ThreadView]:
        """The owner's threads matching ``query``, sorted and paginated. An admin searches his own
        threads (listing is per user; ``GET`` reaches any thread of the tenant)."""
        sessions = await self.sessions.list_sessions(owner.tenant, owner.namespace)
        wanted = set(query.ids) if query.ids is not None else None
        selected = [
            s
            for s in sessions
            if (wanted is None or s.id in wanted)
            and _matches(client_metadata(s), query.metadata or {})
            and not s.metadata.get(IMPLICIT_KEY)
        ]
        if query.status is None and query.sort_by != "status":
            selected.sort(key=lambda s: _sort_key(s, query.sort_by), reverse=query.descending)
            page = selected[query.offset : query.offset + query.limit]
            return [await self.view(s) for s in page]
        views = [await self.view(s) for s in selected]
        views = [v for v in views if query.status is None or v.status == query.status]
        views.sort(key=lambda v: v.status if query.sort_by == "status" else _sort_key(v.session, query.sort_by))
        if query.descending:
            views.reverse()
        return views[query.offset : query.offset + query.limit]

    # -- states ------------------------------------------------------------------------------------
    def graph(self, session: Session) -> Any:
        """The compiled graph of the thread, or ``None`` when it has none (or keeps no checkpoints)."""
        name = session.template or self._known(session.metadata.get(GRAPH_ID_KEY))
        if name is None:
            return None
        try:
            graph = self._graph_for(name)
        except AgentRuntimeError:  # removed since, or its model cannot be built here: read the saver
            logger.warning("thread %s: template %r has no usable graph; reading its checkpoints raw", session.id, name)
            return None
        return graph if getattr(graph, "checkpointer", None) is not None else None

    def config(self, session: Session, checkpoint_id: str | None = None, ns: str = CHECKPOINT_NS) -> dict[str, Any]:
        configurable = {"thread_id": session.key, "checkpoint_ns": ns}
        if checkpoint_id is not None:
            configurable["checkpoint_id"] = checkpoint_id
        return {"configurable": configurable}

    async def state(
        self, session: Session, checkpoint_id: str | None = None, *, subgraphs: bool = False
    ) -> StateSnapshot:
        """The thread's state at ``checkpoint_id`` (default: the latest); an empty snapshot (no
        ``config``) before the first checkpoint. ``NotFoundError`` for a checkpoint it does not hold."""
        config = self.config(session, checkpoint_id)
        found = await (await self.sessions.saver()).aget_tuple(config)
        if found is None:
            if checkpoint_id is not None:
                raise NotFoundError(f"checkpoint {checkpoint_id} not found in thread {session.id}")
            return EMPTY_STATE
        graph = self.graph(session)
        if graph is None:
            return raw_snapshot(found)
        snapshot: StateSnapshot = await graph.aget_state(config, subgraphs=subgraphs)
        return snapshot

    async def history(
        self,
        session: Session,
        *,
        limit: int = 10,
        before: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        checkpoint_id: str | None = None,
    ) -> list[StateSnapshot]:
        """The thread's states, newest first (``before``: older than that checkpoint)."""
        if not 1 <= limit <= MAX_HISTORY:
            raise ValidationError(f"limit must be between 1 and {MAX_HISTORY}", details={"param": "limit"})
        config = self.config(session, checkpoint_id)
        before_config = self.config(session, before) if before is not None else None
        filter_ = dict(metadata) if metadata else None
        graph = self.graph(session)
        if graph is not None:
            return [
                s async for s in graph.aget_state_history(config, filter=filter_, before=before_config, limit=limit)
            ]
        saver = await self.sessions.saver()
        return [raw_snapshot(t) async for t in saver.alist(config, filter=filter_, before=before_config, limit=limit)]

    async def update_state(
        self,
        session: Session,
        values: Any,
        *,
        as_node: str | None = None,
        checkpoint_id: str | None = None,
    ) -> dict[str, Any]:
        """Write ``values`` into the thread as if node ``as_node`` returned them (forking from
        ``checkpoint_id`` when given); returns the new checkpoint's ``configurable``."""
        graph = self.graph(session)
        if graph is None:
            raise ConflictError(
                f"thread {session.id} has no graph yet: run it once, or create it with metadata graph_id"
            )
        if as_node is not None and as_node not in graph.nodes:
            raise ValidationError(
                f"as_node {as_node!r} is not a node of graph {session.template!r}: choose from {sorted(graph.nodes)}",
                details={"param": "as_node"},
            )
        check_state_keys(graph, values)
        async with self.sessions.lock(session.id, tenant=session.tenant, user_id=session.user_id):
            try:
                config = await graph.aupdate_state(self.config(session, checkpoint_id), values, as_node=as_node)
            except AgentRuntimeError:
                raise
            except (InvalidUpdateError, ValueError, TypeError, KeyError, NotImplementedError) as exc:
                raise ValidationError(f"cannot update the state of thread {session.id}: {exc}") from exc
        configurable: dict[str, Any] = config["configurable"]
        return configurable

    def _known(self, name: Any) -> str | None:
        """``name`` when it is a template (of a graph this runtime can run), else ``None``."""
        return name if isinstance(name, str) and self._is_template(name) else None


def _matches(metadata: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return all(metadata.get(key) == value for key, value in wanted.items())


def _sort_key(session: Session, field: str) -> Any:
    return session.id if field == "thread_id" else getattr(session, field)
