"""One exception hierarchy for the whole runtime.

Every error carries a stable machine-readable ``code`` and the HTTP status the service maps it to,
so the library, the CLI and the HTTP layer agree on what went wrong::

    AgentRuntimeError
    ├── ConfigurationError              configuration          500
    ├── ValidationError                 validation_error       422
    │   ├── BadRequestError             bad_request            400  (malformed request, bad model override)
    │   ├── InputTooLargeError          input_too_large        413
    │   ├── InvalidNamespaceError       invalid_namespace      422  (store: empty label, a dot, too deep)
    │   ├── ItemTooLargeError           item_too_large         422  (store value over its size limit)
    │   └── TemplateConfigError         invalid_template       422
    ├── NotFoundError                   not_found              404
    │   ├── TemplateNotFoundError       template_not_found     404
    │   ├── SessionNotFoundError        session_not_found      404
    │   ├── RunNotFoundError            run_not_found          404
    │   └── ItemNotFoundError           item_not_found         404  (store)
    ├── ConflictError                   conflict               409
    │   ├── SessionBusyError            session_busy           409
    │   └── StoreFullError              store_full             409  (the tenant's item count limit)
    ├── AuthenticationError             unauthenticated        401
    ├── PermissionDeniedError           permission_denied      403
    ├── RateLimitError                  rate_limited           429  (retry_after)
    ├── QuotaExceededError              quota_exceeded         429  (retry_after)
    ├── BackendError                    backend_unavailable    503  (wraps redis/sqlite/kafka errors)
    ├── ServiceUnavailableError         unavailable            503
    └── AgentRunError                   run_failed             500
        ├── ProviderError               provider_error         502  (retriable flag)
        │   ├── ProviderRateLimitError  provider_rate_limited  429  (retriable, retry_after)
        │   └── ProviderConnectionError provider_unreachable   502  (retriable)
        ├── ToolExecutionError          tool_error             500
        ├── RunTimeoutError             timeout                504  (retriable)
        ├── RunCancelledError           cancelled              499
        └── RunAbandonedError           abandoned              500  (its worker died mid-run)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AgentRunError",
    "AgentRuntimeError",
    "AuthenticationError",
    "BackendError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "EventsExpiredError",
    "InputTooLargeError",
    "InvalidNamespaceError",
    "ItemNotFoundError",
    "ItemTooLargeError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderRateLimitError",
    "QuotaExceededError",
    "RateLimitError",
    "RunAbandonedError",
    "RunCancelledError",
    "RunNotFoundError",
    "RunTimeoutError",
    "ServiceUnavailableError",
    "SessionBusyError",
    "SessionNotFoundError",
    "StoreFullError",
    "TemplateConfigError",
    "TemplateNotFoundError",
    "ToolExecutionError",
    "ValidationError",
    "error_from_dict",
]


class AgentRuntimeError(Exception):
    """Root of every error the runtime raises on purpose."""

    code: str = "internal_error"
    status_code: int = 500
    retriable: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.details = details or {}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.retry_after, self.details))

    def to_dict(self) -> dict[str, Any]:
        """The JSON body the HTTP service returns: ``{"error": {"code", "message", ...}}``."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        if self.details:
            body["details"] = self.details
        return {"error": body}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


def error_from_dict(body: dict[str, Any]) -> AgentRuntimeError:
    """Rebuild an error from its ``to_dict()["error"]`` body (a stream's ``error`` event, a stored run):
    same code, message, retry-after, details and status."""
    code = str(body.get("code") or "run_failed")
    details = body.get("details")
    error = AgentRuntimeError(
        str(body.get("message") or "run failed"),
        retry_after=body.get("retry_after"),
        details=dict(details) if isinstance(details, dict) else None,
    )
    error.code = code
    error.status_code = _status_by_code().get(code, 500)
    return error


def _status_by_code() -> dict[str, int]:
    found: dict[str, int] = {}
    pending: list[type[AgentRuntimeError]] = [AgentRuntimeError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls.status_code)
        pending.extend(cls.__subclasses__())
    return found


def _rebuild(
    cls: type[AgentRuntimeError], message: str, retry_after: float | None, details: dict[str, Any]
) -> AgentRuntimeError:
    return cls(message, retry_after=retry_after, details=details)


class ConfigurationError(AgentRuntimeError):
    code = "configuration_error"


class ValidationError(AgentRuntimeError):
    code = "validation_error"
    status_code = 422


class BadRequestError(ValidationError):
    code = "bad_request"
    status_code = 400


class InputTooLargeError(ValidationError):
    code = "input_too_large"
    status_code = 413


class InvalidNamespaceError(ValidationError):
    code = "invalid_namespace"


class ItemTooLargeError(ValidationError):
    code = "item_too_large"


class TemplateConfigError(ValidationError):
    code = "invalid_template"


class NotFoundError(AgentRuntimeError):
    code = "not_found"
    status_code = 404


class TemplateNotFoundError(NotFoundError):
    code = "template_not_found"


class SessionNotFoundError(NotFoundError):
    code = "session_not_found"


class RunNotFoundError(NotFoundError):
    code = "run_not_found"


class ItemNotFoundError(NotFoundError):
    code = "item_not_found"


class EventsExpiredError(AgentRuntimeError):
    """A join asked for events after one that has left the run's bounded event log."""

    code = "events_expired"
    status_code = 410


class ConflictError(AgentRuntimeError):
    code = "conflict"
    status_code = 409


class SessionBusyError(ConflictError):
    code = "session_busy"


class StoreFullError(ConflictError):
    code = "store_full"


class AuthenticationError(AgentRuntimeError):
    code = "unauthenticated"
    status_code = 401


class PermissionDeniedError(AgentRuntimeError):
    code = "permission_denied"
    status_code = 403


class RateLimitError(AgentRuntimeError):
    code = "rate_limited"
    status_code = 429


class QuotaExceededError(AgentRuntimeError):
    code = "quota_exceeded"
    status_code = 429


class BackendError(AgentRuntimeError):
    """A storage or broker backend (Redis, SQLite, Kafka) failed; raised ``from`` the original error."""

    code = "backend_unavailable"
    status_code = 503


class ServiceUnavailableError(AgentRuntimeError):
    code = "unavailable"
    status_code = 503


class AgentRunError(AgentRuntimeError):
    code = "run_failed"


class ProviderError(AgentRunError):
    code = "provider_error"
    status_code = 502

    def __init__(self, message: str, *, retriable: bool = False, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retriable = retriable


class ProviderRateLimitError(ProviderError):
    code = "provider_rate_limited"
    status_code = 429

    def __init__(self, message: str, **kwargs: Any):
        kwargs.setdefault("retriable", True)
        super().__init__(message, **kwargs)


class ProviderConnectionError(ProviderError):
    code = "provider_unreachable"

    def __init__(self, message: str, **kwargs: Any):
        kwargs.setdefault("retriable", True)
        super().__init__(message, **kwargs)


class ToolExecutionError(AgentRunError):
    code = "tool_error"


class RunTimeoutError(AgentRunError):
    code = "timeout"
    status_code = 504
    retriable = True


class RunCancelledError(AgentRunError):
    code = "cancelled"
    status_code = 499


class RunAbandonedError(AgentRunError):
    """The worker running it died (no heartbeat); found and closed by the run reaper."""

    code = "abandoned"
