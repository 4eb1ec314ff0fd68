"""Request dependencies: the runtime, and the principal behind the bearer token.

The token (an ``ar_…`` API key or a JWT) is verified once per request here; the resulting
``Principal`` is what every route and the executor's middleware chain trust. Nothing is ever taken
from a user id in a request body.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from agent_runtime.errors import AuthenticationError, PermissionDeniedError
from agent_runtime.orchestration.middleware.auth import AuthMiddleware
from agent_runtime.runtime import Runtime
from agent_runtime.scopes import ADMIN
from agent_runtime.types import Principal

__all__ = [
    "ADMIN_SCOPE",
    "CurrentPrincipal",
    "CurrentRuntime",
    "authenticate",
    "get_principal",
    "get_runtime",
    "request_id",
    "require_scope",
]

ADMIN_SCOPE = ADMIN
_bearer = HTTPBearer(auto_error=False, description="An agent-runtime API key (`ar_…`) or a JWT.")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _runtime(request: Request) -> Runtime:
    """``get_runtime`` as a dependency; async because FastAPI runs a plain ``def`` dependency in its
    thread pool (a thread hop per request)."""
    return get_runtime(request)


def request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


async def authenticate(request: Request, token: str | None) -> Principal:
    """The principal of ``token``; ``AuthenticationError`` when absent or invalid."""
    if not token:
        raise AuthenticationError("missing bearer token (Authorization: Bearer <API key or JWT>)")
    authenticator: AuthMiddleware = request.app.state.authenticator
    principal = await authenticator.authenticate(token)
    request.scope.setdefault("state", {})["principal"] = principal
    return principal


async def get_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    # the LangGraph SDK (Agent Protocol clients) sends its key as ``x-api-key``
    token = credentials.credentials if credentials else request.headers.get("x-api-key")
    return await authenticate(request, token)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
CurrentRuntime = Annotated[Runtime, Depends(_runtime)]


def require_scope(principal: Principal, scope: str) -> None:
    if not principal.allows(scope):
        raise PermissionDeniedError(f"missing scope {scope!r}", details={"scope": scope})


def is_admin(principal: Principal) -> bool:
    return ADMIN_SCOPE in principal.scopes or "*" in principal.scopes
