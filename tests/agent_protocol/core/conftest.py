"""A real agent-runtime server per state backend (SQLite files; a real redis-server), driven with the
official ``langgraph-sdk`` client over real sockets."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from agent_runtime.agents.assistants import assistant_id
from agent_runtime.settings import Settings
from tests.conftest import RedisServer
from tests.server.conftest import LiveServer


@dataclass
class APServer:
    """A served runtime, its backend's name and keys of two tenants."""

    live: LiveServer
    backend: str
    alice: str  # acme, sessions + runs
    bob: str  # acme, another user
    admin: str  # acme, admin
    eve: str  # evil tenant, admin there
    no_sessions: str  # acme, may run but holds no sessions scope

    @property
    def url(self) -> str:
        return self.live.url

    def client(self, key: str | None = None) -> LangGraphClient:
        return get_client(url=self.url, api_key=key if key is not None else self.alice)

    def run(self, key: str, thread_id: str, text: str, template: str = "writer") -> dict[str, Any]:
        """A run on the thread through the native API (the same session underneath)."""
        body = {"template": template, "input": text, "session_id": thread_id}
        response = httpx.post(f"{self.url}/v1/runs", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert response.status_code in (200, 202), response.text
        result: dict[str, Any] = response.json()
        return result


def bound(template: str) -> dict[str, str]:
    """The metadata a thread bound to ``template`` shows (as LangGraph's server adds it)."""
    return {"graph_id": template, "assistant_id": assistant_id(template)}


GATED = """
templates:
  - name: gated
    description: Asks before it calculates.
    tools: [calculator]
    middleware:
      - name: human_in_the_loop
        options: {interrupt_on: {calculator: true}}
"""


def _serve(settings: Settings, backend: str) -> APServer:
    templates = settings.data_dir / "templates"
    templates.mkdir(parents=True, exist_ok=True)
    (templates / "gated.yaml").write_text(GATED, encoding="utf-8")
    live = LiveServer(settings.model_copy(update={"templates_dir": templates})).start()
    return APServer(
        live,
        backend,
        alice=live.key("acme", "alice", ["agents:run:*", "sessions"]),
        bob=live.key("acme", "bob", ["agents:run:*", "sessions"]),
        admin=live.key("acme", "root", ["admin"]),
        eve=live.key("evil", "eve", ["admin"]),
        no_sessions=live.key("acme", "carol", ["agents:run:*"]),
    )


@pytest.fixture(scope="session")
def ap_memory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APServer]:
    server = _serve(Settings(state_backend="memory", data_dir=tmp_path_factory.mktemp("ap-memory")), "memory")
    yield server
    server.live.stop()


@pytest.fixture(scope="session")
def ap_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APServer]:
    server = _serve(Settings(state_backend="sqlite", data_dir=tmp_path_factory.mktemp("ap-sqlite")), "sqlite")
    yield server
    server.live.stop()


@pytest.fixture(scope="session")
def ap_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APServer]:
    """On a redis-server of its own: the shared one is flushed by other tests while this server lives."""
    redis = RedisServer()
    redis.start()
    settings = Settings(state_backend="redis", redis_url=redis.url, data_dir=tmp_path_factory.mktemp("ap-redis"))
    server = _serve(settings, "redis")
    yield server
    server.live.stop()
    redis.stop()
    shutil.rmtree(redis.dir, ignore_errors=True)


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def ap(request: pytest.FixtureRequest) -> APServer:
    """Each test once per state backend: memory, SQLite files, a real redis-server."""
    server: APServer = request.getfixturevalue(f"ap_{request.param}")
    return server
