"""Redis down, hung or restarted under a running runtime: typed 503s in microseconds once the breaker is
open, the configured rate-limit policy, ``/readyz`` red then green, and recovery without a restart."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from agent_runtime._redis import circuit_breaker, use_circuit_breaker
from agent_runtime.errors import BackendError
from agent_runtime.runtime import Runtime
from agent_runtime.security.redis import RedisKeyStore
from agent_runtime.settings import RedisSettings
from tests.conftest import RedisServer
from tests.reliability._faults import http_client, jwt_token, redis_settings

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]
SRC = Path(__file__).resolve().parents[2] / "src" / "agent_runtime"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _redis_clients(runtime: Runtime) -> dict[str, Any]:
    rt: Any = runtime  # reaches into each backend for its client
    limiter = rt.security.limiter
    return {
        "sessions": rt.sessions.store.client,
        "keys": rt.keys.store._redis,
        "rate_limiter": getattr(limiter, "primary", limiter)._redis,
        "quotas": rt.security.ledger._redis,
        "usage": rt.cost_tracker.usage_store.client,
        "runs": rt.runs.store._redis,
        "event_bus": rt.event_bus.redis,
    }


def test_no_redis_client_is_built_outside_make_redis() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name in ("_redis.py", "_postgres.py"):  # _postgres: psycopg's pool, bounded there
            continue
        text = path.read_text()
        if re.search(r"\bRedis\(|\.from_url\(|ConnectionPool\(|StrictRedis", text):
            offenders.append(str(path.relative_to(SRC)))
    assert offenders == []


async def test_every_redis_client_has_timeouts_and_the_shared_breaker(redis_url: str, tmp_path: Path) -> None:
    runtime = await Runtime.create(redis_settings(redis_url, tmp_path, event_bus="redis"))
    try:
        breaker = circuit_breaker(redis_url)
        assert breaker is not None
        for name, client in _redis_clients(runtime).items():
            pool = client.connection_pool
            assert pool.connection_kwargs["socket_connect_timeout"] == 0.5, name
            assert pool.connection_kwargs["socket_timeout"] == 1.5, name
            assert pool.breaker is breaker, name
    finally:
        await runtime.aclose()


async def test_open_breaker_answers_in_microseconds(fault_redis: RedisServer) -> None:
    breaker = use_circuit_breaker(fault_redis.url, failures=3, cooldown_s=30)
    store = RedisKeyStore(fault_redis.url, RedisSettings(connect_timeout=0.5, socket_timeout=0.5))
    try:
        assert await store.get("k1") is None
        fault_redis.kill()
        for _ in range(3):
            with pytest.raises(BackendError):
                await store.get("k1")
        assert breaker.state == "open"
        calls, started = 500, time.perf_counter()
        for _ in range(calls):
            with pytest.raises(BackendError) as caught:
                await store.get("k1")
        per_call = (time.perf_counter() - started) / calls
        assert per_call < 0.001, f"{per_call * 1e6:.0f} us per refused call"
        assert "CircuitOpenError" in caught.value.message and caught.value.retry_after
        assert breaker.rejected >= calls
    finally:
        breaker.reset()
        await store.aclose()


async def test_hung_redis_costs_timeouts_only_until_the_breaker_opens(fault_redis: RedisServer) -> None:
    """SIGSTOP: the server accepts nothing and answers nothing, the worst case for clients."""
    breaker = use_circuit_breaker(fault_redis.url, failures=2, cooldown_s=30)
    store = RedisKeyStore(fault_redis.url, RedisSettings(connect_timeout=0.3, socket_timeout=0.3))
    assert fault_redis.proc is not None
    try:
        await store.get("warm")
        fault_redis.proc.send_signal(signal.SIGSTOP)
        for _ in range(2):  # these pay the socket timeout
            with pytest.raises(BackendError):
                await store.get("k")
        started = time.perf_counter()
        for _ in range(100):
            with pytest.raises(BackendError):
                await store.get("k")
        assert time.perf_counter() - started < 0.1  # 100 calls, far below one timeout
    finally:
        fault_redis.proc.send_signal(signal.SIGCONT)
        breaker.reset()
        await store.aclose()


async def test_readyz_red_while_redis_is_down_green_after(fault_redis: RedisServer, tmp_path: Path) -> None:
    runtime = await Runtime.create(redis_settings(fault_redis.url, tmp_path))
    try:
        async with http_client(runtime) as client:
            up = await client.get("/readyz")
            assert up.status_code == 200, up.text
            on_redis = {"sessions", "keys", "rate_limiter", "quotas", "usage", "runs"}
            assert set(up.json()["checks"]) == on_redis | {"event_bus"}  # the bus is the in-memory one here
            fault_redis.kill()
            down = await client.get("/readyz")
            assert down.status_code == 503
            checks = down.json()["checks"]
            assert not any(checks[name]["ok"] for name in on_redis) and checks["event_bus"]["ok"]
            fault_redis.start()
            assert (await client.get("/readyz")).status_code == 200  # probes go through the open breaker
    finally:
        await runtime.aclose()


async def test_sessions_and_quotas_fail_closed_with_a_fast_503(fault_redis: RedisServer, tmp_path: Path) -> None:
    runtime = await Runtime.create(redis_settings(fault_redis.url, tmp_path))
    quota_holder = _bearer(jwt_token("acme", "ann", daily_tokens=100_000))
    plain = _bearer(jwt_token("acme", "bob"))
    try:
        async with http_client(runtime) as client:
            assert (
                await client.post("/v1/runs", json={"template": "writer", "input": "hi"}, headers=quota_holder)
            ).status_code == 200
            fault_redis.kill()
            for _ in range(5):  # open the breaker
                await client.post("/v1/runs", json={"template": "writer", "input": "hi"}, headers=quota_holder)
            started = time.perf_counter()
            quota = await client.post("/v1/runs", json={"template": "writer", "input": "hi"}, headers=quota_holder)
            session = await client.post(
                "/v1/runs", json={"template": "writer", "input": "hi", "session_id": "s-1"}, headers=plain
            )
            assert time.perf_counter() - started < 0.5
            for response in (quota, session):
                assert response.status_code == 503, response.text
                assert response.json()["error"]["code"] == "backend_unavailable"
                assert int(response.headers["retry-after"]) >= 1
            text = runtime.metrics.render()[0].decode()
            assert 'agent_runtime_backend_errors_total{backend="redis",operation="circuit_open"}' in text
    finally:
        await runtime.aclose()


@pytest.mark.parametrize("policy", ["fail_open", "fail_closed"])
async def test_rate_limit_policy_while_redis_is_down(policy: str, fault_redis: RedisServer, tmp_path: Path) -> None:
    settings = redis_settings(
        fault_redis.url,
        tmp_path,
        reliability={"breaker_failures": 3, "breaker_cooldown_s": 30, "rate_limit_on_backend_error": policy},
    )
    runtime = await Runtime.create(settings)
    headers = _bearer(jwt_token("acme", "rita", rpm=3))  # no quota, no session: only the limiter needs Redis
    try:
        async with http_client(runtime) as client:
            fault_redis.kill()
            codes = [
                (await client.post("/v1/runs", json={"template": "writer", "input": "hi"}, headers=headers)).status_code
                for _ in range(5)
            ]
        if policy == "fail_open":
            assert codes == [200, 200, 200, 429, 429]  # the local per-worker limiter still enforces rpm=3
        else:
            assert codes == [503] * 5
    finally:
        breaker = circuit_breaker(fault_redis.url)
        if breaker is not None:
            breaker.reset()
        await runtime.aclose()


async def test_runtime_recovers_after_a_redis_restart(fault_redis: RedisServer, tmp_path: Path) -> None:
    runtime = await Runtime.create(redis_settings(fault_redis.url, tmp_path))
    key, _ = await runtime.keys.create_key("acme", "ada", ["agents:run:*", "sessions", "usage"], daily_tokens=1_000_000)
    run = {"template": "writer", "input": "my name is Ada", "session_id": "ada-chat"}
    try:
        async with http_client(runtime) as client:
            created = await client.post("/v1/sessions", json={"session_id": "ada-chat"}, headers=_bearer(key))
            assert created.status_code == 201, created.text
            first = await client.post("/v1/runs", json=run, headers=_bearer(key))
            assert first.status_code == 200, first.text
            fault_redis.kill()
            for _ in range(4):
                down = await client.post("/v1/runs", json=run | {"input": "still there?"}, headers=_bearer(key))
                assert down.status_code == 503
            fault_redis.start()  # same data dir, appendonly: sessions, keys and quotas survived
            await asyncio.sleep(0.35)  # the breaker's cooldown; the next call is its probe
            again = await client.post("/v1/runs", json=run | {"input": "what is my name?"}, headers=_bearer(key))
            assert again.status_code == 200, again.text
            messages = (await client.get("/v1/sessions/ada-chat/messages", headers=_bearer(key))).json()
            texts = [m["content"] for m in messages["data"]]
            assert texts[0] == "my name is Ada" and "what is my name?" in texts
            assert "still there?" not in texts  # refused runs left nothing behind
    finally:
        await runtime.aclose()
