"""Every error status through a real socket, each in the one envelope: {"error": {"code", "message", ...}}."""

from __future__ import annotations

import time

import httpx
import pytest

from agent_runtime.limits.quota.base import Quota, QuotaLimits
from agent_runtime.security.keys import parse_key
from agent_runtime.settings import LimitSettings, Settings
from tests.conftest import RedisServer
from tests.server.conftest import Keys, LiveServer


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["type"]
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def test_400_malformed_json(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.alice) as client:
        response = client.post(
            "/v1/runs", content=b'{"template": "writer",', headers={"content-type": "application/json"}
        )
    assert_error(response, 400, "bad_request")


def test_400_chat_without_user_message(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.alice) as client:
        body = {"model": "writer", "messages": [{"role": "system", "content": "be brief"}]}
        assert_error(client.post("/v1/chat/completions", json=body), 400, "bad_request")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": "Bearer ar_0123456789abcdef_" + "x" * 43}, id="unknown-key"),
        pytest.param({"Authorization": "Bearer not-a-key"}, id="garbage"),
        pytest.param({"Authorization": "Bearer a.b.c"}, id="jwt-not-configured"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="wrong-scheme"),
    ],
)
def test_401_bad_credentials(live: LiveServer, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=live.url, headers=headers) as client:
        for method, path in (("GET", "/v1/templates"), ("POST", "/v1/runs"), ("GET", "/v1/usage")):
            body = {"template": "writer", "input": "hi"} if method == "POST" else None
            response = client.request(method, path, json=body)
            assert_error(response, 401, "unauthenticated")
            assert response.headers["www-authenticate"] == "Bearer"


def test_401_revoked_key(live: LiveServer) -> None:
    assert live.runtime is not None
    key = live.key("acme", "revoked", ["agents:run:*"])
    with live.client(key) as client:
        assert client.get("/v1/templates").status_code == 200
        live.call(live.runtime.keys.revoke_key(key.split("_")[1]))
        assert_error(client.get("/v1/templates"), 401, "unauthenticated")


def test_403_missing_template_scope(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.writer_only) as client:
        assert client.post("/v1/runs", json={"template": "writer", "input": "hi"}).status_code == 200
        error = assert_error(
            client.post("/v1/runs", json={"template": "analyst", "input": "1+1"}), 403, "permission_denied"
        )
        streamed = client.post("/v1/runs", json={"template": "analyst", "input": "1+1", "stream": True})
        assert_error(streamed, 403, "permission_denied")
        chat = {"model": "analyst", "messages": [{"role": "user", "content": "1+1"}]}
        assert_error(client.post("/v1/chat/completions", json=chat), 403, "permission_denied")
    assert "agents:run:analyst" in str(error)


def test_403_model_override_needs_scope(live: LiveServer, keys: Keys) -> None:
    body = {"template": "writer", "input": "hi", "model": "openai-compatible:x@http://127.0.0.1:9/v1"}
    with live.client(keys.alice) as client:
        assert_error(client.post("/v1/runs", json=body), 403, "permission_denied")
        offline = client.post("/v1/runs", json={"template": "writer", "input": "hi", "model": "offline"})
        assert offline.status_code == 200
    with live.client(keys.admin) as admin:
        assert_error(admin.post("/v1/runs", json=body | {"model": "nosuchprovider:model"}), 400, "bad_request")


def test_404_unknown_route_template_session(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.alice) as client:
        assert_error(client.get("/v1/nothing"), 404, "not_found")
        assert_error(client.post("/v1/runs", json={"template": "nope", "input": "hi"}), 404, "template_not_found")
        assert_error(client.post("/v1/runs", json={"template": "No Such!", "input": "hi"}), 422, "validation_error")
        assert_error(client.get("/v1/sessions/ses_missing"), 404, "session_not_found")
        assert_error(client.get("/v1/models/nope"), 404, "template_not_found")
        assert_error(client.post("/v1/sessions", json={"template": "nope"}), 404, "template_not_found")
        assert client.put("/v1/runs").status_code == 405


def test_409_session_id_taken(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.alice) as client:
        assert client.post("/v1/sessions", json={"session_id": "ses_fixed_409"}).status_code == 201
        assert_error(client.post("/v1/sessions", json={"session_id": "ses_fixed_409"}), 409, "conflict")


def test_413_body_too_large(live: LiveServer, keys: Keys) -> None:
    limit = live.settings.limits.max_request_bytes
    big = {"template": "writer", "input": "x" * (limit + 10)}
    with live.client(keys.alice) as client:
        assert_error(client.post("/v1/runs", json=big), 413, "request_too_large")

        def chunks():  # no Content-Length: the limit is enforced while reading
            for _ in range(limit // 65536 + 2):
                yield b"x" * 65536

        streamed = client.post("/v1/runs", content=chunks(), headers={"content-type": "application/json"})
        assert_error(streamed, 413, "request_too_large")


def test_413_input_too_long(live: LiveServer, keys: Keys) -> None:
    too_long = "word " * (live.settings.limits.max_input_chars // 5 + 1)
    with live.client(keys.alice) as client:
        assert_error(client.post("/v1/runs", json={"template": "writer", "input": too_long}), 413, "input_too_large")


def test_422_validation(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.alice) as client:
        error = assert_error(client.post("/v1/runs", json={"template": "writer"}), 422, "validation_error")
        assert error["errors"] == [{"loc": "body.input", "msg": "Field required", "type": "missing"}]
        assert_error(client.post("/v1/runs", json={"template": "writer", "input": "  "}), 422, "validation_error")
        assert_error(client.post("/v1/runs", json={"template": "writer", "input": "a\x00b"}), 422, "validation_error")
        assert_error(client.get("/v1/usage", params={"by": "colour"}), 422, "validation_error")
        bad_id = {"template": "writer", "input": "hi", "session_id": "ses:{x}*"}
        assert_error(client.post("/v1/runs", json=bad_id), 422, "validation_error")


def test_429_rate_limit_with_retry_after(live: LiveServer) -> None:
    key = live.key("acme", "hasty", ["agents:run:*"], rpm=1)
    with live.client(key) as client:
        assert client.post("/v1/runs", json={"template": "writer", "input": "hi"}).status_code == 200
        for stream in (False, True):
            response = client.post("/v1/runs", json={"template": "writer", "input": "hi", "stream": stream})
            error = assert_error(response, 429, "rate_limited")
            assert int(response.headers["retry-after"]) >= 1
            assert float(error["retry_after"]) > 0


def test_429_quota_exhausted(live: LiveServer) -> None:
    assert live.runtime is not None
    key = live.key("acme", "thrifty", ["agents:run:*"], daily_tokens=100_000)
    quota = Quota(f"{{acme}}:key:{parse_key(key)}", QuotaLimits(daily_tokens=100_000))
    spent = live.call(live.runtime.security.ledger.reserve("earlier", [quota], tokens=100_000, cost_usd=0, ttl_s=60))
    live.call(live.runtime.security.ledger.settle(spent, tokens=100_000, cost_usd=0))  # today's quota used up
    with live.client(key) as client:
        response = client.post("/v1/runs", json={"template": "writer", "input": "hello there"})
    assert_error(response, 429, "quota_exceeded")
    assert int(response.headers["retry-after"]) >= 1  # tomorrow


def test_429_run_bound_above_the_whole_quota(live: LiveServer) -> None:
    key = live.key("acme", "tiny", ["agents:run:*"], daily_tokens=50)
    with live.client(key) as client:
        response = client.post("/v1/runs", json={"template": "writer", "input": "hello there"})
    assert_error(response, 429, "quota_exceeded")
    assert "whole daily token quota is 50 tokens" in response.json()["error"]["message"]
    assert "retry-after" not in response.headers  # waiting would not help


def test_504_run_timeout(slow: LiveServer) -> None:
    key = slow.key("acme", "impatient", ["agents:run:*"])
    with slow.client(key) as client:
        response = client.post("/v1/runs", json={"template": "writer", "input": "a haiku about rain", "timeout_s": 0.2})
    assert_error(response, 504, "timeout")


def test_503_readyz_when_backend_down(fault_redis: RedisServer, tmp_path) -> None:
    settings = Settings(
        state_backend="redis", redis_url=fault_redis.url, data_dir=tmp_path, limits=LimitSettings(run_timeout_s=5)
    )
    server = LiveServer(settings).start()
    try:
        with server.client() as client:
            assert client.get("/readyz").status_code == 200
            fault_redis.stop()
            started = time.monotonic()
            down = client.get("/readyz")
            assert time.monotonic() - started < 5
            assert down.status_code == 503
            body = down.json()
            assert body["status"] == "unavailable"
            assert not body["checks"]["sessions"]["ok"] and body["checks"]["sessions"]["error"]
            key_header = {"Authorization": "Bearer ar_0123456789abcdef_" + "x" * 43}
            assert_error(client.get("/v1/templates", headers=key_header), 503, "backend_unavailable")
            fault_redis.start()
            assert client.get("/readyz").status_code == 200
    finally:
        server.stop()
