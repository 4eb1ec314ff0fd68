"""Two served workers on one PostgreSQL database (rate limits on Redis, the usual production split)
share sessions, API keys, quotas and the usage ledger; a quota holds exactly at concurrency 64: settled
spend never passes it, and quota, usage ledger and the clients' answers agree to the token."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(180)]
CONCURRENCY = 64


def fleet_env(postgres_url: str, redis_url: str) -> dict[str, str]:
    return {
        "AGENT_RUNTIME_STATE_URL": postgres_url,
        "AGENT_RUNTIME_STATE_URLS__RATE_LIMITS": redis_url,
        "AGENT_RUNTIME_OFFLINE_TOKEN_LATENCY_MS": "20",  # runs overlap: all 64 reserve before any settles
        "AGENT_RUNTIME_API_KEY_CACHE_S": "0",
        "AGENT_RUNTIME_POSTGRES__MAX_CONNECTIONS": "8",
    }


async def make_key(postgres_url: str, tmp_path: Path, **limits: Any) -> tuple[str, str]:
    admin = await Runtime.create(Settings(state_url=postgres_url, data_dir=tmp_path / "admin"))
    try:
        key, record = await admin.keys.create_key("acme", "ada", ["agents:run:*", "sessions", "usage"], **limits)
    finally:
        await admin.aclose()
    return key, record.key_id


async def test_two_workers_share_sessions_keys_quotas_and_usage(
    postgres_url: str, redis_url: str, worker_factory: Any, tmp_path: Path
) -> None:
    env = fleet_env(postgres_url, redis_url)
    workers = [worker_factory(env, name="a"), worker_factory(env, name="b")]
    key, _ = await make_key(postgres_url, tmp_path, daily_tokens=10_000_000)
    headers = {"Authorization": f"Bearer {key}"}
    a, b = (httpx.AsyncClient(base_url=w.url, headers=headers, timeout=30) for w in workers)
    async with a, b:
        created = await a.post("/v1/sessions", json={"session_id": "chat-1"})
        assert created.status_code == 201, created.text
        first = await a.post("/v1/runs", json={"template": "writer", "input": "my name is Ada", "session_id": "chat-1"})
        second = await b.post(
            "/v1/runs", json={"template": "writer", "input": "what is my name", "session_id": "chat-1"}
        )
        assert (first.status_code, second.status_code) == (200, 200), second.text
        messages = (await b.get("/v1/sessions/chat-1/messages")).json()["data"]
        assert [m["content"] for m in messages if m["role"] == "user"] == ["my name is Ada", "what is my name"]
        told = first.json()["usage"]["total_tokens"] + second.json()["usage"]["total_tokens"]
        report = (await a.get("/v1/usage")).json()  # worker a sees worker b's run
        assert (report["totals"]["runs"], report["totals"]["total_tokens"]) == (2, told)


async def test_a_quota_holds_exactly_at_concurrency_64_across_two_workers(
    postgres_url: str, redis_url: str, worker_factory: Any, tmp_path: Path
) -> None:
    env = fleet_env(postgres_url, redis_url)
    workers = [worker_factory(env, name="a"), worker_factory(env, name="b")]
    probe = await Runtime.create(Settings(state_url=postgres_url, data_dir=tmp_path / "probe"))
    from agent_runtime.orchestration.middleware.cost import CostTrackingMiddleware
    from agent_runtime.types import AgentContext

    cost = next(m for m in probe.executor.middlewares if isinstance(m, CostTrackingMiddleware))
    bound = cost.estimate(AgentContext(input="story 00", template="writer")).tokens
    await probe.aclose()
    limit = 10 * bound + bound // 2  # ten runs' bounds at once; more as earlier runs settle below their bound
    key, key_id = await make_key(postgres_url, tmp_path, daily_tokens=limit)
    headers = {"Authorization": f"Bearer {key}"}
    clients = [httpx.AsyncClient(base_url=w.url, headers=headers, timeout=60) for w in workers]
    try:
        answers = await asyncio.gather(
            *(
                clients[i % 2].post("/v1/runs", json={"template": "writer", "input": f"story {i:02d}"})
                for i in range(CONCURRENCY)
            )
        )
    finally:
        for client in clients:
            await client.aclose()
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {200, 429}, [a.text for a in answers if a.status_code not in (200, 429)][:2]
    admitted = [a for a in answers if a.status_code == 200]
    assert 10 <= len(admitted) < CONCURRENCY  # the quota admitted what fits and refused the rest
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 429} == {"quota_exceeded"}
    told = sum(a.json()["usage"]["total_tokens"] for a in admitted)
    assert told <= limit  # two workers' reservations never pushed settled spend past the quota
    with psycopg.connect(postgres_url) as conn:
        spent = conn.execute(
            "SELECT spent FROM ar_quota_spent WHERE bucket LIKE %s", (f"{{acme}}:key:{key_id}:daily_tokens:%",)
        ).fetchone()[0]
        rows = conn.execute("SELECT count(*), sum(input_tokens + output_tokens) FROM ar_usage").fetchone()
    assert spent == told and rows == (len(admitted), told)
