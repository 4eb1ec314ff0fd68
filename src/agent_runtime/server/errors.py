"""One error shape for every HTTP failure: ``{"error": {"code", "message", "type", ...}}``.

The runtime's typed errors carry their own HTTP status; request validation, unknown routes and
unexpected exceptions are mapped here into the same envelope. ``message`` and ``code`` sit where
OpenAI clients look for them, and ``type`` names the OpenAI error category, so the OpenAI SDK and
LangChain's ``ChatOpenAI`` surface our errors as their own typed exceptions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.orchestration.middleware.logging import redact

__all__ = ["error_body", "error_response", "error_type", "install_error_handlers", "status_for_code"]

log = logging.getLogger("agent_runtime.server")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type(status: int) -> str:
    """The OpenAI error category of an HTTP status."""
    return _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")


def error_body(
    status: int,
    code: str,
    message: str,
    *,
    retry_after: float | None = None,
    details: dict[str, Any] | None = None,
    request_id: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    # a message may quote what the caller sent (a model string, a field): never hand a credential back
    body: dict[str, Any] = {"code": code, "message": redact(message), "type": error_type(status), "param": param}
    if retry_after is not None:
        body["retry_after"] = retry_after
    if details:
        body["details"] = details
    if request_id:
        body["request_id"] = request_id
    return {"error": body}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    retry_after: float | None = None,
    details: dict[str, Any] | None = None,
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    param: str | None = None,
) -> JSONResponse:
    """A JSON error response; ``Retry-After`` (whole seconds, rounded up) when ``retry_after`` is given."""
    all_headers = dict(headers or {})
    if retry_after is not None:
        all_headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    body = error_body(
        status, code, message, retry_after=retry_after, details=details, request_id=request_id, param=param
    )
    return JSONResponse(body, status_code=status, headers=all_headers)


def _all_error_classes(cls: type[AgentRuntimeError]) -> list[type[AgentRuntimeError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out += _all_error_classes(sub)
    return out


_STATUS_BY_CODE = {cls.code: cls.status_code for cls in _all_error_classes(AgentRuntimeError)}


def status_for_code(code: str) -> int:
    """HTTP status of a runtime error code (as found in stream ``error`` events); 500 if unknown."""
    return _STATUS_BY_CODE.get(code, 500)


def http_status(exc: AgentRuntimeError) -> int:
    """The status to answer with; never a non-standard one (a cancelled run is 499 inside, 503 outside)."""
    status = exc.status_code
    return 503 if status == 499 else status


def _request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


async def _runtime_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AgentRuntimeError)
    status = http_status(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status >= 500:
        log.warning("request failed: %s %s", exc.code, exc.message, extra={"request_id": _request_id(request)})
    details = {k: v for k, v in exc.details.items() if isinstance(v, str | int | float | bool | None)}
    param = details.pop("param", None)
    return error_response(
        status,
        exc.code,
        exc.message,
        retry_after=exc.retry_after if status in (429, 503) else None,
        details=details,
        request_id=_request_id(request),
        headers=headers,
        param=param if isinstance(param, str) else None,
    )


def _loc(err: dict[str, Any]) -> str:
    return ".".join(str(part) for part in err.get("loc", ()))


_OPENAI_ROUTES = ("/v1/chat/", "/v1/models", "/v1/responses")
"""Routes that answer a bad request like OpenAI: 400 naming the parameter, not FastAPI's 422."""


def _param(err: dict[str, Any]) -> str:
    """OpenAI's ``param``: the body field at fault (``temperature``, ``messages.0.content``)."""
    loc = [str(part) for part in err.get("loc", ())]
    return ".".join(loc[1:] if loc[:1] == ["body"] else loc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(err.get("type") == "json_invalid" for err in errors):
        return error_response(400, "bad_request", "request body is not valid JSON", request_id=_request_id(request))
    items = [{"loc": _loc(err), "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))} for err in errors]
    summary = "; ".join(f"{item['loc']}: {item['msg']}" for item in items[:5]) or "invalid request"
    status = 400 if request.url.path.startswith(_OPENAI_ROUTES) else 422
    param = _param(errors[0]) if errors else None
    body = error_body(status, "validation_error", summary, request_id=_request_id(request), param=param)
    body["error"]["errors"] = items[:50]
    return JSONResponse(body, status_code=status)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 413: "request_too_large"}
    code = codes.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route for {request.method} {request.url.path}"
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, message, request_id=_request_id(request), headers=headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal server error", request_id=_request_id(request))


def install_error_handlers(app: FastAPI) -> None:
    """Route every failure through the one envelope."""
    app.add_exception_handler(AgentRuntimeError, _runtime_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
