"""Pure ASGI middlewares: request ids, the access log, the body size limit, in-flight tracking for graceful shutdown.

Pure ASGI (not ``BaseHTTPMiddleware``) so contextvars and streaming responses pass through untouched
and a too-large body is refused before it is read into memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_runtime.server.errors import error_body

__all__ = [
    "AccessLogMiddleware",
    "BodyLimitMiddleware",
    "InFlight",
    "InFlightMiddleware",
    "RequestIdMiddleware",
    "send_error",
]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


async def send_error(
    send: Send, status: int, code: str, message: str, *, request_id: str | None = None, retry_after: int | None = None
) -> None:
    """Answer with the standard error envelope straight from ASGI (outside FastAPI's handlers)."""
    body = json.dumps(error_body(status, code, message, request_id=request_id)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    if status in (413, 503):
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _request_id(scope: Scope) -> str | None:
    value = scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


class RequestIdMiddleware:
    """Give every request an id (the client's ``X-Request-Id`` when well-formed) and echo it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = _header(scope, b"x-request-id")
        supplied = raw.decode("latin-1") if raw else ""
        request_id = supplied if _REQUEST_ID.fullmatch(supplied) else f"req_{uuid.uuid4().hex}"
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        await self.app(scope, receive, send_with_id)


access_log = logging.getLogger("agent_runtime.access")


class AccessLogMiddleware:
    """One JSON log line per request (``agent_runtime.access``, INFO), with its request id: uvicorn's own
    access log is plain text among JSON lines and knows no request id, so ``serve`` turns it off."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_seen(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_seen)
        finally:
            client = scope.get("client")
            access_log.info(
                "%s %s %d",
                scope.get("method"),
                scope.get("path"),
                status,
                extra={
                    "request_id": _request_id(scope),
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "client": client[0] if client else None,
                },
            )


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413 before the application reads them.

    A declared ``Content-Length`` is checked up front (the server enforces that the body matches it);
    a chunked body is read here up to the limit and replayed, so memory stays bounded either way.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await send_error(send, 400, "bad_request", "invalid Content-Length", request_id=_request_id(scope))
                return
            if declared > self.max_bytes:
                await self._too_large(scope, send)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away before sending the body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        message = f"request body exceeds {self.max_bytes} bytes"
        await send_error(send, 413, "request_too_large", message, request_id=_request_id(scope))


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class InFlight:
    """Counts requests in progress; once draining, new work is refused and shutdown waits for the rest."""

    def __init__(self) -> None:
        self.count = 0
        self.draining = False
        self.started_at: float | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def exit(self) -> None:
        self.count -= 1
        if self.count <= 0:
            self.count = 0
            self._idle.set()

    def begin_drain(self) -> None:
        if not self.draining:
            self.draining = True
            self.started_at = time.monotonic()

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no request is in flight (at most ``timeout_s``); whether that happened."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


class InFlightMiddleware:
    """Track in-flight requests; while draining, answer new ones with 503 (probes excepted).

    Args:
        exempt: paths never counted nor refused (liveness, readiness, metrics).
    """

    def __init__(self, app: ASGIApp, inflight: InFlight, exempt: Iterable[str] = ()) -> None:
        self.app = app
        self.inflight = inflight
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        if self.inflight.draining:
            await send_error(
                send, 503, "unavailable", "server is shutting down", request_id=_request_id(scope), retry_after=1
            )
            return
        self.inflight.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight.exit()
