"""OpenAPI descriptions shared by the routes: the error envelope for every status, the SSE body."""

from __future__ import annotations

from typing import Any

from agent_runtime.server.schemas import ErrorResponse

__all__ = ["ERRORS", "SSE_RESPONSE", "errors"]

_DESCRIPTIONS = {
    400: "Malformed request (invalid JSON, unusable model)",
    401: "Missing or invalid bearer token",
    403: "The token lacks a required scope",
    404: "Not found (or owned by someone else)",
    409: "Conflict (id in use, session busy)",
    410: "Gone: the run's events after Last-Event-ID are no longer kept",
    413: "Body or input too large",
    422: "Request body failed validation",
    429: "Rate limit or quota exceeded; see Retry-After",
    500: "Internal error",
    502: "Model provider error",
    503: "Backend unavailable or server draining",
    504: "Run timed out",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorResponse, "description": _DESCRIPTIONS[status]} for status in statuses}


ERRORS = errors(400, 401, 403, 404, 409, 413, 422, 429, 500, 502, 503, 504)
SSE_RESPONSE: dict[str, Any] = {
    "description": "JSON result, or with `stream: true` a `text/event-stream`.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}
