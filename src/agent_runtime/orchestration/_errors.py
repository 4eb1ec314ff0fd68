"""Map whatever a provider, LangGraph or a tool raised onto the runtime's typed errors.

Provider SDK classes are matched by name so no provider package has to be importable.
"""

from __future__ import annotations

import os
from typing import Any

from agent_runtime.errors import (
    AgentRunError,
    AgentRuntimeError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
    RunTimeoutError,
    ToolExecutionError,
)

__all__ = ["map_error"]

_TOOL_BASE = os.path.join("langchain_core", "tools", "base.py")

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


def _failed_tool(exc: BaseException) -> str | None:
    """The name of the LangChain tool ``exc`` escaped from, read off its traceback.

    Doing this after the fact, only on the error path, costs nothing per run; wrapping every tool call
    in a LangChain middleware to catch the same errors added a tenth to a fast agent run."""
    tb = exc.__traceback__
    name = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name in ("run", "arun") and code.co_filename.endswith(_TOOL_BASE):
            name = getattr(tb.tb_frame.f_locals.get("self"), "name", None)
        tb = tb.tb_next
    return str(name) if name else None


def map_error(exc: BaseException, *, timeout_s: float | None = None) -> AgentRuntimeError:
    """The typed error for ``exc`` (returned, not raised, so callers can ``raise ... from exc``)."""
    if isinstance(exc, AgentRuntimeError):
        return exc
    tool = _failed_tool(exc) if isinstance(exc, Exception) else None
    if tool is not None:
        return ToolExecutionError(f"tool {tool!r} failed: {type(exc).__name__}: {exc}"[:1000], details={"tool": tool})
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
