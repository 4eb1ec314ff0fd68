"""Probes and metrics: ``/healthz`` (alive), ``/readyz`` (backends reachable), ``/metrics`` (Prometheus).

``/healthz`` is always open. With ``metrics_require_auth`` (off by default: keep the port private
then), ``/metrics`` needs a token holding ``metrics:read`` (or admin), and ``/readyz`` still answers
everyone with its status code and each check's ``ok``, but the checks' latencies and error messages
(backend addresses, exception text) only to such a token.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from agent_runtime._redis import breaker_probe
from agent_runtime.errors import AgentRuntimeError
from agent_runtime.runtime import Runtime
from agent_runtime.scopes import METRICS_READ
from agent_runtime.server.deps import CurrentRuntime, authenticate, require_scope
from agent_runtime.server.routes._docs import errors
from agent_runtime.server.schemas import HealthResponse, ReadyCheck, ReadyResponse

__all__ = ["router"]

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_S = 2.0


@router.get("/healthz", response_model=HealthResponse, summary="Liveness")
async def healthz() -> dict[str, Any]:
    return {"status": "ok", "pid": os.getpid()}


async def _check(probe: Callable[[], Awaitable[Any]]) -> ReadyCheck:
    started = time.perf_counter()
    try:
        # A probe goes through an open circuit breaker: readiness is the backend's, and its success
        # closes the breaker at once instead of after the cooldown.
        with breaker_probe():
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await probe()
    except Exception as exc:  # any failure means "not ready"; the message says which
        error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return ReadyCheck(ok=False, latency_ms=_ms(started), error=str(error)[:300])
    return ReadyCheck(ok=True, latency_ms=_ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _probes(runtime: Runtime) -> dict[str, Callable[[], Awaitable[Any]]]:
    security = runtime.security
    probes: dict[str, Callable[[], Awaitable[Any]]] = {
        "sessions": runtime.sessions.ping,
        "keys": security.keys.store.ping,
        "rate_limiter": security.limiter.ping,
        "quotas": security.ledger.ping,
        "usage": runtime.cost_tracker.usage_store.ping,
    }
    if runtime.runs is not None:
        probes["runs"] = runtime.runs.store.ping
    bus = runtime.event_bus
    if bus is not None and hasattr(bus, "ping"):
        probes["event_bus"] = bus.ping
    return probes


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    responses={503: {"model": ReadyResponse, "description": "A backend is down, or the server is draining"}},
    summary="Readiness: every backend reachable",
)
async def readyz(request: Request, runtime: CurrentRuntime) -> JSONResponse:
    probes = _probes(runtime)
    results = await asyncio.gather(*(_check(probe) for probe in probes.values()))
    checks = dict(zip(probes, results, strict=True))
    draining = request.app.state.inflight.draining
    ok = all(check.ok for check in results) and not draining
    status = "ok" if ok else ("draining" if draining else "unavailable")
    if not await _may_read_probes(request, runtime, quiet=True):
        checks = {name: ReadyCheck(ok=check.ok, latency_ms=0.0) for name, check in checks.items()}
    body = ReadyResponse(status=status, checks=checks)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ok else 503)


async def _may_read_probes(request: Request, runtime: Runtime, *, quiet: bool = False) -> bool:
    """Whether this request may read metrics and probe details; raises 401/403 unless ``quiet``."""
    if not runtime.settings.metrics_require_auth:
        return True
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else None
    try:
        require_scope(await authenticate(request, token), METRICS_READ)
    except AgentRuntimeError:
        if not quiet:
            raise
        return False
    return True


@router.get(
    "/metrics",
    summary="Prometheus metrics (text format), aggregated over every worker",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **errors(401, 403)},
)
async def metrics(request: Request, runtime: CurrentRuntime) -> Response:
    await _may_read_probes(request, runtime)
    body, content_type = runtime.metrics.render()
    return Response(body, media_type=content_type)
