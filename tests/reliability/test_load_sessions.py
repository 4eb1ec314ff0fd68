"""Concurrent session runs through a served worker on the embedded default (SQLite) backend.

800 runs spread over 50 sessions by concurrent HTTP clients: every run must answer 200. A session
that is busy answers 409 (the session lock); the client then retries that run, as a client of a
busy session would. Afterwards each session holds exactly the turns that answered 200.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import record, size

SESSIONS = 50
RUNS = size(800, 4_000)


async def _load(url: str, key: str, concurrency: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(RUNS):
        queue.put_nowait(i)
    statuses: dict[int, int] = {}
    busy = 0
    answered: dict[str, int] = {}

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal busy
        while not queue.empty():
            i = queue.get_nowait()
            sid = f"load-{i % SESSIONS}"
            body = {"template": "writer", "input": f"turn {i}", "session_id": sid}
            while True:
                response = await http.post("/v1/runs", json=body)
                if response.status_code != 409:
                    break
                busy += 1
                await asyncio.sleep(0.005)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == 200:
                answered[sid] = answered.get(sid, 0) + 1

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        for n in range(SESSIONS):
            created = await http.post("/v1/sessions", json={"session_id": f"load-{n}"})
            assert created.status_code == 201, created.text
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    return {"statuses": statuses, "busy_retries": busy, "answered": answered}


@pytest.mark.parametrize("concurrency", [2, 16, 64])
def test_concurrent_session_runs_on_sqlite_all_succeed(worker_factory: Any, concurrency: int) -> None:
    worker = worker_factory({"AGENT_RUNTIME_STATE_BACKEND": "sqlite"})
    outcome = asyncio.run(_load(worker.url, worker.admin_key, concurrency))
    record("sessions_sqlite_concurrent", concurrency=concurrency, ok=outcome["statuses"].get(200, 0), runs=RUNS)
    assert outcome["statuses"] == {200: RUNS}, outcome["statuses"]

    headers = {"Authorization": f"Bearer {worker.admin_key}"}
    for sid, turns in list(outcome["answered"].items())[:5]:
        messages = httpx.get(f"{worker.url}/v1/sessions/{sid}/messages", headers=headers, timeout=10).json()
        humans = [m for m in messages["data"] if m["role"] in ("user", "human")]
        assert len(humans) == turns, (sid, turns, len(humans))
    # still serving afterwards: the lock of every session is free
    body = {"template": "writer", "input": "after the load", "session_id": "load-0"}
    assert httpx.post(f"{worker.url}/v1/runs", json=body, headers=headers, timeout=10).status_code == 200


def test_session_lock_recovers_after_the_database_was_locked(worker_factory: Any) -> None:
    """Another process holds the write lock past the busy timeout: session runs fail with 503 while
    it does, and the very next run after it lets go succeeds (the wedge kept failing until restart)."""
    worker = worker_factory({"AGENT_RUNTIME_STATE_BACKEND": "sqlite"})
    headers = {"Authorization": f"Bearer {worker.admin_key}"}
    url = worker.url
    assert httpx.post(f"{url}/v1/sessions", json={"session_id": "held"}, headers=headers).status_code == 201
    body = {"template": "writer", "input": "hello", "session_id": "held"}
    assert httpx.post(f"{url}/v1/runs", json=body, headers=headers, timeout=30).status_code == 200

    blocker = sqlite3.connect(worker.data_dir / "agent-runtime.sqlite3", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        refused = httpx.post(f"{url}/v1/runs", json=body, headers=headers, timeout=60)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "backend_unavailable"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    for _ in range(3):
        again = httpx.post(f"{url}/v1/runs", json=body, headers=headers, timeout=30)
        assert again.status_code == 200, again.text
