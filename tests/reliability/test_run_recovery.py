"""Crash recovery of background runs against served workers (``agent-runtime serve`` subprocesses, httpx).

Redis: two workers share a real redis-server; the one executing a background run is SIGKILLed in the
middle of it (after its tool step was checkpointed, during the last model call), and the other takes it
over once its lease expires, within ``lease + 2 s``, continuing from the checkpoint. SQLite: the only
process is SIGKILLed and restarted on the same files. In both the session holds the turn exactly once,
and the usage ledger has one entry per attempt whose sum equals an uninterrupted run's usage (no step
charged twice, none lost).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_runtime.orchestration.middleware.defaults import open_security_stores
from agent_runtime.settings import Settings
from tests.conftest import RedisServer
from tests.helpers import until_sync
from tests.reliability.conftest import Worker, record

pytestmark = pytest.mark.timeout(180)

LEASE_S = 1.5
INPUT = "please compute 12*7+3 with the calculator"
ANSWER = "12*7+3 = 87."
ENV = {
    "AGENT_RUNTIME_OFFLINE_TOKEN_LATENCY_MS": "1500",  # the answer's model call lasts ~6 s: seen running on a busy host
    "AGENT_RUNTIME_RUNS__LEASE_S": str(LEASE_S),
    "AGENT_RUNTIME_RUNS__HEARTBEAT_S": "0.5",
    "AGENT_RUNTIME_RUNS__SCAN_S": "0.2",
    "AGENT_RUNTIME_LIMITS__SESSION_LEASE_S": str(LEASE_S),
}


def make_key(settings: Settings, tenant: str) -> str:
    async def go() -> str:
        security = open_security_stores(settings)
        try:
            scopes = ["agents:run:*", "sessions", "usage"]
            return (await security.keys.create_key(tenant, "ann", scopes, daily_tokens=100_000))[0]
        finally:
            await security.aclose()

    return asyncio.run(go())


def client(worker: Worker, key: str) -> httpx.Client:
    return httpx.Client(base_url=worker.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def roles(http: httpx.Client, session: str, *, missing_ok: bool = False) -> list[str]:
    answer = http.get(f"/v1/sessions/{session}/messages")
    if missing_ok and answer.status_code == 404:  # a temporary session not created yet
        return []
    assert answer.status_code == 200, answer.text
    return [m["role"] for m in answer.json()["data"]]


def usage_totals(http: httpx.Client) -> dict[str, Any]:
    """The usage ledger's totals, with the key's daily token quota spent and reserved."""
    answer = http.get("/v1/usage")
    assert answer.status_code == 200, answer.text
    (quota,) = [q for q in answer.json()["quotas"] if q["kind"] == "daily_tokens" and q["scope"] == "key"]
    return dict(answer.json()["totals"]) | {"quota_spent": quota["spent"], "quota_reserved": quota["reserved"]}


def start_run(http: httpx.Client, *, in_session: bool = True) -> tuple[str | None, str]:
    """A background run (in a new session, or stateless); returns once its tool step is in its checkpoint."""
    session = http.post("/v1/sessions", json={"template": "analyst"}).json()["id"] if in_session else None
    body = {"template": "analyst", "input": INPUT, "background": True, "session_id": session}
    queued = http.post("/v1/runs", json={k: v for k, v in body.items() if v is not None})
    assert queued.status_code == 202, queued.text
    run_id = queued.json()["run_id"]
    thread = session or run_id  # a stateless background run runs on a temporary session named after it
    until_sync(lambda: "tool" in roles(http, thread, missing_ok=True), "the tool step to be checkpointed")
    run = http.get(f"/v1/runs/{run_id}").json()
    assert run["status"] == "running" and run["attempts"] == 1, run
    return session, run_id


def check_recovered(
    http: httpx.Client, reference: httpx.Client, session: str | None, run_id: str, survivor: int
) -> None:
    done = http.get(f"/v1/runs/{run_id}/wait", params={"timeout": 60}).json()
    assert done["status"] == "success" and done["output"] == ANSWER, done
    assert done["attempts"] == 2 and done["worker"].endswith(f":{survivor}"), done
    if session is None:  # the temporary session went with the run's end
        assert http.get(f"/v1/sessions/{run_id}").status_code == 404
    else:  # the turn exactly once: the input, the tool call, its result, the answer
        assert Counter(roles(http, session)) == {"user": 1, "assistant": 2, "tool": 1}
    # one usage entry per attempt (the dead one's finished model call, the resumed one's), summing to
    # what the same run costs uninterrupted
    plain = reference.post("/v1/runs", json={"template": "analyst", "input": INPUT})
    assert plain.status_code == 200 and plain.json()["output"] == ANSWER, plain.text
    spent, expected = usage_totals(http), usage_totals(reference)
    assert expected["runs"] == 1 and spent["runs"] == 2, (spent, expected)
    for column in ("input_tokens", "output_tokens", "total_tokens", "quota_spent"):
        assert spent[column] == expected[column] > 0, (column, spent, expected)
    assert spent["quota_reserved"] == 0  # the dead attempt's reservation did not stay behind
    assert done["usage"]["total_tokens"] == expected["total_tokens"]


@pytest.mark.redis
def test_a_killed_workers_run_is_finished_by_another_worker(
    worker_factory: Any, fault_redis: RedisServer, tmp_path: Path
) -> None:
    # a private server: no process of another test may be a consumer of this run queue
    redis_url = fault_redis.url
    env = ENV | {"AGENT_RUNTIME_STATE_BACKEND": "redis", "AGENT_RUNTIME_REDIS_URL": redis_url}
    first, second = worker_factory(env, name="a"), worker_factory(env, name="b")
    settings = Settings(state_backend="redis", redis_url=redis_url, data_dir=tmp_path)
    key, other = make_key(settings, "tenant-a"), make_key(settings, "tenant-ref")
    with client(first, key) as a:
        session, run_id = start_run(a)  # created on A; either worker may be executing it
        executing = a.get(f"/v1/runs/{run_id}").json()["worker"]
    victim, survivor = (first, second) if executing.endswith(f":{first.proc.pid}") else (second, first)
    victim.proc.kill()
    killed_at = time.monotonic()
    victim.proc.wait()
    with client(survivor, key) as b, client(survivor, other) as reference:

        def taken_over() -> bool:
            run = b.get(f"/v1/runs/{run_id}").json()
            return bool(run["worker"].endswith(f":{survivor.proc.pid}") and run["status"] in ("running", "success"))

        until_sync(taken_over, "the other worker to take the run over")
        takeover_s = time.monotonic() - killed_at
        assert takeover_s <= LEASE_S + 2, takeover_s
        check_recovered(b, reference, session, run_id, survivor.proc.pid)
        assert b.get(f"/v1/runs/{run_id}").json()["recoveries"] == 1
        metrics = httpx.get(survivor.url + "/metrics").text
        assert "agent_runtime_run_recoveries_total 1.0" in metrics
    record("run_recovery_redis", takeover_s=round(takeover_s, 3), lease_s=LEASE_S)


@pytest.mark.parametrize("in_session", [True, False], ids=["session", "stateless"])
def test_a_killed_only_process_resumes_the_run_after_its_restart(
    worker_factory: Any, tmp_path: Path, in_session: bool
) -> None:
    data = tmp_path / "shared"
    env = ENV | {"AGENT_RUNTIME_STATE_BACKEND": "sqlite", "AGENT_RUNTIME_DATA_DIR": str(data)}
    first = worker_factory(env, name="first")
    settings = Settings(state_backend="sqlite", data_dir=data)
    key, other = make_key(settings, "tenant-a"), make_key(settings, "tenant-ref")
    with client(first, key) as a:
        session, run_id = start_run(a, in_session=in_session)
    first.proc.kill()
    first.proc.wait()
    second = worker_factory(env, name="second")
    restarted_at = time.monotonic()
    with client(second, key) as b, client(second, other) as reference:
        until_sync(
            lambda: b.get(f"/v1/runs/{run_id}").json()["attempts"] == 2, "the restarted process to take the run over"
        )
        takeover_s = time.monotonic() - restarted_at
        assert takeover_s <= LEASE_S + 2, takeover_s
        check_recovered(b, reference, session, run_id, second.proc.pid)
    record("run_recovery_sqlite", takeover_s=round(takeover_s, 3), lease_s=LEASE_S, in_session=in_session)
