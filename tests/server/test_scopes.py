"""Scope matrix: every HTTP route against a key holding each scope ``keys create`` offers, over a real
socket. A route the key's scopes do not grant answers 403 ``permission_denied`` before it looks
anything up; one they grant answers as it would for anyone. A key created without scopes holds the
defaults (``sessions`` and ``usage``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from agent_runtime.settings import Settings
from tests.server.conftest import LiveServer

NOWHERE = "ses_00000000000000000000000000000000"
SCOPES = [
    "agents:run:writer",
    "agents:run:*",
    "sessions",
    "usage",
    "models:override",
    "metrics:read",
    "dashboard:fleet",
    "store:read",
    "store:write",
    "admin",
    "platform:admin",
    "",  # no scope list at all: the defaults
]
CHAT = {"model": "writer", "messages": [{"role": "user", "content": "hi"}]}
RUN = {"template": "writer", "input": "hi"}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    needs: frozenset[str]
    ok: int
    body: dict[str, Any] | None = None
    in_session: bool = False
    """Name a fresh session per key with ``X-Session-Id`` (chat completions create it on first use)."""

    @property
    def name(self) -> str:
        in_session = self.in_session or bool(self.body and "session_id" in self.body)
        return f"{self.method} {self.path}{' in a session' if in_session else ''}"


def route(method: str, path: str, needs: set[str], ok: int, **kwargs: Any) -> Route:
    return Route(method, path, frozenset(needs), ok, **kwargs)


ROUTES = [
    route("POST", "/v1/runs", {"agents:run:writer"}, 200, body=RUN),
    route("POST", "/v1/runs", {"agents:run:writer", "sessions"}, 404, body=RUN | {"session_id": NOWHERE}),
    route("POST", "/v1/chat/completions", {"agents:run:writer"}, 200, body=CHAT),
    route("POST", "/v1/chat/completions", {"agents:run:writer", "sessions"}, 200, body=CHAT, in_session=True),
    route("POST", f"/v1/runs/{NOWHERE}/resume", set(), 404, body={"decisions": "approve"}),
    route("GET", "/v1/templates", set(), 200),
    route("GET", "/v1/templates/writer", set(), 200),
    route("GET", "/v1/models", set(), 200),
    route("GET", "/v1/models/writer", set(), 200),
    route("POST", "/v1/sessions", {"sessions"}, 201, body={}),
    route("GET", "/v1/sessions", {"sessions"}, 200),
    route("GET", f"/v1/sessions/{NOWHERE}", {"sessions"}, 404),
    route("GET", f"/v1/sessions/{NOWHERE}/messages", {"sessions"}, 404),
    route("DELETE", f"/v1/sessions/{NOWHERE}", {"sessions"}, 404),
    route("GET", "/v1/usage", {"usage"}, 200),
    route("GET", "/metrics", {"metrics:read"}, 200),
    route("GET", "/dashboard/data", {"admin"}, 200),
    route("PUT", "/store/items", {"store:write"}, 204, body={"namespace": ["n"], "key": "k", "value": {"v": 1}}),
    route("GET", "/store/items?namespace=nowhere&key=k", {"store:read"}, 404),
    route("DELETE", "/store/items", {"store:write"}, 404, body={"namespace": ["nowhere"], "key": "k"}),
    route("POST", "/store/items/search", {"store:read"}, 200, body={"namespace_prefix": ["n"]}),
    route("POST", "/store/namespaces", {"store:read"}, 200, body={}),
    route("GET", "/healthz", set(), 200),
    route("GET", "/readyz", set(), 200),
    route("POST", "/assistants/search", set(), 200, body={}),
    route("GET", "/assistants/writer", set(), 200),
    route("GET", "/assistants/writer/schemas", set(), 200),
    route("POST", "/threads", {"sessions"}, 200, body={}),
    route("POST", "/threads/search", {"sessions"}, 200, body={}),
    route("GET", f"/threads/{NOWHERE}", {"sessions"}, 404),
    route("GET", f"/threads/{NOWHERE}/state", {"sessions"}, 404),
    route("POST", f"/threads/{NOWHERE}/history", {"sessions"}, 404, body={}),
    route("DELETE", f"/threads/{NOWHERE}", {"sessions"}, 404),
    route("GET", "/info", set(), 200),
    route("GET", "/v1/keys", {"admin"}, 200),
    route("GET", "/v1/keys/0000000000000000", {"admin"}, 404),
    route("DELETE", "/v1/keys/0000000000000000", {"admin"}, 404),
    route("PATCH", "/v1/keys/0000000000000000", {"admin"}, 404, body={"rpm": 1}),
]


def grants(held: str, need: str) -> bool:
    """The documented rules, spelled out independently of ``Principal.allows``."""
    scopes = {held} if held else {"sessions", "usage"}
    if need in scopes or "admin" in scopes:
        return True
    return need.startswith("agents:run:") and "agents:run:*" in scopes


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(state_backend="memory", data_dir=tmp_path_factory.mktemp("scopes"), metrics_require_auth=True)
    live = LiveServer(settings).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def keys(server: LiveServer) -> dict[str, str]:
    return {scope: server.key("acme", f"user{i}", [scope] if scope else []) for i, scope in enumerate(SCOPES)}


@pytest.mark.parametrize("target", ROUTES, ids=[r.name for r in ROUTES])
def test_every_route_enforces_its_scopes(server: LiveServer, keys: dict[str, str], target: Route) -> None:
    wrong: list[str] = []
    for i, scope in enumerate(SCOPES):
        headers = {"X-Session-Id": f"chat-{i}"} if target.in_session else {}
        with server.client(keys[scope]) as client:
            response = client.request(target.method, target.path, json=target.body, headers=headers)
        allowed = all(grants(scope, need) for need in target.needs)
        expected = target.ok if allowed else 403
        if response.status_code != expected or (
            not allowed and response.json()["error"]["code"] != "permission_denied"
        ):
            wrong.append(f"{scope or '<none>'}: {response.status_code} (expected {expected}) {response.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_a_key_with_only_a_run_scope_is_refused_sessions_and_usage(server: LiveServer, keys: dict[str, str]) -> None:
    """The report of issue 15: such a key got 201 on POST /v1/sessions and 200 on the listings."""
    with server.client(keys["agents:run:writer"]) as client:
        assert client.post("/v1/sessions", json={}).status_code == 403
        assert client.get("/v1/sessions").status_code == 403
        refused = client.get("/v1/usage")
    assert refused.status_code == 403 and refused.json()["error"]["details"] == {"scope": "usage"}


def shape(response: Any) -> tuple[int, list[str], dict[str, Any]]:
    """What a caller observes of a created session, bar the values that differ between any two."""
    body = response.json()
    fixed = {k: body[k] for k in ("tenant", "template", "status", "metadata", "message_count")}
    return response.status_code, sorted(body), fixed


def test_an_id_another_user_of_the_tenant_holds_is_created_like_a_free_one(server: LiveServer) -> None:
    alice = server.key("acme", "alice", ["agents:run:*", "sessions"])
    bob = server.key("acme", "bob", ["agents:run:*", "sessions"])
    admin = server.key("acme", "root", ["admin"])
    with server.client(alice) as client:
        assert client.post("/v1/sessions", json={"session_id": "shared-1"}).status_code == 201
        ran = client.post("/v1/runs", json=RUN | {"input": "my name is Ada", "session_id": "shared-1"})
        assert ran.status_code == 200
    with server.client(bob) as client:
        taken = client.post("/v1/sessions", json={"session_id": "shared-1"})
        free = client.post("/v1/sessions", json={"session_id": "free-1"})
        assert shape(taken) == shape(free) and taken.json()["id"] == "shared-1"
        assert taken.json()["user_id"] == "bob"
        assert client.get("/v1/sessions/shared-1/messages").json()["data"] == []  # his own, empty
        again = client.post("/v1/sessions", json={"session_id": "shared-1"})
        assert again.status_code == 409 == client.post("/v1/sessions", json={"session_id": "free-1"}).status_code
        ran = client.post("/v1/runs", json=RUN | {"input": "what is my name?", "session_id": "shared-1"})
        assert ran.status_code == 200 and ran.json()["session_id"] == "shared-1" and "Ada" not in ran.json()["output"]
    with server.client(alice) as client:
        mine = client.get("/v1/sessions/shared-1/messages").json()["data"]
        assert [m["content"] for m in mine if m["role"] == "user"] == ["my name is Ada"]
    with server.client(admin) as client:
        assert client.get("/v1/sessions/shared-1").json()["user_id"] == "alice"
        assert client.get("/v1/sessions/shared-1", params={"user": "bob"}).json()["user_id"] == "bob"
    with server.client(bob) as client:
        assert client.get("/v1/sessions/shared-1", params={"user": "alice"}).status_code == 403
