"""JWT bearer tokens over HTTP, and /metrics (and /readyz's details) behind auth when configured."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from agent_runtime.server.serve import warn_if_probes_open
from agent_runtime.settings import Settings
from tests.conftest import RedisServer
from tests.server.conftest import LiveServer

SECRET = "s" * 40
CLAIMS = {"sub": "x", "tenant": "acme", "iss": "https://issuer.test", "exp": 2**40}


@pytest.fixture(scope="module")
def jwt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(
        state_backend="memory",
        data_dir=tmp_path_factory.mktemp("jwt"),
        jwt_secret=SECRET,
        jwt_issuer="https://issuer.test",
        metrics_require_auth=True,
    )
    server = LiveServer(settings).start()
    yield server
    server.stop()


def token(**claims: object) -> str:
    base: dict[str, object] = {
        "sub": "jane",
        "tenant": "acme",
        "scope": "agents:run:writer sessions usage",
        "iss": "https://issuer.test",
        "exp": int(time.time()) + 300,
    }
    return jwt.encode(base | claims, SECRET, algorithm="HS256")


def test_jwt_principal_runs_and_owns_sessions(jwt_server: LiveServer) -> None:
    with jwt_server.client(token()) as client:
        run = client.post("/v1/runs", json={"template": "writer", "input": "hello"})
        assert run.status_code == 200
        assert client.post("/v1/runs", json={"template": "analyst", "input": "1+1"}).status_code == 403
        session = client.post("/v1/sessions", json={}).json()
        assert (session["tenant"], session["user_id"]) == ("acme", "jane")
        assert client.get("/v1/usage").json()["user"] == "jane"


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(token(exp=int(time.time()) - 10), id="expired"),
        pytest.param(token(iss="https://other.test"), id="wrong-issuer"),
        pytest.param(
            jwt.encode({"sub": "x", "tenant": "acme", "exp": 2**40}, "w" * 40, algorithm="HS256"), id="bad-sig"
        ),
        pytest.param(jwt.encode({"sub": "x", "tenant": "acme", "exp": 2**40}, None, algorithm="none"), id="alg-none"),
    ],
)
def test_jwt_rejections(jwt_server: LiveServer, bad: str) -> None:
    with jwt_server.client(bad) as client:
        response = client.post("/v1/runs", json={"template": "writer", "input": "hello"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"


def test_metrics_require_auth_when_configured(jwt_server: LiveServer) -> None:
    with jwt_server.client() as anonymous:
        assert anonymous.get("/metrics").status_code == 401
        assert anonymous.get("/healthz").status_code == 200
    with jwt_server.client(token()) as user:
        assert user.get("/metrics").status_code == 403
    with jwt_server.client(token(scope="metrics:read")) as scraper:
        response = scraper.get("/metrics")
    assert response.status_code == 200 and "agent_runtime_runs" in response.text


def test_readyz_details_need_the_metrics_token_when_configured(fault_redis: RedisServer, tmp_path: Path) -> None:
    settings = Settings(
        state_backend="redis",
        redis_url=fault_redis.url,
        data_dir=tmp_path,
        jwt_secret=SECRET,
        metrics_require_auth=True,
    )
    server = LiveServer(settings).start()
    try:
        fault_redis.stop()
        with server.client() as anonymous:
            down = anonymous.get("/readyz")
            assert anonymous.get("/healthz").status_code == 200
        assert down.status_code == 503 and down.json()["status"] == "unavailable"
        assert not down.json()["checks"]["sessions"]["ok"]
        assert all(c["error"] is None and c["latency_ms"] == 0 for c in down.json()["checks"].values())
        with server.client(token(scope="metrics:read")) as scraper:
            detailed = scraper.get("/readyz")
        assert detailed.status_code == 503 and detailed.json()["checks"]["sessions"]["error"]
    finally:
        fault_redis.start()
        server.stop()


@pytest.mark.parametrize(
    ("host", "require_auth", "warns"),
    [
        ("0.0.0.0", False, True),
        ("::", False, True),
        ("10.1.2.3", False, True),
        ("api.example.com", False, True),
        ("0.0.0.0", True, False),
        ("127.0.0.1", False, False),
        ("::1", False, False),
        ("localhost", False, False),
    ],
)
def test_serve_warns_when_metrics_are_open_on_a_non_loopback_host(
    caplog: pytest.LogCaptureFixture, host: str, require_auth: bool, warns: bool
) -> None:
    with caplog.at_level(logging.WARNING, logger="agent_runtime.server"):
        warn_if_probes_open(Settings(metrics_require_auth=require_auth), host)
    assert any("METRICS_REQUIRE_AUTH" in r.getMessage() for r in caplog.records) is warns
