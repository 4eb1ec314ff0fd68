"""Browser clients (Studio, Agent Chat UI) need CORS: allowed origins get it, others and the default get none."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from agent_runtime.settings import Settings
from tests.agent_protocol.core.conftest import APServer
from tests.server.conftest import LiveServer

STUDIO = "https://smith.langchain.com"


@pytest.fixture(scope="module")
def cors_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(state_backend="memory", data_dir=tmp_path_factory.mktemp("cors"), cors_origins=[STUDIO])
    server = LiveServer(settings).start()
    yield server
    server.stop()


def _preflight(url: str, origin: str) -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key, content-type",
    }
    return httpx.options(f"{url}/threads/search", headers=headers)


def test_allowed_origin_gets_preflight_and_headers(cors_server: LiveServer) -> None:
    preflight = _preflight(cors_server.url, STUDIO)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == STUDIO
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
    key = cors_server.key("acme", "alice", ["sessions"])
    found = httpx.post(f"{cors_server.url}/threads/search", json={}, headers={"Origin": STUDIO, "x-api-key": key})
    assert found.status_code == 200 and found.headers["access-control-allow-origin"] == STUDIO


def test_other_origins_get_no_cors(cors_server: LiveServer) -> None:
    refused = _preflight(cors_server.url, "https://evil.example")
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers


def test_no_cors_by_default(ap_sqlite: APServer) -> None:
    response = httpx.get(f"{ap_sqlite.url}/info", headers={"Origin": STUDIO})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
    assert response.json()["flags"]["assistants"] is True
    assert httpx.get(f"{ap_sqlite.url}/ok").json() == {"ok": True}
