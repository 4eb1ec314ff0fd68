"""A worker killed with SIGKILL mid-run (a real subprocess on a real redis-server): the run ends up
``abandoned`` (heartbeat + reaper), its quota reservation is charged by policy, ``run.failed`` with
code ``abandoned`` is published, the session lock frees itself, and the conversation's checkpoint is
never half-written."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from agent_runtime.limits.quota.base import Quota, QuotaLimits
from agent_runtime.orchestration.runs import MemoryRunStore, RunReaper, RunRecord, RunTracker
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext
from tests.conftest import RedisServer
from tests.reliability._faults import redis_settings

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parents[2]
DAILY = 1_000_000


def _settings(url: str, tmp: Path, **limits: Any) -> Settings:
    return redis_settings(
        url,
        tmp,
        event_bus="redis",
        offline_token_latency_ms=20,
        reliability={
            "run_heartbeat_s": 0.2,
            "run_registry_flush_s": 0.05,
            "run_abandon_after_s": 1.0,
            "breaker_cooldown_s": 0.3,
        },
        limits={"run_timeout_s": 60, "session_lease_s": 1.0, **limits},
    )


class Child:
    """``python -m tests.reliability._faults worker ...``, killed by the test."""

    def __init__(self, settings: Settings, key: str, session: str, mode: str) -> None:
        args = [sys.executable, "-m", "tests.reliability._faults", "worker", settings.model_dump_json(), key, session]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_RUNTIME_")}
        self.proc = subprocess.Popen([*args, mode], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)

    def wait_for(self, prefix: str) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line.strip()
        raise AssertionError(f"worker exited with {self.proc.wait()} before printing {prefix!r}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        if child.proc.poll() is None:
            child.kill()


def _quota(runtime: Runtime, key_id: str) -> list[Quota]:
    return [Quota(f"{{acme}}:key:{key_id}", QuotaLimits(daily_tokens=DAILY))]


def _events(url: str, stream: str) -> list[dict[str, Any]]:
    raw: Any = redis.Redis.from_url(url)
    try:
        return [json.loads(fields[b"e"]) for _, fields in raw.xrange(stream)]
    finally:
        raw.close()


async def _registered(runtime: Runtime, key: str) -> RunRecord:
    """The run's record, once its worker's tracker wrote it (runs are registered after a short flush
    interval: one killed sooner is not in the registry, by design)."""
    assert runtime.runs is not None
    for _ in range(100):
        record = await runtime.runs.store.get(key)
        if record is not None:
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {key} never appeared in the run registry")


async def test_sigkill_mid_stream_abandons_the_run_and_frees_everything(
    fault_redis: RedisServer, tmp_path: Path, children: list[Child]
) -> None:
    settings = _settings(fault_redis.url, tmp_path)
    runtime = await Runtime.create(settings)
    key, record = await runtime.keys.create_key(
        "acme", "ada", ["agents:run:*", "sessions", "usage"], daily_tokens=DAILY
    )
    try:
        child = Child(settings, key, "chat-1", "stream")
        children.append(child)
        run_id = child.wait_for("STREAMING").split()[1]
        assert runtime.runs is not None
        live = await _registered(runtime, f"{run_id}:1")
        assert live.status == "running" and live.reservation is not None
        [before] = await runtime.security.ledger.status(_quota(runtime, record.key_id))
        assert before.reserved == live.reservation["tokens"] > 0

        child.kill()
        time.sleep(1.1)  # past run_abandon_after_s: its heartbeat (every 0.2 s) stopped with it
        reaped = await runtime.reap_abandoned_runs()
        assert [r.run_id for r in reaped] == [run_id]
        assert (await runtime.runs.store.get(f"{run_id}:1")).status == "abandoned"  # type: ignore[union-attr]
        assert await runtime.reap_abandoned_runs() == []  # claimed exactly once

        # policy "reserved": the reservation became spend, nothing is left reserved
        [after] = await runtime.security.ledger.status(_quota(runtime, record.key_id))
        assert after.reserved == 0 and after.spent == before.spent + before.reserved

        failed = [e for e in _events(fault_redis.url, runtime.event_bus.stream) if e["type"] == "run.failed"]
        assert [(e["run_id"], e["payload"]["error_code"]) for e in failed] == [(run_id, "abandoned")]

        # the checkpoint holds whole steps only: the first turn, maybe the killed turn's input, no partial answer
        messages = await runtime.sessions.get_messages("chat-1", tenant="acme", user_id="ada")
        roles = [m["role"] for m in messages]
        assert roles in (["user", "assistant"], ["user", "assistant", "user"]), roles
        assert messages[0]["content"] == "my name is Ada" and messages[1]["content"]

        # the dead worker's session lease expired by itself (1 s): a "fail fast" lock gets it at once
        runtime.sessions.busy_policy = "fail"
        result = await runtime.executor.execute_async(
            AgentContext(input="what is my name?", template="writer", session_id="chat-1", credentials=key)
        )
        assert result.status == "completed"
        roles = [m["role"] for m in await runtime.sessions.get_messages("chat-1", tenant="acme", user_id="ada")]
        assert roles[-2:] == ["user", "assistant"]
    finally:
        await runtime.aclose()


async def test_checkpoints_survive_sigkill_at_random_points_whole(
    fault_redis: RedisServer, tmp_path: Path, children: list[Child]
) -> None:
    settings = _settings(fault_redis.url, tmp_path)
    fast = Settings.model_validate(settings.model_dump() | {"offline_token_latency_ms": 0.0})
    runtime = await Runtime.create(settings)
    key, _ = await runtime.keys.create_key("acme", "bo", ["agents:run:*", "sessions", "usage"])
    rng = random.Random(9)
    try:
        previous: list[dict[str, Any]] = []
        for _ in range(3):
            child = Child(fast, key, "burst", "burst")
            children.append(child)
            child.wait_for("READY")
            time.sleep(rng.uniform(0.05, 0.4))  # somewhere inside a stream of checkpoint writes
            child.kill()
            messages = await runtime.sessions.get_messages("burst", tenant="acme", user_id="bo")
            assert messages[: len(previous)] == previous  # whole turns only ever added, never lost or torn
            roles = [m["role"] for m in messages]
            assert roles[0] == "user" and all(m["content"] for m in messages)
            # an answer always follows its question; a killed turn may leave its question unanswered
            assert all(not (a == b == "assistant") for a, b in itertools.pairwise(roles)), roles
            previous = messages
        time.sleep(1.1)
        await runtime.reap_abandoned_runs()
        result = await runtime.executor.execute_async(
            AgentContext(input="still there?", template="writer", session_id="burst", credentials=key)
        )
        assert result.status == "completed"
    finally:
        await runtime.aclose()


async def test_live_runs_keep_their_heartbeat_and_are_never_reaped() -> None:
    """In process, with a tiny heartbeat: a run longer than the abandon timeout stays ``running``."""
    store = MemoryRunStore()
    tracker = RunTracker(store, heartbeat_s=0.05, abandon_after_s=0.15)
    reaper = RunReaper(store, abandon_after_s=0.15)
    context = AgentContext(input="x", template="writer")
    key = await tracker.started(context)
    assert key is not None
    for _ in range(6):
        await asyncio.sleep(0.1)
        assert await reaper.reap() == []
    await tracker.finished(key)
    assert await store.get(key) is None and tracker.inflight == 0
    await tracker.aclose()
