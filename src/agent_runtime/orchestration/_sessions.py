"""Which session a run uses, and the context that resumes a paused one (the executor's session side)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent_runtime.errors import AuthenticationError, ConflictError, SessionNotFoundError
from agent_runtime.orchestration.middleware.base import AgentMiddleware
from agent_runtime.sessions.models import PENDING_RUN_KEY
from agent_runtime.types import AgentContext, Principal
from agent_runtime.workflows.approval import RESUME_KEY, Decisions, ResumeRequest, decision_kinds

if TYPE_CHECKING:
    from agent_runtime.agents.templates import AgentTemplate
    from agent_runtime.sessions.manager import SessionManager
    from agent_runtime.sessions.models import Session

__all__ = [
    "PENDING_KEY",
    "check_no_pending_run",
    "open_run_session",
    "pending_after",
    "resume_context",
    "roll_back_turn",
]

log = logging.getLogger("agent_runtime.sessions")

PENDING_KEY = PENDING_RUN_KEY


async def open_run_session(
    sessions: SessionManager, context: AgentContext, template: AgentTemplate, *, approval_ttl_s: float
) -> Session:
    """The run's session; a run that may pause for approval but names none gets an implicit session
    whose id is the run id (so it can be resumed by run id), living ``approval_ttl_s``; it is deleted
    when the run completes."""
    tenant, user = context.tenant or "default", context.user or "local"
    if context.session_id is not None:
        return await sessions.open_for_run(
            context.session_id,
            tenant=tenant,
            user_id=user,
            template=template.name,
            create_missing=bool(context.metadata.get("create_session", False)),
        )
    context.session_id = context.run_id
    try:
        return await sessions.create_session(
            user,
            tenant=tenant,
            template=template.name,
            session_id=context.run_id,
            metadata={"implicit": True},
            ttl_s=approval_ttl_s,
        )
    except ConflictError:  # a retry of the same run
        return await sessions.get_session(context.run_id, tenant=tenant, user_id=user)


def check_no_pending_run(session: Session, context: AgentContext) -> None:
    """A new run in a session whose last run awaits approval would orphan that run's tool calls (a
    hosted model then rejects the conversation): it must be answered first."""
    pending = session.metadata.get(PENDING_KEY)
    if pending and RESUME_KEY not in context.metadata:
        run_id = pending.get("run_id") if isinstance(pending, dict) else None
        raise ConflictError(
            f"session {session.id} has a run waiting for approval ({run_id}): resume it with approve, edit or "
            "reject before starting another run",
            details={"session_id": session.id, "pending_run_id": run_id},
        )


def pending_after(session: Session, context: AgentContext, status: str) -> dict[str, object] | None:
    """The session metadata change a finished run makes: mark a pause, clear an answered one."""
    if status == "interrupted":
        return {PENDING_KEY: {"run_id": context.run_id, "template": context.template}}
    return {PENDING_KEY: None} if session.metadata.get(PENDING_KEY) else None


async def resume_context(
    sessions: SessionManager,
    middlewares: Sequence[AgentMiddleware],
    run_or_session_id: str,
    decisions: Decisions,
    principal: Principal | None,
    credentials: str | None,
    request_id: str | None,
) -> AgentContext:
    """The context of the run that answers a paused one, owned by ``principal`` (or ``credentials``)."""
    if principal is None and credentials is not None:
        # the session id is only unique within its tenant: know whose it is before looking it up
        principal, credentials = await _authenticate(middlewares, credentials), None
    owner = {"tenant": principal.tenant, "user_id": principal.user} if principal is not None else {}
    try:
        session = await sessions.get_session(run_or_session_id, **owner)
    except SessionNotFoundError:
        raise SessionNotFoundError(
            f"no paused run or session {run_or_session_id!r}: unknown, already answered, or its approval expired"
        ) from None
    pending = session.metadata.get(PENDING_KEY)
    template = pending.get("template") if isinstance(pending, dict) else None
    template = template or session.template  # sessions paused before the marker existed
    if template is None:
        raise ConflictError(f"session {session.id} has no run to resume")
    request = ResumeRequest(decisions=decisions, session_id=session.id)
    kinds = decision_kinds(decisions)[:20]
    return AgentContext(
        input=f"resume: {', '.join(kinds) or 'decisions'}",
        template=template,
        session_id=session.id,
        principal=principal,
        credentials=credentials,
        request_id=request_id,
        metadata={RESUME_KEY: request, "resume": True},
    )


async def _authenticate(middlewares: Sequence[AgentMiddleware], credentials: str) -> Principal:
    from agent_runtime.orchestration.middleware.auth import AuthMiddleware

    for middleware in middlewares:
        if isinstance(middleware, AuthMiddleware):
            return await middleware.authenticate(credentials)
    raise AuthenticationError("credentials were given but this executor has no auth middleware")


async def roll_back_turn(agent: Any, thread_id: str, input_id: str, *, timeout_s: float = 5.0) -> None:
    """Remove a failed run's turn (its input and what it produced) from the session's checkpoint.

    LangGraph keeps the state of every finished step, so a run that failed between a model call and its
    tool results would leave a tool call without a result in the conversation, which providers refuse
    on the next turn; the session's message count is only updated for runs that succeed, too. Best
    effort: a failure here is logged, and the run's own error is what the caller sees."""
    from langchain_core.messages import RemoveMessage

    config = {"configurable": {"thread_id": thread_id}}
    try:
        async with asyncio.timeout(timeout_s):
            state = await agent.aget_state(config)
            messages = list((state.values or {}).get("messages") or ())
            ids = [str(m.id) for m in messages]
            if input_id in ids:
                turn = ids[ids.index(input_id) :]
                await agent.aupdate_state(config, {"messages": [RemoveMessage(id=i) for i in turn]})
    except Exception as exc:
        log.warning("could not remove failed run %s from its session: %s: %s", input_id, type(exc).__name__, exc)
