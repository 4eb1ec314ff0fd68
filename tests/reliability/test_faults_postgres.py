"""PostgreSQL SIGKILLed under live HTTP traffic, then restarted: the served worker answers fast 503s
while it is down (readiness red), serves again once it is back without being restarted itself, and
the usage ledger and the quota hold exactly the tokens the clients were told (nothing acknowledged
is lost: settles and usage rows wait in the worker's accounting journal)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from tests.helpers import until
from tests.postgres._server import PgServer
from tests.reliability.conftest import pct, record

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]
CLIENTS = 8
DAILY = 50_000_000


@dataclass
class Answer:
    sent: float
    took: float
    status: int
    tokens: int
    body: str


def worker_env(url: str) -> dict[str, str]:
    return {
        "AGENT_RUNTIME_STATE_URL": url,
        "AGENT_RUNTIME_OFFLINE_TOKEN_LATENCY_MS": "5",
        "AGENT_RUNTIME_API_KEY_CACHE_S": "600",
        "AGENT_RUNTIME_POSTGRES__POOL_TIMEOUT": "1",
        "AGENT_RUNTIME_POSTGRES__CONNECT_TIMEOUT": "1",
        "AGENT_RUNTIME_POSTGRES__STATEMENT_TIMEOUT_MS": "2000",
        "AGENT_RUNTIME_RELIABILITY__BREAKER_FAILURES": "3",
        "AGENT_RUNTIME_RELIABILITY__BREAKER_COOLDOWN_S": "0.3",
    }


@pytest.fixture
def fault_postgres() -> Iterator[PgServer]:
    """A private PostgreSQL server the test may SIGKILL and restart."""
    server = PgServer()
    server.start()
    yield server
    server.remove()


class Traffic:
    """``CLIENTS`` loops posting runs until stopped, every answer kept."""

    def __init__(self, client: httpx.AsyncClient, key: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {key}"}
        self.answers: list[Answer] = []
        self.stopped = asyncio.Event()

    async def loop(self, index: int) -> None:
        n = 0
        while not self.stopped.is_set():
            n += 1
            sent = time.monotonic()
            body = {"template": "writer", "input": f"story {index}-{n}"}
            reply = await self.client.post("/v1/runs", json=body, headers=self.headers)
            tokens = reply.json()["usage"]["total_tokens"] if reply.status_code == 200 else 0
            self.answers.append(Answer(sent, time.monotonic() - sent, reply.status_code, tokens, reply.text[:300]))
            if reply.status_code != 200:
                await asyncio.sleep(0.02)  # a client backing off a little after a refusal

    def ok_since(self, t: float) -> int:
        return sum(1 for a in self.answers if a.sent >= t and a.status == 200)


def ledger(url: str, tenant: str) -> tuple[int, int, int]:
    """(usage-ledger tokens, quota spent, quota reserved) of ``tenant``, read with plain SQL."""
    with psycopg.connect(url) as conn:
        usage = conn.execute(
            "SELECT coalesce(sum(input_tokens + output_tokens), 0) FROM ar_usage WHERE tenant = %s", (tenant,)
        ).fetchone()
        spent = conn.execute(
            "SELECT coalesce(sum(spent), 0) FROM ar_quota_spent WHERE bucket LIKE %s", (f"{{{tenant}}}:key:%",)
        ).fetchone()
        reserved = conn.execute(
            "SELECT coalesce(sum(amount), 0) FROM ar_quota_reservations WHERE bucket LIKE %s AND expires_at > %s",
            (f"{{{tenant}}}:key:%", time.time()),
        ).fetchone()
    return int(usage[0]), int(spent[0]), int(reserved[0])


async def test_sigkilled_postgres_under_live_traffic(
    fault_postgres: PgServer, worker_factory: Any, tmp_path: Path
) -> None:
    admin = await Runtime.create(Settings(state_url=fault_postgres.url, data_dir=tmp_path / "admin"))
    key, _ = await admin.keys.create_key("acme", "ada", ["agents:run:*"], daily_tokens=DAILY)
    await admin.aclose()
    worker = worker_factory(worker_env(fault_postgres.url))
    pid = worker.proc.pid
    async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
        traffic = Traffic(client, key)
        loops = [asyncio.create_task(traffic.loop(i)) for i in range(CLIENTS)]
        start = time.monotonic()
        await until(lambda: traffic.ok_since(start) >= 40, "traffic before the kill")
        fault_postgres.kill()
        killed = time.monotonic()
        await until(lambda: sum(1 for a in traffic.answers if a.sent > killed) >= 30, "answers while down")
        ready_down = (await client.get("/readyz")).status_code
        await asyncio.to_thread(fault_postgres.start)
        back = time.monotonic()
        await until(lambda: traffic.ok_since(back) >= 40, "recovery after the restart", timeout=60)
        recovered = min(a.sent + a.took for a in traffic.answers if a.sent >= back and a.status == 200) - back
        ready_up = (await client.get("/readyz")).status_code
        traffic.stopped.set()
        await asyncio.gather(*loops)
    assert worker.proc.poll() is None and worker.proc.pid == pid  # the same worker, never restarted
    before = [a for a in traffic.answers if a.sent + a.took < killed]
    outage = [a for a in traffic.answers if a.sent > killed and a.sent + a.took < back]
    unexpected = [a for a in traffic.answers if a.status not in (200, 503)]
    assert unexpected == [], unexpected[:3]
    assert before and all(a.status == 200 for a in before)
    assert len(outage) >= 30 and all(a.status == 503 for a in outage), [a.body for a in outage if a.status != 503]
    p99_503 = pct([a.took for a in outage], 0.99)
    assert pct([a.took for a in outage], 0.5) < 0.1 and p99_503 < 1.5  # fast: the breaker refuses at once
    assert (ready_down, ready_up) == (503, 200)
    told = sum(a.tokens for a in traffic.answers)

    async def settled() -> bool:
        usage, spent, reserved = ledger(fault_postgres.url, "acme")
        return usage == told and spent == told and reserved == 0

    await until(settled, "the journal to drain into PostgreSQL")  # the worker's outbox retries by itself
    ok = sum(1 for a in traffic.answers if a.status == 200)
    record("postgres_sigkill", ok=ok, refused=len(outage), p99_503_s=round(p99_503, 3), recovered_s=round(recovered, 2))
