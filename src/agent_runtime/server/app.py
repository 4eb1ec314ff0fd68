"""The FastAPI application: routes, the error envelope, ASGI middlewares and the lifespan.

``create_app(runtime)`` serves a runtime the caller owns (and closes); ``create_app()`` or
``create_app_from_env()`` (the import string that multi-worker mode hands to uvicorn) builds its own
runtime from settings at start-up and closes it at shutdown.

Graceful shutdown: on SIGTERM/SIGINT the app first *drains*: new requests get 503 (probes still
answer, ``/readyz`` turns red) while in-flight runs finish, for at most ``drain_timeout_s``; only
then is the signal passed on to the server, which stops listening and runs the lifespan shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from importlib.metadata import PackageNotFoundError, version
from types import FrameType
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from agent_runtime.orchestration.middleware.auth import AuthMiddleware
from agent_runtime.orchestration.middleware.defaults import jwt_verifier_from
from agent_runtime.orchestration.middleware.logging import configure_json_logging
from agent_runtime.runtime import Runtime
from agent_runtime.server.asgi import (
    AccessLogMiddleware,
    BodyLimitMiddleware,
    InFlight,
    InFlightMiddleware,
    RequestIdMiddleware,
)
from agent_runtime.server.dashboard import build_dashboard_router
from agent_runtime.server.deps import authenticate, get_runtime
from agent_runtime.server.errors import install_error_handlers
from agent_runtime.server.routes import (
    agent_protocol,
    health,
    keys,
    openai,
    responses,
    run_records,
    runs,
    sessions,
    templates,
    usage,
)
from agent_runtime.server.routes import crons as cron_routes
from agent_runtime.settings import Settings, load_settings
from agent_runtime.tracing import TracingASGIMiddleware, configure_tracing

__all__ = ["PROBE_PATHS", "create_app", "create_app_from_env"]

log = logging.getLogger("agent_runtime.server")

PROBE_PATHS = ("/healthz", "/readyz", "/metrics")
DEFAULT_DRAIN_TIMEOUT_S = 30.0
GC_THRESHOLDS = (20_000, 50, 100)
"""Generation thresholds of a server process: young collections every 20k allocations, not 700."""


def _version() -> str:
    try:
        return version("agent-runtime")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def create_app(
    runtime: Runtime | None = None,
    *,
    settings: Settings | None = None,
    drain_timeout_s: float | None = None,
    close_runtime: bool | None = None,
    tune_gc: bool = False,
) -> FastAPI:
    """Build the HTTP application.

    Args:
        runtime: serve this runtime (the caller closes it); when ``None`` the app builds one from
            ``settings`` at start-up and closes it at shutdown.
        settings: used only when ``runtime`` is ``None`` (default: from the environment).
        drain_timeout_s: how long shutdown waits for in-flight requests (default: the run timeout,
            capped at 30 s).
        close_runtime: close the runtime at shutdown (default: only when the app built it).
        tune_gc: server processes only: after start-up, freeze the objects that live for the whole
            process (imported modules, the runtime) out of the collector's reach and collect
            less often; full collections of LangChain-sized heaps otherwise show up as p99 spikes.
    """
    settings = runtime.settings if runtime is not None else (settings or load_settings())
    drain_s = (
        drain_timeout_s if drain_timeout_s is not None else min(settings.limits.run_timeout_s, DEFAULT_DRAIN_TIMEOUT_S)
    )
    inflight = InFlight()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None if close_runtime is None else close_runtime
        active = runtime if runtime is not None else await Runtime.create(settings)
        _attach(app, active)
        active.start_reaper()  # closes runs of workers that died (heartbeat + reaper, see README)
        await active.start_dispatcher()  # background runs, starting with those left pending
        if tune_gc:
            gc.collect()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
        restore = _drain_on_signals(inflight, drain_s)
        try:
            yield
        finally:
            restore()
            inflight.begin_drain()
            if not await inflight.wait_idle(drain_s):
                log.warning("shutdown: %d request(s) still in flight after %.1f s", inflight.count, drain_s)
            await active.stop_reaper()
            await active.stop_dispatcher()
            if owned:
                await active.aclose()

    app = FastAPI(
        title="agent-runtime",
        version=_version(),
        description="Authenticated, rate-limited, metered LangChain agents over HTTP (OpenAI-compatible).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    _document_limits(app, settings)
    app.state.inflight = inflight
    if runtime is not None:
        _attach(app, runtime)
    install_error_handlers(app)
    for module in (health, templates, sessions, run_records, runs, usage, keys, openai, responses, agent_protocol):
        app.include_router(module.router)
    app.include_router(cron_routes.router)
    app.include_router(
        build_dashboard_router(
            lambda request: get_runtime(request).series,
            authenticate,
            runs=lambda request: get_runtime(request).run_records,
            events=lambda request: get_runtime(request).run_events,
        )
    )
    # added innermost first: request id -> access log -> in-flight/drain -> body limit -> routes
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.limits.max_request_bytes)
    app.add_middleware(InFlightMiddleware, inflight=inflight, exempt=PROBE_PATHS)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestIdMiddleware)
    if settings.cors_origins:  # browser clients (Studio, Agent Chat UI): preflights answered before anything else
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["Content-Location", "Location", "X-Pagination-Next", "X-Request-Id"],
            max_age=600,
        )
    if configure_tracing():  # outermost: the server span covers the whole request
        app.add_middleware(TracingASGIMiddleware)
    return app


def _document_limits(app: FastAPI, settings: Settings) -> None:
    """Put this server's input limit (enforced by the executor, as a 413) and its webhook policy into the schema."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        components = schema.get("components", {}).get("schemas", {})
        run = components.get("RunRequest", {})
        if "input" in run.get("properties", {}):
            run["properties"]["input"]["maxLength"] = settings.limits.max_input_chars
        if not settings.runs.webhooks.allowed_hosts:  # no host allowed: every webhook is refused (422)
            for body in components.values():
                if "webhook" in body.get("properties", {}):
                    body["properties"]["webhook"] = {"type": "null", "description": "No host is allowed."}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app_from_env() -> FastAPI:
    """The app of one worker process: settings from the environment, its own runtime."""
    settings = load_settings()
    configure_json_logging(settings.log_level.upper())
    return create_app(settings=settings, tune_gc=True)


def _attach(app: FastAPI, runtime: Runtime) -> None:
    app.state.runtime = runtime
    app.state.authenticator = AuthMiddleware(runtime.keys, jwt_verifier_from(runtime.settings))


Handler = Callable[[int, FrameType | None], Any]


def _drain_on_signals(inflight: InFlight, timeout_s: float) -> Callable[[], None]:
    """Put a drain in front of the server's own SIGTERM/SIGINT handlers (uvicorn's, in each worker).

    The first signal starts the drain and forwards the signal once in-flight requests are done (or
    ``timeout_s`` passed); a second signal is forwarded at once. Returns a function that restores
    the previous handlers. Signals can only be handled on the main thread; elsewhere (a server in a
    test thread) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def forward_when_idle(signum: int, frame: FrameType | None, handler: Handler) -> None:
        await inflight.wait_idle(timeout_s)
        handler(signum, frame)

    def start(signum: int, frame: FrameType | None, handler: Handler) -> None:
        task = loop.create_task(forward_when_idle(signum, frame, handler))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    for sig in (signal.SIGTERM, signal.SIGINT):
        handler = signal.getsignal(sig)
        if not callable(handler):
            continue
        previous[sig] = handler

        def on_signal(signum: int, frame: FrameType | None, handler: Handler = handler) -> None:
            if inflight.draining:
                handler(signum, frame)
                return
            log.info("signal %d: draining %d in-flight request(s) before shutdown", signum, inflight.count)
            inflight.begin_drain()
            loop.call_soon_threadsafe(start, signum, frame, handler)

        signal.signal(sig, on_signal)

    def restore() -> None:
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError):
                signal.signal(sig, handler)

    return restore
