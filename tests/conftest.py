"""Shared fixtures: real servers started by the tests, on free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
    """Terminate a server the tests started; kill it if it does not stop in ``timeout`` seconds."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for_port(
    port: int,
    *,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    timeout: float = 15.0,
    hello: bytes = b"",
    expect: bytes = b"",
) -> None:
    """Wait until ``port`` accepts a connection (and answers ``hello`` with ``expect``), or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                if not hello:
                    return
                conn.sendall(hello)
                if conn.recv(16).startswith(expect):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start on port {port}")


class RedisServer:
    """A real ``redis-server`` owned by the tests, so they can stop and restart it to test faults."""

    def __init__(self, *, appendonly: bool = False) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ar-redis-"))
        self.appendonly = appendonly
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed; `make test` installs it (apt-get install redis-server)")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir), "--save", ""]
        args += ["--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, what="redis-server", proc=self.proc, hello=b"PING\r\n", expect=b"+PONG")

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def flushall(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            client.flushall()
        finally:
            client.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole test session (flushed per test by ``redis_url``)."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.flushall()
    return redis_server.url


@pytest.fixture
def fault_redis() -> Iterator[RedisServer]:
    """A private redis-server with appendonly on, for tests that kill and restart it."""
    server = RedisServer(appendonly=True)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


PG_ADMIN_URL = os.environ.get("AGENT_RUNTIME_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
"""The machine's PostgreSQL (trust auth); each test session works in a database of its own."""
_KEPT_TABLES = ("ar_schema_migrations", "checkpoint_migrations")


class PostgresDatabase:
    """A uniquely named database on the machine's server, created for this test session and dropped after."""

    def __init__(self, admin_url: str = PG_ADMIN_URL) -> None:
        import uuid

        self.admin_url = admin_url
        self.name = f"ar_test_{uuid.uuid4().hex[:12]}"
        self.url = admin_url.rsplit("/", 1)[0] + f"/{self.name}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)

    def create(self) -> None:
        try:
            self._admin(f'CREATE DATABASE "{self.name}"')
        except Exception as exc:
            pytest.fail(f"PostgreSQL at {self.admin_url} is not reachable ({exc}); `make test` needs it running")

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def truncate(self) -> None:
        """Empty every table (the schema and its migration versions stay)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
            tables = [f'"{name}"' for (name,) in rows if name not in _KEPT_TABLES]
            if tables:
                conn.execute(f"TRUNCATE {', '.join(tables)}")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[PostgresDatabase]:
    database = PostgresDatabase()
    database.create()
    yield database
    database.drop()


@pytest.fixture
def postgres_url(postgres_database: PostgresDatabase) -> str:
    """The session's database, emptied for this test."""
    postgres_database.truncate()
    return postgres_database.url


@pytest.fixture(autouse=True)
def _no_real_model_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach a real LLM provider: no keys, offline model by default."""
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LANGSMITH_API_KEY", "LANGSMITH_TRACING"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("AGENT_RUNTIME_"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _restore_runtime_loggers() -> Iterator[None]:
    """Tests that configure ``agent_runtime`` loggers (level, JSON handler, propagation) must not change
    what later tests log: a leaked INFO level makes pytest keep a record of every later run."""
    import logging

    def runtime_loggers() -> dict[str, logging.Logger]:
        names = [n for n in logging.root.manager.loggerDict if n == "agent_runtime" or n.startswith("agent_runtime.")]
        return {n: logging.getLogger(n) for n in names}

    saved = {n: (lg.level, list(lg.handlers), lg.propagate, lg.disabled) for n, lg in runtime_loggers().items()}
    yield
    for name, logger in runtime_loggers().items():
        level, handlers, propagate, disabled = saved.get(name, (logging.NOTSET, [], True, False))
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.disabled = disabled
