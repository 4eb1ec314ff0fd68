"""``agent-runtime serve``: uvicorn, one process or N workers sharing one port.

One worker: the runtime is built here, in the server's event loop, and handed to ``create_app``.
N workers: uvicorn's multi-process supervisor starts each worker from the import string
``agent_runtime.server.app:create_app_from_env`` (so each builds its own runtime); the settings are
passed down through a private config file, and ``PROMETHEUS_MULTIPROC_DIR`` is pointed at a fresh
directory before any worker starts, so ``/metrics`` on any worker reports the whole fleet. Workers
share sessions, keys, limits and quotas only through a shared backend (Redis).

On first start with an empty key store an admin key is created and printed once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import uvicorn
import yaml

from agent_runtime.orchestration.middleware.defaults import open_security_stores
from agent_runtime.orchestration.middleware.logging import configure_json_logging
from agent_runtime.runtime import Runtime
from agent_runtime.security.keys import KeyService
from agent_runtime.server.app import DEFAULT_DRAIN_TIMEOUT_S, create_app
from agent_runtime.settings import Settings

__all__ = ["APP_FACTORY", "ensure_admin_key", "is_loopback", "serve", "warn_if_probes_open"]

log = logging.getLogger("agent_runtime.server")

APP_FACTORY = "agent_runtime.server.app:create_app_from_env"
ADMIN_TENANT, ADMIN_USER, ADMIN_SCOPES = "default", "admin", ["admin"]


async def ensure_admin_key(keys: KeyService) -> str | None:
    """Create the first admin key when the store holds none; its plaintext (else ``None``)."""
    if await keys.list_keys():
        return None
    plaintext, _ = await keys.create_key(ADMIN_TENANT, ADMIN_USER, ADMIN_SCOPES, description="first-start admin key")
    return plaintext


def _announce(plaintext: str | None) -> None:
    if plaintext is None:
        return
    sys.stdout.write(
        "No API keys existed, so an admin key was created (tenant 'default', user 'admin', scope 'admin').\n"
        "It is shown only this once; store it now:\n"
        f"{plaintext}\n"
    )
    sys.stdout.flush()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (``uvicorn[standard]``), as uvicorn itself would pick."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return None
    return uvloop.new_event_loop


def _drain_s(settings: Settings) -> float:
    return min(settings.limits.run_timeout_s, DEFAULT_DRAIN_TIMEOUT_S)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (``0.0.0.0``, ``::`` and names do not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_if_probes_open(settings: Settings, host: str) -> None:
    """``/metrics`` and ``/readyz``'s details answer anyone who reaches the port unless a token is required."""
    if not settings.metrics_require_auth and not is_loopback(host):
        log.warning(
            "/metrics and /readyz are open to anyone who reaches %s (run counts, spend, backend errors); "
            "set AGENT_RUNTIME_METRICS_REQUIRE_AUTH=true to require a token with the metrics:read scope, "
            "or keep the port private",
            host,
        )


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve the HTTP API until SIGINT/SIGTERM (which drains in-flight runs first)."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    configure_json_logging(settings.log_level.upper())
    warn_if_probes_open(settings, host)
    if workers <= 1:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve_one(settings, host, port))
        return
    from agent_runtime.backends import url_for

    local = [f for f in ("sessions", "keys", "quotas") if url_for(settings, f).engine == "memory"]
    if url_for(settings, "rate_limits").engine != "redis":
        local.append("rate_limits")
    if local:
        log.warning(
            "%d workers: %s are per worker process (memory:// keeps them in each process; rate limits are "
            "shared only on redis://, sessions, keys and quotas on sqlite:// (one host), redis:// or postgresql://)",
            workers,
            ", ".join(local),
        )
    _serve_many(settings, host, port, workers)


async def _serve_one(settings: Settings, host: str, port: int) -> None:
    # The runtime is built here so the admin key lands in its own key store (even a memory one); the
    # app's lifespan closes it, because uvicorn re-raises SIGTERM as soon as it has shut down.
    runtime = await Runtime.create(settings)
    try:
        _announce(await ensure_admin_key(runtime.keys))
    except BaseException:
        await runtime.aclose()
        raise
    config = uvicorn.Config(
        create_app(runtime, close_runtime=True, tune_gc=True),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,  # the app logs each request as JSON with its request id (AccessLogMiddleware)
        timeout_graceful_shutdown=int(_drain_s(settings)) + 1,
    )
    await uvicorn.Server(config).serve()


async def _first_start(settings: Settings) -> str | None:
    stores = open_security_stores(settings)
    try:
        return await ensure_admin_key(stores.keys)
    finally:
        await stores.aclose()


WORKER_HEALTHCHECK_S = 60


def _serve_many(settings: Settings, host: str, port: int, workers: int) -> None:
    _announce(asyncio.run(_first_start(settings)))
    workdir = Path(tempfile.mkdtemp(prefix="agent-runtime-"))
    metrics_dir = workdir / "prometheus"
    metrics_dir.mkdir()
    config_file = workdir / "settings.yaml"
    dumped = settings.model_dump(mode="json")
    if settings.api_key_pepper is not None:  # dumped masked: the workers need the secret itself
        dumped["api_key_pepper"] = settings.api_key_pepper.get_secret_value()
    if settings.runs.webhooks.secret is not None:
        dumped["runs"]["webhooks"]["secret"] = settings.runs.webhooks.secret.get_secret_value()
    config_file.write_text(yaml.safe_dump(dumped), encoding="utf-8")
    config_file.chmod(0o600)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    os.environ["AGENT_RUNTIME_CONFIG_FILE"] = str(config_file)
    try:
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level.lower(),
            access_log=False,
            timeout_graceful_shutdown=int(_drain_s(settings)) + 1,
            # a worker answers the supervisor's pings only once it has imported LangChain: 5 s (uvicorn's
            # default) is not always enough on a busy host, and the supervisor then kills it as hung
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
