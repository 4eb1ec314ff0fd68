"""``/v1/sessions``: create, list, read, read messages of, and delete the caller's conversations.

A session belongs to the tenant and user of the token that created it. Generated ids are unique per
tenant, ids the client chose per user: another user (or tenant) may choose the same id for a session
of its own, and creating it succeeds as for a free id, so nobody learns which ids others chose.
Anyone else gets 404 (never 403, so ids do not leak); an admin of the same tenant may read and
delete any session of it (another user's chosen id with ``?user=``). Every route needs the
``sessions`` scope (403 before anything is looked up).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from agent_runtime.errors import PermissionDeniedError
from agent_runtime.scopes import SESSIONS
from agent_runtime.server.deps import CurrentPrincipal, CurrentRuntime, get_principal, is_admin, require_scope
from agent_runtime.server.routes._docs import errors
from agent_runtime.server.schemas import ID_PATTERN, MessageList, SessionCreate, SessionList, SessionOut
from agent_runtime.sessions.models import Session
from agent_runtime.sessions.threads import Owner
from agent_runtime.types import Principal

__all__ = ["router"]


async def _sessions_scope(principal: Annotated[Principal, Depends(get_principal)]) -> None:
    require_scope(principal, SESSIONS)


router = APIRouter(tags=["sessions"], dependencies=[Depends(_sessions_scope)])
SessionId = Annotated[str, Path(pattern=ID_PATTERN, description="A session id (`ses_…`).")]


UserQuery = Annotated[str | None, Query(pattern=ID_PATTERN, description="Admins: another user of the tenant.")]


def _owner(principal: Principal, user: str | None) -> dict[str, Any]:
    """The ownership filter: admins see their whole tenant (chosen ids: their own, or ``user``'s),
    everyone else only their own."""
    return Owner.of(principal, admin=is_admin(principal), user=user).lookup()


def _out(session: Session) -> dict[str, Any]:
    return session.model_dump(mode="json")


@router.post(
    "/v1/sessions",
    status_code=201,
    response_model=SessionOut,
    responses=errors(401, 403, 404, 409, 413, 422, 429, 503),
    summary="Start a session",
)
async def create_session(body: SessionCreate, principal: CurrentPrincipal, runtime: CurrentRuntime) -> dict[str, Any]:
    if body.template is not None:
        runtime.factory.get_template(body.template)  # 404 for an unknown template
    session = await runtime.sessions.create_session(
        principal.user,
        tenant=principal.tenant,
        template=body.template,
        metadata=body.metadata,
        session_id=body.session_id,
        ttl_s=body.ttl_s,
    )
    return _out(session)


@router.get("/v1/sessions", response_model=SessionList, responses=errors(401, 403, 422, 503), summary="List sessions")
async def list_sessions(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    user: UserQuery = None,
) -> dict[str, Any]:
    owner = principal.user
    if user is not None and user != principal.user:
        if not is_admin(principal):
            raise PermissionDeniedError("listing another user's sessions needs the admin scope")
        owner = user
    sessions = await runtime.sessions.list_sessions(principal.tenant, owner)
    return {"object": "list", "data": [_out(s) for s in sessions]}


@router.get("/v1/sessions/{session_id}", response_model=SessionOut, responses=errors(401, 403, 404, 422, 503))
async def get_session(
    session_id: SessionId, principal: CurrentPrincipal, runtime: CurrentRuntime, user: UserQuery = None
) -> dict[str, Any]:
    return _out(await runtime.sessions.get_session(session_id, **_owner(principal, user)))


@router.get("/v1/sessions/{session_id}/messages", response_model=MessageList, responses=errors(401, 403, 404, 422, 503))
async def get_messages(
    session_id: SessionId, principal: CurrentPrincipal, runtime: CurrentRuntime, user: UserQuery = None
) -> dict[str, Any]:
    messages = await runtime.sessions.get_messages(session_id, **_owner(principal, user))
    return {"object": "list", "session_id": session_id, "data": messages}


@router.delete(
    "/v1/sessions/{session_id}",
    status_code=204,
    response_class=Response,
    responses=errors(401, 403, 404, 422, 503),
    summary="Delete a session and its conversation",
)
async def delete_session(
    session_id: SessionId, principal: CurrentPrincipal, runtime: CurrentRuntime, user: UserQuery = None
) -> Response:
    await runtime.sessions.delete_session(session_id, **_owner(principal, user))
    return Response(status_code=204)
