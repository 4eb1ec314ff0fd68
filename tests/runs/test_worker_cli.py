"""``agent-runtime worker`` as a real process (no HTTP): it executes the runs queued in the SQLite
run store it shares with the test, at most ``--max-concurrent-runs`` at a time, and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_runtime.runs import Run
from agent_runtime.runs.sqlite import SQLiteRunRecordStore
from agent_runtime.settings import Settings
from agent_runtime.types import Principal

pytestmark = pytest.mark.timeout(120)


def queued(index: int) -> Run:
    principal = Principal(tenant=f"t{index % 2}", user="ana", scopes=frozenset({"agents:run:*"}))
    return Run(
        run_id=f"run_cli_{index}",
        tenant=principal.tenant,
        user="ana",
        template="writer",
        input="a poem",
        background=True,
        principal=principal,
    )


async def drive(path: Path, proc: subprocess.Popen[bytes]) -> tuple[list[Run], int]:
    store = SQLiteRunRecordStore(path)
    try:
        for index in range(4):
            await store.create(queued(index))
        most = 0
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the worker exited"
            runs = [await store.get(f"run_cli_{index}") for index in range(4)]
            most = max(most, sum(1 for run in runs if run is not None and run.status == "running"))
            if all(run is not None and run.done for run in runs):
                return [run for run in runs if run is not None], most
            await asyncio.sleep(0.02)
        pytest.fail("the worker did not finish the queued runs")
    finally:
        await store.aclose()


def test_the_worker_command_executes_queued_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_RUNTIME_")}
    env |= {
        "AGENT_RUNTIME_DATA_DIR": str(tmp_path),
        "AGENT_RUNTIME_OFFLINE_TOKEN_LATENCY_MS": "20",
        "AGENT_RUNTIME_RUNS__SCAN_S": "0.1",
    }
    cli = Path(sys.executable).parent / "agent-runtime"
    out, err = open(tmp_path / "out", "w"), open(tmp_path / "err", "w")
    proc = subprocess.Popen([str(cli), "worker", "--max-concurrent-runs", "2"], env=env, stdout=out, stderr=err)
    try:
        runs, most = asyncio.run(drive(Settings(data_dir=tmp_path).sqlite_path, proc))
        assert [run.status for run in runs] == ["success"] * 4, [run.error for run in runs]
        assert all(run.output and run.attempts == 1 for run in runs)
        assert most == 2  # the limit is used, never exceeded
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close()
        err.close()
