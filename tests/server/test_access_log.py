"""`agent-runtime serve` logs each request as one JSON line with its request id, and nothing in plain text."""

from __future__ import annotations

import json

import httpx

from tests.helpers import until_sync
from tests.server.conftest import ServeProcess


def test_each_request_is_one_json_access_line_with_its_request_id(tmp_path) -> None:
    env = {"AGENT_RUNTIME_STATE_BACKEND": "memory", "AGENT_RUNTIME_DATA_DIR": str(tmp_path)}
    server = ServeProcess(env)
    try:
        key = server.admin_key()
        server.wait_ready()
        headers = {"Authorization": f"Bearer {key}", "X-Request-Id": "req-access-1"}
        assert httpx.get(server.url + "/v1/templates", headers=headers, timeout=10).status_code == 200
        assert httpx.get(server.url + "/v1/nothing-here", headers=headers, timeout=10).status_code == 404
        until_sync(lambda: sum("req-access-1" in line for line in server.stderr_lines) >= 2, "two access lines")
    finally:
        assert server.terminate() in (0, -15)
    lines = list(server.stderr_lines)
    access = [json.loads(line) for line in lines if line.startswith("{") and '"agent_runtime.access"' in line]
    mine = [(entry["path"], entry["status"]) for entry in access if entry.get("request_id") == "req-access-1"]
    assert mine == [("/v1/templates", 200), ("/v1/nothing-here", 404)]
    assert all(isinstance(entry["duration_ms"], float) for entry in access)
    assert not [line for line in lines if '"GET /v1/templates HTTP/1.1"' in line]  # uvicorn's plain-text line
