"""Shared pieces of the reliability suite: the size knob, the figures recorder, a served worker.

``RELIABILITY_SCALE=full`` (set by ``make soak`` / ``benchmarks/soak.py``) runs the long sizes;
the default is the fast version that ``make test`` runs. ``RELIABILITY_REPORT=<file>`` makes the
tests append their figures (counts, runs/s, p99, RSS) to that file as JSON lines, which the soak
script turns into RELIABILITY.md.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import free_port

FULL = os.environ.get("RELIABILITY_SCALE", "fast") == "full"


def size(fast: int, full: int) -> int:
    """The fast figure for ``make test``, the full one for ``make soak``."""
    return full if FULL else fast


def record(name: str, **figures: Any) -> None:
    """Append one figure set to ``$RELIABILITY_REPORT`` (no-op when unset)."""
    path = os.environ.get("RELIABILITY_REPORT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"name": name, "scale": "full" if FULL else "fast", **figures}, default=str) + "\n")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


class Worker:
    """``agent-runtime serve`` (one worker) as a subprocess; its stdout and stderr go to files, so a
    chatty server never blocks on a full pipe and the tests can scan everything it logged."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path, self.stderr_path = tmp / "server.out", tmp / "server.err"
        self.data_dir = tmp / "data"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_RUNTIME_", "PROMETHEUS_"))}
        self.env |= {"AGENT_RUNTIME_DATA_DIR": str(self.data_dir), **env}
        cli = Path(sys.executable).parent / "agent-runtime"
        args = [str(cli), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(args, env=self.env, stdout=out, stderr=err)
        self.process = psutil.Process(self.proc.pid)
        self.admin_key = self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.stderr_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    keys = [line for line in self.stdout_path.read_text().splitlines() if line.startswith("ar_")]
                    return keys[0] if keys else ""
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def rss(self) -> int:
        return int(self.process.memory_info().rss)

    def logs(self) -> str:
        """Everything the server wrote, minus the one intended print of the first-start admin key."""
        out = [line for line in self.stdout_path.read_text().splitlines() if line != self.admin_key]
        return "\n".join(out) + "\n" + self.stderr_path.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def worker_factory(tmp_path: Path) -> Any:
    """Start served workers with extra environment; all are stopped at the end of the test."""
    started: list[Worker] = []

    def start(env: dict[str, str], name: str = "w") -> Worker:
        directory = tmp_path / f"{name}{len(started)}"
        directory.mkdir()
        worker = Worker(directory, env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
