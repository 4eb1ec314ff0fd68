"""`agent-runtime serve` as a real process: first-start admin key, two workers on Redis, graceful drain."""

from __future__ import annotations

import threading
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import until_sync
from tests.server.conftest import ServeProcess


def _client_on_worker(url: str, key: str, avoid: int | None, timeout_s: float = 90.0) -> tuple[httpx.Client, int]:
    """A keep-alive client whose connection landed on a worker other than ``avoid`` (a worker still
    starting on a busy machine accepts nothing yet: keep trying until the deadline)."""

    def landed() -> tuple[httpx.Client, int] | None:
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        pid = client.get("/healthz").json()["pid"]
        if pid != avoid:
            return client, pid
        client.close()
        return None

    found: tuple[httpx.Client, int] = until_sync(landed, "a connection on another worker", timeout=timeout_s)
    return found


def _runs_total(text: str) -> float:
    for family in text_string_to_metric_families(text):
        if family.name == "agent_runtime_runs":
            return sum(s.value for s in family.samples if s.name == "agent_runtime_runs_total")
    return 0.0


def test_two_workers_share_sessions_and_metrics(redis_url: str, tmp_path) -> None:
    config = tmp_path / "config.yaml"  # a secret from a config file must reach the workers unmasked
    config.write_text("api_key_pepper: pepper-from-file\n", encoding="utf-8")
    env = {
        "AGENT_RUNTIME_STATE_BACKEND": "redis",
        "AGENT_RUNTIME_REDIS_URL": redis_url,
        "AGENT_RUNTIME_DATA_DIR": str(tmp_path),
        "AGENT_RUNTIME_LOG_LEVEL": "WARNING",
        "AGENT_RUNTIME_CONFIG_FILE": str(config),
    }
    server = ServeProcess(env, workers=2)
    try:
        key = server.admin_key()
        server.wait_ready()
        first, pid1 = _client_on_worker(server.url, key, None)
        second, pid2 = _client_on_worker(server.url, key, pid1)
        try:
            assert pid1 != pid2
            sid = first.post("/v1/sessions", json={"template": "writer"}).json()["id"]
            told = first.post("/v1/runs", json={"template": "writer", "input": "my name is Ada", "session_id": sid})
            assert told.status_code == 200
            asked = second.post("/v1/runs", json={"template": "writer", "input": "what is my name?", "session_id": sid})
            assert asked.status_code == 200 and "Ada" in asked.json()["output"]
            assert second.get("/healthz").json()["pid"] == pid2  # really answered by the other worker
            for client in (first, second):
                client.post("/v1/runs", json={"template": "writer", "input": "hello"})
            # 4 runs, 2 per worker: whichever worker answers /metrics reports all of them
            assert _runs_total(first.get("/metrics").text) == 4
            assert _runs_total(second.get("/metrics").text) == 4
        finally:
            first.close()
            second.close()
    finally:
        assert server.terminate() in (0, -15)


def test_restart_prints_no_new_key_and_drains_on_sigterm(tmp_path) -> None:
    env = {
        "AGENT_RUNTIME_STATE_BACKEND": "sqlite",
        "AGENT_RUNTIME_DATA_DIR": str(tmp_path),
        "AGENT_RUNTIME_OFFLINE_TOKEN_LATENCY_MS": "100",
        "AGENT_RUNTIME_LOG_LEVEL": "WARNING",
    }
    server = ServeProcess(env)
    key = server.admin_key()
    server.wait_ready()
    headers = {"Authorization": f"Bearer {key}"}
    slow_run: dict[str, httpx.Response] = {}

    def run_slowly() -> None:  # ~15 tokens at 100 ms: still running when SIGTERM arrives
        body = {"template": "writer", "input": "a haiku about rain"}
        slow_run["response"] = httpx.post(server.url + "/v1/runs", json=body, headers=headers, timeout=30)

    worker = threading.Thread(target=run_slowly)
    worker.start()
    time.sleep(0.4)
    server.proc.send_signal(15)
    time.sleep(0.2)
    refused = httpx.post(server.url + "/v1/runs", json={"template": "writer", "input": "hi"}, headers=headers)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "unavailable"
    assert refused.headers["retry-after"] == "1"
    assert httpx.get(server.url + "/readyz").status_code == 503
    worker.join(30)
    assert slow_run["response"].status_code == 200  # the in-flight run finished
    assert "rain" in slow_run["response"].json()["output"].lower()
    assert server.proc.wait(30) in (0, -15)  # uvicorn re-raises SIGTERM once it has shut down cleanly

    again = ServeProcess(env)  # same SQLite key store: the first key still works, none is printed
    try:
        again.wait_ready()
        assert httpx.get(again.url + "/v1/templates", headers=headers).status_code == 200
    finally:
        assert again.terminate() in (0, -15)
    assert "ar_" not in again.stdout_text()
