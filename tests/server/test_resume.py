"""``POST /v1/runs/{run_id}/resume``: approve or reject a run paused for human approval, over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.conftest import LiveServer, sse_json
from tests.workflows.conftest import gated_template, recording_tool

ASK = 'use publish {"text": "launch"}'


@pytest.fixture(scope="module")
def gated(live: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    calls = tmp_path_factory.mktemp("gated") / "calls.txt"
    assert live.runtime is not None
    live.runtime.factory.register_tool(recording_tool(calls), replace=True)
    live.runtime.factory.register_template(gated_template(), replace=True)
    return calls


def _calls(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _pause(live: LiveServer, key: str) -> dict:
    with live.client(key) as client:
        paused = client.post("/v1/runs", json={"template": "gated", "input": ASK})
    assert paused.status_code == 200, paused.text
    body = paused.json()
    assert body["status"] == "interrupted"
    assert body["metadata"]["interrupts"][0]["value"]["action_requests"][0]["name"] == "publish"
    return body


def test_approve_runs_the_tool(live: LiveServer, gated: Path) -> None:
    key = live.key("acme", "approver", ["agents:run:*"])
    run = _pause(live, key)
    assert _calls(gated) == []
    with live.client(key) as client:
        done = client.post(f"/v1/runs/{run['metadata']['resume_id']}/resume", json={"decisions": "approve"})
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "completed" and "published launch" in done.json()["output"]
        assert _calls(gated) == ["launch"]
        again = client.post(f"/v1/runs/{run['run_id']}/resume", json={"decisions": "approve"})
    assert again.status_code in (404, 409)  # nothing waits any more


def test_reject_over_sse_never_runs_the_tool(live: LiveServer, gated: Path) -> None:
    key = live.key("acme", "rejecter", ["agents:run:*"])
    before = _calls(gated)
    run = _pause(live, key)
    with live.client(key) as client:
        done = client.post(f"/v1/runs/{run['run_id']}/resume", json={"decisions": "reject", "stream": True})
    assert done.status_code == 200 and done.headers["content-type"].startswith("text/event-stream")
    events = sse_json(done.text)
    assert events[-1][0] == "final" and events[-1][1]["status"] == "completed"
    assert _calls(gated) == before  # the tool never ran


def test_other_users_and_bad_decisions_are_refused(live: LiveServer, gated: Path) -> None:
    owner = live.key("acme", "owner", ["agents:run:*"])
    stranger = live.key("evil", "mallory", ["agents:run:*"])
    run = _pause(live, owner)
    with live.client(stranger) as client:
        refused = client.post(f"/v1/runs/{run['run_id']}/resume", json={"decisions": "approve"})
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "session_not_found"
    with live.client(owner) as client:
        bad = client.post(f"/v1/runs/{run['run_id']}/resume", json={"decisions": "maybe"})
        assert bad.status_code == 422
        unknown = client.post("/v1/runs/run_doesnotexist/resume", json={"decisions": "approve"})
        assert unknown.status_code == 404
        wrong_shape = client.post(
            f"/v1/runs/{run['run_id']}/resume", json={"decisions": [{"type": "approve"}, {"type": "approve"}]}
        )
        assert wrong_shape.status_code == 422, wrong_shape.text
    assert _calls(gated).count("launch") <= 1


def test_chat_completions_says_a_run_paused_and_how_to_answer_it(live: LiveServer, gated: Path) -> None:
    """The OpenAI API has no approval step: a paused run is a 409 naming the resume id, never an empty answer."""
    key = live.key("acme", "openai-user", ["agents:run:*"])
    before = _calls(gated)
    chat = {"model": "gated", "messages": [{"role": "user", "content": ASK}]}
    with live.client(key) as client:
        paused = client.post("/v1/chat/completions", json=chat)
        assert paused.status_code == 409, paused.text
        error = paused.json()["error"]
        assert "paused for approval" in error["message"] and error["details"]["run_id"].startswith("run_")
        streamed = client.post("/v1/chat/completions", json={**chat, "stream": True})
        assert streamed.status_code == 200 and '"code": "conflict"' in streamed.text.replace('":"', '": "')
        done = client.post(f"/v1/runs/{error['details']['resume_id']}/resume", json={"decisions": "approve"})
    assert done.status_code == 200 and done.json()["status"] == "completed", done.text
    assert _calls(gated) == [*before, "launch"]
