"""Every REST endpoint through a real socket: health, templates, sessions, runs, usage, metrics."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import Keys, LiveServer


def test_healthz_and_readyz(live: LiveServer) -> None:
    with live.client() as client:
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ok"
    assert body["checks"]["sessions"]["ok"] and body["checks"]["keys"]["ok"]


def test_request_id_is_echoed_or_made(live: LiveServer) -> None:
    with live.client() as client:
        assert client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["x-request-id"] == "abc-123"
        made = client.get("/healthz", headers={"X-Request-Id": "bad id\twith tab"}).headers["x-request-id"]
    assert made.startswith("req_")


def test_templates(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.alice) as client:
        listing = client.get("/v1/templates").json()
        names = [t["name"] for t in listing["data"]]
        assert {"writer", "analyst", "searcher"} <= set(names)
        analyst = client.get("/v1/templates/analyst").json()
        assert analyst["tools"] == ["calculator"] and analyst["model"] == "offline"
        assert "system_prompt" not in analyst
        missing = client.get("/v1/templates/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "template_not_found"


def test_run_returns_output_usage_tool_calls(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.alice) as client:
        response = client.post("/v1/runs", json={"template": "analyst", "input": "what is 17*23+4?"})
    assert response.status_code == 200
    body = response.json()
    assert "395" in body["output"]
    assert body["run_id"].startswith("run_") and body["status"] == "completed"
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["total_tokens"] > 0
    assert [call["name"] for call in body["tool_calls"]] == ["calculator"]
    assert body["tool_calls"][0]["output"] == "395"
    assert body["metadata"]["offline"] is True


def test_session_lifecycle_and_conversation(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.alice) as client:
        created = client.post("/v1/sessions", json={"template": "writer", "metadata": {"topic": "names"}})
        assert created.status_code == 201
        sid = created.json()["id"]
        assert created.json()["user_id"] == "alice" and created.json()["tenant"] == "acme"
        first = client.post("/v1/runs", json={"template": "writer", "input": "my name is Ada", "session_id": sid})
        assert first.status_code == 200 and first.json()["session_id"] == sid
        second = client.post("/v1/runs", json={"template": "writer", "input": "what is my name?", "session_id": sid})
        assert "Ada" in second.json()["output"]
        messages = client.get(f"/v1/sessions/{sid}/messages").json()
        assert [m["role"] for m in messages["data"]] == ["user", "assistant", "user", "assistant"]
        assert messages["data"][0]["content"] == "my name is Ada"
        assert client.get(f"/v1/sessions/{sid}").json()["message_count"] >= 1  # executor records new messages per run
        assert sid in [s["id"] for s in client.get("/v1/sessions").json()["data"]]
        assert client.delete(f"/v1/sessions/{sid}").status_code == 204
        gone = client.get(f"/v1/sessions/{sid}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "session_not_found"


def test_run_in_unknown_session_is_404_not_created(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.alice) as client:
        response = client.post("/v1/runs", json={"template": "writer", "input": "hi", "session_id": "ses_nothere"})
        assert response.status_code == 404
        assert client.get("/v1/sessions/ses_nothere").status_code == 404


def test_sessions_are_invisible_to_other_users_and_tenants(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.alice) as alice:
        sid = alice.post("/v1/sessions", json={}).json()["id"]
    for key in (keys.bob, keys.eve):  # same tenant other user; other tenant (even its admin)
        with live.client(key) as other:
            for method, path in (("GET", ""), ("GET", "/messages"), ("DELETE", "")):
                response = other.request(method, f"/v1/sessions/{sid}{path}")
                assert response.status_code == 404, (method, path)
                assert response.json()["error"]["code"] == "session_not_found"
            run = other.post("/v1/runs", json={"template": "writer", "input": "hi", "session_id": sid})
            assert run.status_code == 404
            assert sid not in [s["id"] for s in other.get("/v1/sessions").json()["data"]]
    with live.client(keys.admin) as admin:  # the tenant's admin may see it
        assert admin.get(f"/v1/sessions/{sid}").status_code == 200
        assert sid in [s["id"] for s in admin.get("/v1/sessions", params={"user": "alice"}).json()["data"]]
    with live.client(keys.bob) as bob:
        assert bob.get("/v1/sessions", params={"user": "alice"}).status_code == 403
    with live.client(keys.alice) as alice:
        assert alice.get(f"/v1/sessions/{sid}").status_code == 200


def test_usage_reports_own_spend(live: LiveServer) -> None:
    key = live.key("acme", "usage-user", ["agents:run:*", "usage"], daily_tokens=1_000_000, monthly_usd=5.0)
    with live.client(key) as client:
        for _ in range(2):
            assert client.post("/v1/runs", json={"template": "writer", "input": "hello"}).status_code == 200
        usage = client.get("/v1/usage", params={"by": "template"}).json()
        assert client.get("/v1/usage", params={"user": "*"}).status_code == 403
    assert usage["tenant"] == "acme" and usage["user"] == "usage-user"
    assert usage["rows"] == [usage["totals"] | {"key": "writer"}]
    assert usage["totals"]["runs"] == 2 and usage["totals"]["total_tokens"] > 0
    kinds = {(q["scope"], q["kind"]) for q in usage["quotas"]}
    assert kinds == {("key", "daily_tokens"), ("key", "monthly_usd")}
    daily = next(q for q in usage["quotas"] if q["kind"] == "daily_tokens")
    assert daily["spent"] == usage["totals"]["total_tokens"]
    assert daily["remaining"] == 1_000_000 - daily["spent"]


def test_admin_usage_covers_the_tenant(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.alice) as client:
        client.post("/v1/runs", json={"template": "writer", "input": "hello"})
    with live.client(keys.admin) as admin:
        tenant = admin.get("/v1/usage", params={"user": "*", "by": "user"}).json()
    assert tenant["user"] is None
    assert "alice" in [row["key"] for row in tenant["rows"]]
    with live.client(keys.eve) as eve:  # another tenant's admin sees none of it
        other = eve.get("/v1/usage", params={"user": "*", "by": "user"}).json()
    assert "alice" not in [row["key"] for row in other["rows"]]


def test_metrics_count_runs(live: LiveServer, keys: Keys) -> None:
    def runs_total() -> float:
        with live.client() as client:
            response = client.get("/metrics")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(response.text)}
        return sum(
            s.value
            for s in families["agent_runtime_runs"].samples
            if s.name == "agent_runtime_runs_total" and s.labels["template"] == "writer"
        )

    before = runs_total()
    with live.client(keys.alice) as client:
        for _ in range(3):
            client.post("/v1/runs", json={"template": "writer", "input": "hello"})
    assert runs_total() == before + 3


def test_openapi_schema_is_complete(live: LiveServer) -> None:
    with live.client() as client:
        schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/templates",
        "/v1/templates/{name}",
        "/v1/sessions",
        "/v1/sessions/{session_id}",
        "/v1/sessions/{session_id}/messages",
        "/v1/runs",
        "/v1/usage",
        "/v1/models",
        "/v1/chat/completions",
    ):
        assert path in paths, path
    run = paths["/v1/runs"]["post"]["responses"]
    assert {"200", "401", "403", "404", "409", "413", "422", "429", "503", "504"} <= set(run)
    assert "text/event-stream" in run["200"]["content"]
    assert run["429"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
