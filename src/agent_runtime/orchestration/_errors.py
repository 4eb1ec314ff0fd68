"""Map whatever a provider, LangGraph or a tool raised onto the runtime's typed errors.

Provider SDK classes are matched by name so no provider package has to be importable.
"""

from __future__ import annotations

from typing import Any

from agent_runtime.errors import (
    AgentRunError,
    AgentRuntimeError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
    RunTimeoutError,
)

__all__ = ["map_error"]

_RATE_LIMIT = {"RateLimitError"}
_CONNECTION = {
    "APIConnectionError",
    "APITimeoutError",
    "ConnectError",
    "ConnectTimeout",
    "ReadTimeout",
    "RemoteProtocolError",
    "ServiceUnavailableError",
}
_SERVER = {"InternalServerError", "OverloadedError"}
_CLIENT = {
    "AuthenticationError",
    "PermissionDeniedError",
    "BadRequestError",
    "NotFoundError",
    "UnprocessableEntityError",
}


def _retry_after(exc: BaseException) -> float | None:
    response: Any = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    raw = headers.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def map_error(exc: BaseException, *, timeout_s: float | None = None) -> AgentRuntimeError:
    """The typed error for ``exc`` (returned, not raised, so callers can ``raise ... from exc``)."""
    if isinstance(exc, AgentRuntimeError):
        return exc
    if isinstance(exc, TimeoutError):
        return RunTimeoutError(f"run exceeded its timeout of {timeout_s} s" if timeout_s else "run timed out")
    names = {cls.__name__ for cls in type(exc).__mro__}
    message = f"{type(exc).__name__}: {exc}"[:1000]
    if names & _RATE_LIMIT:
        return ProviderRateLimitError(f"model provider rate limit: {message}", retry_after=_retry_after(exc))
    if names & _CONNECTION:
        return ProviderConnectionError(f"model provider unreachable: {message}")
    if names & _SERVER:
        return ProviderError(f"model provider error: {message}", retriable=True, retry_after=_retry_after(exc))
    if names & _CLIENT:
        return ProviderError(f"model provider refused the request: {message}")
    if "GraphRecursionError" in names:
        return AgentRunError(f"the agent did not finish within its step limit: {message}")
    return AgentRunError(message)
