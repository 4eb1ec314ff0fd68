"""Concurrent session runs through a served worker on the embedded default (SQLite) backend.

800 runs spread over 50 sessions by concurrent HTTP clients: every run must answer 200. A session
that is busy answers 409 (the session lock); the client then retries that run, as a client of a
busy session would. Afterwards each session holds exactly the turns that answered 200.
"""

from __future__ import annotations

import asyncio
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
            else:
                statuses.setdefault(-1, 0)
                print("failed:", response.status_code, response.text[:300])

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
    record("sessions_sqlite_concurrent", concurrency=concurrency, **outcome["statuses"])
    assert outcome["statuses"] == {200: RUNS}, outcome["statuses"]

    headers = {"Authorization": f"Bearer {worker.admin_key}"}
    for sid, turns in list(outcome["answered"].items())[:5]:
        messages = httpx.get(f"{worker.url}/v1/sessions/{sid}/messages", headers=headers, timeout=10).json()
        humans = [m for m in messages["data"] if m["role"] in ("user", "human")]
        assert len(humans) == turns, (sid, turns, len(humans))
    # still serving afterwards: the lock of every session is free
    body = {"template": "writer", "input": "after the load", "session_id": "load-0"}
    assert httpx.post(f"{worker.url}/v1/runs", json=body, headers=headers, timeout=10).status_code == 200
