"""Live servers for the HTTP tests: uvicorn on a free port in a background thread, real sockets."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn

from agent_runtime.runtime import Runtime
from agent_runtime.server.app import create_app
from agent_runtime.settings import Settings
from tests.conftest import free_port

T = TypeVar("T")


class LiveServer:
    """A runtime and its app served by uvicorn in a thread (the runtime lives in the server's loop)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.runtime: Runtime | None = None
        self.server: uvicorn.Server | None = None
        self.app: Any = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.runtime = await Runtime.create(self.settings)
        self.app = create_app(self.runtime, drain_timeout_s=10)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self._ready.set()
        try:
            await self.server.serve()
        finally:
            await self.runtime.aclose()

    def start(self) -> LiveServer:
        self._thread.start()
        self._ready.wait(30)
        deadline = time.monotonic() + 30
        while self.server is None or not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self._thread.join(30)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine in the server's loop (backends are bound to it)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def key(self, tenant: str, user: str, scopes: list[str], **limits: Any) -> str:
        assert self.runtime is not None
        plaintext, _ = self.call(self.runtime.keys.create_key(tenant, user, scopes, **limits))
        return plaintext

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)


@dataclass
class Keys:
    admin: str
    alice: str
    bob: str
    eve: str
    writer_only: str


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The embedded default: SQLite sessions, keys and quotas, in-memory bus, offline model."""
    data_dir = tmp_path_factory.mktemp("server-sqlite")
    server = LiveServer(Settings(state_backend="sqlite", data_dir=data_dir)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Memory backends and an offline model that takes 40 ms per token (streams long enough to interrupt)."""
    settings = Settings(state_backend="memory", offline_token_latency_ms=40, data_dir=tmp_path_factory.mktemp("slow"))
    server = LiveServer(settings).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def keys(live: LiveServer) -> Keys:
    return Keys(
        admin=live.key("acme", "root", ["admin"]),
        alice=live.key("acme", "alice", ["agents:run:*", "sessions", "usage"]),
        bob=live.key("acme", "bob", ["agents:run:*", "sessions", "usage"]),
        eve=live.key("evil", "eve", ["agents:run:*", "admin"]),
        writer_only=live.key("acme", "carol", ["agents:run:writer"]),
    )


def parse_sse(text: str) -> list[tuple[str, str]]:
    """``(event name, data)`` pairs of an SSE body, per the spec's line rules (name ``message`` if absent)."""
    events: list[tuple[str, str]] = []
    name, data = "message", []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line:
            if data:
                events.append((name, "\n".join(data)))
            name, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
    return events


def sse_json(text: str) -> list[tuple[str, Any]]:
    return [(name, data if data == "[DONE]" else json.loads(data)) for name, data in parse_sse(text)]


class ServeProcess:
    """``agent-runtime serve`` as a subprocess (for multi-worker and signal tests).

    Its stdout and stderr are read by threads as it writes them: an undrained pipe fills (64 KiB of
    warnings) and blocks the server in ``write``, which then never shuts down.
    """

    def __init__(self, env: dict[str, str], workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cli = Path(sys.executable).parent / "agent-runtime"
        args = [str(cli), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)]
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_RUNTIME_", "PROMETHEUS_"))}
        full_env.update(env)
        self.proc = subprocess.Popen(args, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stdout_lines: list[str] = []
        self.stderr_lines: collections.deque[str] = collections.deque(maxlen=500)
        self._printed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._drain, args=(self.proc.stdout, self.stdout_lines), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr, self.stderr_lines), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _drain(self, stream: Any, lines: Any) -> None:
        for line in stream:
            with self._printed:
                lines.append(line.rstrip("\n"))
                self._printed.notify_all()
        with self._printed:
            self._printed.notify_all()

    def stderr_tail(self, lines: int = 40) -> str:
        return "\n".join(list(self.stderr_lines)[-lines:])

    def stdout_text(self) -> str:
        """Everything printed on stdout (complete once the process exited)."""
        for reader in self._readers:
            reader.join(10)
        return "\n".join(self.stdout_lines)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.stdout_text()}\n{self.stderr_tail()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not become ready: {self.stderr_tail()}")

    def admin_key(self, timeout: float = 60) -> str:
        """The first-start admin key: the line after the announcement on stdout."""
        deadline = time.monotonic() + timeout
        with self._printed:
            while len(self.stdout_lines) < 3 and self.proc.poll() is None and time.monotonic() < deadline:
                self._printed.wait(0.5)
            lines = list(self.stdout_lines[:3])
        key = next((line.strip() for line in lines if line.startswith("ar_")), None)
        assert key, f"no admin key printed: {lines}"
        return key

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then SIGKILL after ``timeout`` s; a slow shutdown shows what the server printed last."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"server still running {timeout} s after SIGTERM; its last output:\n{self.stderr_tail()}")
            self.proc.kill()
            return self.proc.wait()
