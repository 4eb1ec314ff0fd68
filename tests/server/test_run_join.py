"""``GET /v1/runs/{run_id}/stream``: join a background run's events over real sockets, resume after a
disconnect with ``Last-Event-ID``, 410 when those events are gone, 404 for another tenant's run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agent_runtime.settings import RunSettings, Settings
from tests.helpers import until_sync
from tests.server.conftest import LiveServer

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Tokens 20 ms apart (a run to join part way), and few events kept per run (a window to fall out of)."""
    settings = Settings(
        state_backend="memory",
        offline_token_latency_ms=20,
        data_dir=tmp_path_factory.mktemp("join"),
        runs=RunSettings(max_events_per_run=24),
    )
    live = LiveServer(settings).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def alice(server: LiveServer) -> str:
    return server.key("acme", "alice", ["agents:run:*", "sessions"])


def submit(server: LiveServer, key: str, text: str) -> str:
    with server.client(key) as client:
        response = client.post("/v1/runs", json={"template": "writer", "input": text, "background": True})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    return run_id


class Sse:
    """SSE blocks of a live response, as ``(id, event, data)``."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()

    def __iter__(self) -> Iterator[tuple[str | None, str, Any]]:
        import json

        id_, name, data = None, "message", ""
        for line in self.lines:
            if not line:
                if data:
                    yield id_, name, json.loads(data)
                id_, name, data = None, "message", ""
                continue
            field, _, value = line.partition(": ")
            if field == "id":
                id_ = value
            elif field == "event":
                name = value
            elif field == "data":
                data = value


def join(
    server: LiveServer, key: str, run_id: str, last: str | None = None, stop_after: int | None = None
) -> list[Any]:
    headers = {"Authorization": f"Bearer {key}", **({"Last-Event-ID": last} if last else {})}
    got: list[Any] = []
    with httpx.stream("GET", f"{server.url}/v1/runs/{run_id}/stream", headers=headers, timeout=30) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in Sse(response):
            got.append(event)
            if stop_after is not None and len(got) >= stop_after:
                break  # the client goes away part way
    return got


def test_join_part_way_then_resume_after_the_last_id(server: LiveServer, alice: str) -> None:
    run_id = submit(server, alice, "a long poem about the sea")
    head = join(server, alice, run_id, stop_after=3)
    assert [name for _, name, _ in head] == ["token"] * 3 and all(id_ for id_, _, _ in head)
    tail = join(server, alice, run_id, last=head[-1][0])
    names = [name for _, name, _ in tail]
    assert names[-1] == "final" and names.count("final") == 1 and set(names[:-1]) == {"token"}
    ids = [id_ for id_, _, _ in head + tail]
    assert len(set(ids)) == len(ids) and head[-1][0] not in [id_ for id_, _, _ in tail]
    final = tail[-1][2]
    text = "".join(data["text"] for _, name, data in head + tail if name == "token")
    assert final["run_id"] == run_id and final["status"] == "completed" and text == final["output"]
    record = server.client(alice).get(f"/v1/runs/{run_id}").json()
    assert record["status"] == "success" and record["output"] == final["output"]


def test_a_finished_run_is_replayed_whole(server: LiveServer, alice: str) -> None:
    run_id = submit(server, alice, "a haiku")
    with server.client(alice) as client:
        assert client.get(f"/v1/runs/{run_id}/wait", params={"timeout": 60}).json()["status"] == "success"
    events = join(server, alice, run_id)
    assert events[-1][1] == "final" and events[0][1] == "token"
    assert {name for _, name, _ in events} <= {"token", "tool_call", "tool_result", "final"}  # no graph events


def test_410_once_the_events_after_the_id_are_gone(server: LiveServer, alice: str) -> None:
    run_id = submit(server, alice, "a long story about a lighthouse keeper and the sea")
    events = join(server, alice, run_id)
    assert int(events[0][0]) > 1 and events[-1][1] == "final"  # the oldest are gone
    headers = {"Authorization": f"Bearer {alice}", "Last-Event-ID": "1"}
    response = httpx.get(f"{server.url}/v1/runs/{run_id}/stream", headers=headers, timeout=30)
    assert response.status_code == 410 and response.json()["error"]["code"] == "events_expired"
    headers["Last-Event-ID"] = "not an id"
    assert httpx.get(f"{server.url}/v1/runs/{run_id}/stream", headers=headers, timeout=30).status_code == 410


def test_another_tenants_or_an_unknown_run_is_404(server: LiveServer, alice: str) -> None:
    run_id = submit(server, alice, "a haiku")
    eve = server.key("evil", "eve", ["admin"])
    bob = server.key("acme", "bob", ["agents:run:*"])
    for key, rid in ((eve, run_id), (alice, "run_" + "0" * 32)):
        response = httpx.get(f"{server.url}/v1/runs/{rid}/stream", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 404 and response.json()["error"]["code"] == "run_not_found", response.text
    assert join(server, bob, run_id)[-1][1] == "final"  # the tenant's runs, like GET /v1/runs/{id}
    no_key = httpx.get(f"{server.url}/v1/runs/{run_id}/stream")
    assert no_key.status_code == 401


def test_a_foreground_run_ended_unlogged_ends_the_join(server: LiveServer, alice: str) -> None:
    with server.client(alice) as client:
        done = client.post("/v1/runs", json={"template": "writer", "input": "hi"}).json()
        until_sync(lambda: client.get(f"/v1/runs/{done['run_id']}").status_code == 200, "its record")
    assert join(server, alice, done["run_id"]) == []
