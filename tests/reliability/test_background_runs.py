"""Background runs and run records against served workers (``agent-runtime serve`` on SQLite, httpx):
create + wait, list filters, cancel (pending, running, finished), tenant isolation of every run route,
and a restart of the only process resuming the runs it left pending."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from agent_runtime.cli import main
from agent_runtime.orchestration.middleware.defaults import open_security_stores
from agent_runtime.settings import Settings

pytestmark = pytest.mark.timeout(120)
SLOW = {"AGENT_RUNTIME_OFFLINE_TOKEN_LATENCY_MS": "40", "AGENT_RUNTIME_RUNS__MAX_CONCURRENT_RUNS": "1"}


def make_keys(data_dir: Path, *principals: tuple[str, str]) -> list[str]:
    async def go() -> list[str]:
        security = open_security_stores(Settings(data_dir=data_dir))
        try:
            return [(await security.keys.create_key(t, u, ["agents:run:*", "sessions"]))[0] for t, u in principals]
        finally:
            await security.aclose()

    return asyncio.run(go())


def client(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def submit(http: httpx.Client, **body: Any) -> dict[str, Any]:
    answer = http.post("/v1/runs", json={"template": "writer", "input": "a poem about rain", "background": True} | body)
    assert answer.status_code == 202, answer.text
    assert answer.headers["location"] == f"/v1/runs/{answer.json()['run_id']}"
    return dict(answer.json())


def wait_for(http: httpx.Client, run_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        run = http.get(f"/v1/runs/{run_id}").json()
        if run["status"] == status or time.monotonic() > deadline:
            return dict(run)
        time.sleep(0.02)


def test_background_runs_wait_list_cancel_and_isolation(worker_factory: Any, tmp_path: Path) -> None:
    data = tmp_path / "shared"
    worker = worker_factory(SLOW | {"AGENT_RUNTIME_DATA_DIR": str(data)})
    alice, bob = make_keys(data, ("tenant-a", "alice"), ("tenant-b", "bob"))
    with client(worker.url, alice) as a, client(worker.url, bob) as b:
        queued = submit(a)
        assert queued["status"] == "pending" and queued["background"] and queued["tenant"] == "tenant-a"
        done = a.get(f"/v1/runs/{queued['run_id']}/wait", params={"timeout": 30}).json()
        assert done["status"] == "success" and done["output"] and done["attempts"] == 1
        assert done["usage"]["total_tokens"] > 0 and done["worker"] and done["ended_at"] >= done["started_at"]

        session = a.post("/v1/sessions", json={"template": "writer"}).json()["id"]
        foreground = a.post("/v1/runs", json={"template": "writer", "input": "hello", "session_id": session})
        assert foreground.status_code == 200
        fg_id = foreground.json()["run_id"]
        recorded = wait_for(a, fg_id, "success")  # the recorder writes a few ms after the answer
        assert recorded["status"] == "success" and not recorded["background"] and recorded["session_id"] == session

        running = submit(a)
        behind = submit(a)
        assert wait_for(a, running["run_id"], "running")["status"] == "running"
        cancelled = a.post(f"/v1/runs/{behind['run_id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        stopped = a.post(f"/v1/runs/{running['run_id']}/cancel").json()
        assert stopped["status"] == "cancelled" and stopped["error"]["code"] == "cancelled"
        again = a.post(f"/v1/runs/{queued['run_id']}/cancel")
        assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"

        ids = lambda **q: [r["run_id"] for r in a.get("/v1/runs", params=q).json()["runs"]]  # noqa: E731
        assert ids() == [behind["run_id"], running["run_id"], fg_id, queued["run_id"]]
        assert ids(status="cancelled") == [behind["run_id"], running["run_id"]]
        assert ids(session_id=session) == [fg_id]
        assert ids(template="writer", limit=2, offset=1) == [running["run_id"], fg_id]
        assert ids(template="analyst") == []
        assert a.get("/v1/runs", params={"status": "bogus"}).status_code == 422
        assert a.get("/v1/runs", params={"limit": 0}).status_code == 422
        assert b.get("/v1/runs").json()["runs"] == []

        for path in ("/v1/runs/{}", "/v1/runs/{}/wait?timeout=1"):
            theirs = b.get(path.format(queued["run_id"]))
            unknown = b.get(path.format("run_unknown"))
            assert theirs.status_code == unknown.status_code == 404
            assert theirs.json()["error"]["code"] == unknown.json()["error"]["code"] == "run_not_found"
        theirs, unknown = (b.post(f"/v1/runs/{rid}/cancel") for rid in (queued["run_id"], "run_unknown"))
        assert theirs.status_code == unknown.status_code == 404
        assert a.get(f"/v1/runs/{queued['run_id']}").json()["status"] == "success"

        streamed = a.post("/v1/runs", json={"template": "writer", "input": "x", "background": True, "stream": True})
        assert streamed.status_code == 422

    cli_checks(worker.url, alice, bob, queued["run_id"], [behind["run_id"], running["run_id"]])


def cli_checks(url: str, alice: str, bob: str, finished: str, cancelled: list[str]) -> None:
    """``agent-runtime runs ...`` shows the same records as the routes, for the same key."""
    runner = CliRunner()

    def cli(key: str, *args: str) -> Any:
        return runner.invoke(main, ["runs", *args], env={"AGENT_RUNTIME_URL": url, "AGENT_RUNTIME_API_KEY": key})

    got = cli(alice, "get", finished)
    assert got.exit_code == 0 and json.loads(got.output)["status"] == "success", got.output
    listed = cli(alice, "list", "--status", "cancelled")
    assert [r["run_id"] for r in json.loads(listed.output)["runs"]] == cancelled
    waited = cli(alice, "wait", finished, "--timeout", "5")
    assert json.loads(waited.output)["run_id"] == finished
    refused = cli(alice, "cancel", finished)
    assert refused.exit_code == 2 and "error [conflict]" in refused.output
    hidden = cli(bob, "get", finished)
    assert hidden.exit_code == 2 and "error [run_not_found]" in hidden.output


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_restart_of_the_only_process_resumes_pending_runs(worker_factory: Any, tmp_path: Path, how: str) -> None:
    data = tmp_path / "shared"
    env = SLOW | {"AGENT_RUNTIME_DATA_DIR": str(data)}
    first = worker_factory(env, name="first")
    (alice,) = make_keys(data, ("tenant-a", "alice"))
    with client(first.url, alice) as a:
        running, pending = submit(a), submit(a)
        assert wait_for(a, running["run_id"], "running")["status"] == "running"
        assert a.get(f"/v1/runs/{pending['run_id']}").json()["status"] == "pending"
    if how == "sigkill":
        first.proc.kill()
        first.proc.wait()
    else:
        first.stop()
    second = worker_factory(env, name="second")
    with client(second.url, alice) as a:
        resumed = a.get(f"/v1/runs/{pending['run_id']}/wait", params={"timeout": 60}).json()
        assert resumed["status"] == "success" and resumed["output"], resumed
        if how == "sigterm":  # put back to pending on the graceful stop: it ran again, as a second attempt
            again = a.get(f"/v1/runs/{running['run_id']}/wait", params={"timeout": 60}).json()
            assert again["status"] == "success" and again["attempts"] == 2, again
