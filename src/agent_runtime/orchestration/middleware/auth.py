"""Authentication and per-template authorization, outermost in the default chain.

Credentials (``context.credentials``: an ``ar_…`` API key or a JWT, with or without ``Bearer``)
become ``context.principal``; the raw credential is then dropped from the context so nothing
downstream can log or forward it. A principal set without credentials comes from a trusted
in-process caller (CLI, trigger handlers) and is accepted as is. Either way the principal must hold
``agents:run:<template>`` (or ``agents:run:*``).
"""

from __future__ import annotations

from agent_runtime.errors import AuthenticationError, PermissionDeniedError
from agent_runtime.orchestration.middleware.base import AgentMiddleware, NextCall
from agent_runtime.scopes import RUN_PREFIX
from agent_runtime.security.base import KeyStore
from agent_runtime.security.jwt import JwtVerifier
from agent_runtime.security.keys import KEY_PREFIX, KeyService
from agent_runtime.types import AgentContext, AgentResult, Principal

__all__ = ["RUN_SCOPE_PREFIX", "AuthMiddleware"]

RUN_SCOPE_PREFIX = RUN_PREFIX


class AuthMiddleware(AgentMiddleware):
    """Resolve credentials into a principal and check the run scope.

    Args:
        keys: a ``KeyService`` (or a bare ``KeyStore``, hashed without pepper) for API keys.
        jwt_verifier: accepts JWT bearer tokens when given; otherwise JWTs are refused.
    """

    name = "auth"

    def __init__(self, keys: KeyService | KeyStore, jwt_verifier: JwtVerifier | None = None) -> None:
        self.keys = keys if isinstance(keys, KeyService) else KeyService(keys)
        self.jwt_verifier = jwt_verifier

    async def authenticate(self, credentials: str) -> Principal:
        """The principal of an API key or JWT, or ``AuthenticationError``."""
        token = credentials.strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        if token.startswith(f"{KEY_PREFIX}_"):
            return await self.keys.authenticate(token)
        if token.count(".") == 2:
            if self.jwt_verifier is None:
                raise AuthenticationError("JWT bearer tokens are not accepted by this server")
            return self.jwt_verifier.verify(token)
        raise AuthenticationError("unrecognised credentials: expected an API key or a JWT")

    async def process(self, context: AgentContext, next_call: NextCall) -> AgentResult:
        if context.credentials:
            context.principal = await self.authenticate(context.credentials)
            context.credentials = None
        elif context.principal is None:
            raise AuthenticationError("missing credentials")
        scope = RUN_SCOPE_PREFIX + context.template
        if not context.principal.allows(scope):
            raise PermissionDeniedError(f"missing scope {scope!r}", details={"scope": scope})
        return await next_call(context)
