"""A PostgreSQL server owned by a test, so that it can be SIGKILLed and restarted.

``initdb`` and ``postgres`` from ``/usr/lib/postgresql/<version>/bin`` run as the ``postgres`` user
(the server refuses root), in a temporary directory owned by it, on a free port, trust auth on
loopback only. The server runs in a process group of its own: ``kill()`` SIGKILLs the postmaster
and every backend at once (a crash: the restart replays the WAL).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for_port


def _in_group(process: object, group: int) -> bool:
    try:
        return os.getpgid(process.pid) == group  # type: ignore[attr-defined]
    except ProcessLookupError:
        return False


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return found[-1]


class PgServer:
    def __init__(self) -> None:
        try:
            self.user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("no `postgres` system user: install the postgresql package")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ar-pg-"))
        os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.data = self.dir / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_postgres([_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"])

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, args: list[str]) -> None:
        out = subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {out.stderr.decode()[-2000:]}")

    def start(self) -> None:
        args = [_bin("postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.dir)]
        args += ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "shared_buffers=32MB"]
        log = open(self.dir / "server.log", "ab")
        self.proc = subprocess.Popen(
            ["runuser", "-u", "postgres", "--", *args], stdout=log, stderr=log, start_new_session=True
        )
        log.close()
        wait_for_port(self.port, what="postgres", proc=self.proc, timeout=30)
        self._wait_accepting()

    def _wait_accepting(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=1):
                    return
            except psycopg.OperationalError:  # "the database system is starting up" (crash recovery)
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _signal_group(self, sig: signal.Signals) -> None:
        """``sig`` to the postmaster's process group (its backends), and to ``runuser`` above it."""
        import psutil

        assert self.proc is not None
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        group = os.getpgid(pid)
        os.killpg(group, sig)
        if sig == signal.SIGKILL:
            psutil.wait_procs([p for p in psutil.process_iter() if _in_group(p, group)], timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the postmaster and all its backends."""
        if self.proc is not None:
            self._signal_group(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
