"""``/v1/keys`` over a real socket: admins manage their tenant's keys; the keys work (or stop) at once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from agent_runtime.settings import Settings
from tests.server.conftest import LiveServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data: Path = tmp_path_factory.mktemp("keys-api")
    live = LiveServer(Settings(state_backend="sqlite", data_dir=data, api_key_cache_s=0)).start()
    yield live
    live.stop()


def _as(live: LiveServer, key: str) -> httpx.Client:
    return live.client(key)


def test_an_admin_creates_a_key_that_works_and_is_shown_once(server: LiveServer) -> None:
    admin = server.key("acme", "root", ["admin"])
    with _as(server, admin) as client:
        made = client.post("/v1/keys", json={"user": "dana", "scopes": ["agents:run:writer"], "daily_tokens": 5000})
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["tenant"] == "acme" and body["user"] == "dana" and body["scopes"] == ["agents:run:writer"]
        assert made.headers["cache-control"] == "no-store" and "key_hash" not in body
        with _as(server, body["key"]) as dana:
            assert dana.post("/v1/runs", json={"template": "writer", "input": "hello"}).status_code == 200
            assert dana.post("/v1/runs", json={"template": "analyst", "input": "hello"}).status_code == 403
        listed = client.get("/v1/keys").json()["keys"]
        assert body["key_id"] in [k["key_id"] for k in listed] and all("key" not in k for k in listed)
        one = client.get(f"/v1/keys/{body['key_id']}").json()
        assert "key" not in one
        daily = next(q for q in one["quotas"] if q["kind"] == "daily_tokens")
        assert daily["limit"] == 5000 and daily["spent"] > 0  # the run above, charged to this key


def test_changes_and_revocation_apply_to_the_next_request(server: LiveServer) -> None:
    admin = server.key("acme", "root", ["admin"])
    with _as(server, admin) as client:
        made = client.post("/v1/keys", json={"user": "eli", "scopes": ["agents:run:*"]}).json()
        with _as(server, made["key"]) as eli:
            assert eli.post("/v1/runs", json={"template": "analyst", "input": "hi"}).status_code == 200
            changed = client.patch(f"/v1/keys/{made['key_id']}", json={"scopes": ["agents:run:writer"], "rpm": 100})
            assert changed.status_code == 200 and changed.json()["rpm"] == 100
            assert eli.post("/v1/runs", json={"template": "analyst", "input": "hi"}).status_code == 403
            lifted = client.patch(f"/v1/keys/{made['key_id']}", json={"rpm": None}).json()
            assert lifted["rpm"] is None and lifted["scopes"] == ["agents:run:writer"]  # untouched field kept
            revoked = client.delete(f"/v1/keys/{made['key_id']}")
            assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
            assert eli.post("/v1/runs", json={"template": "writer", "input": "hi"}).status_code == 401
        assert client.patch(f"/v1/keys/{made['key_id']}", json={"rpm": 1}).status_code == 409


def test_tenants_are_confined_and_platform_admin_is_explicit(server: LiveServer) -> None:
    acme_admin = server.key("acme", "root", ["admin"])
    evil_admin = server.key("evil", "root", ["admin", "*"])
    platform = server.key("ops", "root", ["admin", "platform:admin"])
    with _as(server, acme_admin) as acme, _as(server, evil_admin) as evil, _as(server, platform) as ops:
        mine = acme.post("/v1/keys", json={"user": "fay"}).json()
        for call in (evil.get, evil.delete):
            assert call(f"/v1/keys/{mine['key_id']}").status_code == 404
        assert evil.patch(f"/v1/keys/{mine['key_id']}", json={"rpm": 1}).status_code == 404
        assert mine["key_id"] not in [k["key_id"] for k in evil.get("/v1/keys").json()["keys"]]
        assert evil.get("/v1/keys", params={"tenant": "acme"}).status_code == 403
        assert evil.post("/v1/keys", json={"user": "x", "tenant": "acme"}).status_code == 403
        assert evil.post("/v1/keys", json={"user": "x", "scopes": ["platform:admin"]}).status_code == 403
        assert ops.get(f"/v1/keys/{mine['key_id']}", params={"tenant": "acme"}).status_code == 200
        made = ops.post("/v1/keys", json={"user": "gus", "tenant": "acme"})
        assert made.status_code == 201 and made.json()["tenant"] == "acme"
    user_key = server.key("acme", "hal", ["agents:run:*", "usage"])
    with _as(server, user_key) as hal:
        assert hal.get("/v1/keys").status_code == 403
        assert hal.post("/v1/keys", json={"user": "hal"}).status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user": "x", "scopes": ["bogus:scope"]}, "scopes"),
        ({"user": "x", "rpm": -1}, "rpm"),
        ({"user": "x", "expires_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()}, "expires_at"),
        ({"user": "x", "colour": "red"}, "colour"),
        ({"user": ""}, "user"),
    ],
)
def test_bad_key_requests_are_422_naming_the_problem(server: LiveServer, body: dict[str, object], field: str) -> None:
    with _as(server, server.key("acme", "root", ["admin"])) as client:
        answer = client.post("/v1/keys", json=body)
    assert answer.status_code == 422, answer.text
    assert field in answer.text or "past" in answer.text or "unknown scopes" in answer.text
    assert client.is_closed
