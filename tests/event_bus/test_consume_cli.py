"""``agent-runtime consume`` as a real worker process against a real redis-server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent_runtime.cli import main
from agent_runtime.event_bus import Event, make_event
from agent_runtime.event_bus.redis import RedisEventBus

from .conftest import eventually

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]

RULES = """\
triggers:
  - name: uploads
    event: document.uploaded
    filter: [{path: payload.text, exists: true}]
    template: analyst
    input: "{payload.text}"
"""


class Worker:
    """``agent-runtime consume`` in a subprocess, its stderr in a file we can poll."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            code = "from agent_runtime.cli import main; main()"
            self.proc = subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdout=out, stderr=out)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.proc.poll() is not None:
                pytest.fail(f"worker exited with {self.proc.returncode}: {self.output()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"worker never printed {text!r}: {self.output()[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def env(redis_url: str, tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_RUNTIME_")}
    return {
        **clean,
        "AGENT_RUNTIME_EVENT_BUS": "redis",
        "AGENT_RUNTIME_REDIS_URL": redis_url,
        "AGENT_RUNTIME_STATE_BACKEND": "memory",
        "AGENT_RUNTIME_DATA_DIR": str(tmp_path / "data"),
        "AGENT_RUNTIME_EVENTS__NAMESPACE": f"cli{uuid.uuid4().hex[:8]}",
    }


@pytest.fixture
def worker_factory(tmp_path: Path, env: dict[str, str]) -> Iterator[list[Worker]]:
    workers: list[Worker] = []
    yield workers
    for worker in workers:
        worker.stop()


async def test_consume_runs_triggers_and_stops_cleanly_on_sigterm(
    tmp_path: Path, env: dict[str, str], worker_factory: list[Worker]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    worker = Worker(["consume", "--group", "triggers", "--triggers", str(rules)], env, tmp_path / "worker.log")
    worker_factory.append(worker)

    bus = RedisEventBus(env["AGENT_RUNTIME_REDIS_URL"], namespace=env["AGENT_RUNTIME_EVENTS__NAMESPACE"])
    completed: list[Event] = []

    async def record(event: Event) -> None:
        completed.append(event)

    await bus.subscribe("test-observer", record, types=["run.completed"])
    worker.wait_for("consuming group triggers")
    upload = make_event("document.uploaded", {"text": "what is 17*23+4?"})
    await bus.publish(upload)
    await eventually(lambda: len(completed) == 1, timeout=30)
    (event,) = completed
    assert "395" in event.payload["output"] and event.payload["template"] == "analyst"
    assert (event.depth, event.correlation_id, event.tenant) == (1, upload.id, "default")

    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=10) == 0, worker.output()[-3000:]
    assert "stopped:" in worker.output() and "completed=1" in worker.output()
    await bus.aclose()


async def test_rules_come_from_settings_too(tmp_path: Path, env: dict[str, str], worker_factory: list[Worker]) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[triggers]]\nname = "t"\nevent = "x.y"\ntemplate = "writer"\ninput = "{payload.text}"\n')
    worker = Worker(["consume", "--group", "g"], {**env, "AGENT_RUNTIME_TRIGGERS_FILE": str(rules)}, tmp_path / "w.log")
    worker_factory.append(worker)
    worker.wait_for("triggers: t")
    worker.proc.send_signal(signal.SIGINT)
    assert worker.proc.wait(timeout=10) == 0, worker.output()[-3000:]


def test_consume_without_rules_or_with_bad_rules_fails_clearly(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["consume", "--group", "g"], env={"AGENT_RUNTIME_STATE_BACKEND": "memory"})
    assert result.exit_code != 0 and "no trigger rules" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("triggers:\n  - name: x\n    event: a.b\n    template: analyst\n    input: '{payload.x!r}'\n")
    result = runner.invoke(main, ["consume", "--group", "g", "--triggers", str(bad)])
    assert result.exit_code != 0 and "trigger 'x' is invalid" in result.output
