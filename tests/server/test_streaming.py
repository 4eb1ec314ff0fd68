"""SSE: typed run events, OpenAI chunks, and a client that hangs up mid-stream (run stopped, still charged)."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import Keys, LiveServer, parse_sse, sse_json


def test_run_stream_events(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.alice) as client:
        response = client.post("/v1/runs", json={"template": "analyst", "input": "what is 17*23+4?", "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_json(response.text)
    names = [name for name, _ in events]
    assert names[-1] == "final" and "error" not in names
    assert names.index("tool_call") < names.index("tool_result") < names.index("final")
    call = next(data for name, data in events if name == "tool_call")
    assert call["name"] == "calculator" and call["args"] == {"expression": "17*23+4"}
    assert next(data for name, data in events if name == "tool_result")["output"] == "395"
    tokens = "".join(data["text"] for name, data in events if name == "token")
    final = events[-1][1]
    assert "395" in final["output"] and tokens.endswith(final["output"])
    assert final["run_id"] == response.headers["x-run-id"]
    assert final["usage"]["total_tokens"] > 0 and final["usage"]["cost_usd"] >= 0


def test_sse_parser_follows_the_spec() -> None:
    text = ': comment\nevent: token\ndata: {"text":"a"}\n\ndata: line1\ndata: line2\n\nevent: final\ndata:x\n\n'
    assert parse_sse(text) == [("token", '{"text":"a"}'), ("message", "line1\nline2"), ("final", "x")]


def test_chat_completion_stream_chunks(live: LiveServer, keys: Keys) -> None:
    body = {
        "model": "writer",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "a haiku about rain"}],
    }
    with live.client(keys.alice) as client:
        response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    events = sse_json(response.text)
    assert all(name == "message" for name, _ in events)
    assert events[-1][1] == "[DONE]"
    chunks = [data for _, data in events[:-1]]
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "writer" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finishing = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert [c["choices"][0]["finish_reason"] for c in finishing] == ["stop"]
    usage = chunks[-1]
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] > 0
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert "rain" in text.lower()


def _runs(server: LiveServer, status: str) -> float:
    with server.client() as client:
        text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "agent_runtime_runs":
            return sum(
                s.value for s in family.samples if s.name.endswith("_total") and s.labels.get("status") == status
            )
    return 0.0


def test_disconnect_stops_the_run_and_it_is_still_charged(slow: LiveServer) -> None:
    key = slow.key("acme", "quitter", ["agents:run:*", "usage"])
    cancelled_before = _runs(slow, "cancelled")
    with slow.client(key) as client:
        # uninterrupted, this answer is ~15 tokens at 40 ms each
        request = {"template": "writer", "input": "a haiku about rain", "stream": True}
        with client.stream("POST", "/v1/runs", json=request) as response:
            assert response.status_code == 200
            seen = 0
            for line in response.iter_lines():
                if line.startswith("event: token"):
                    seen += 1
                    if seen == 2:
                        break
        # leaving the block closed the connection mid-stream
        deadline = time.monotonic() + 10
        while _runs(slow, "cancelled") < cancelled_before + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _runs(slow, "cancelled") == cancelled_before + 1
        deadline = time.monotonic() + 5
        usage = client.get("/v1/usage").json()
        while usage["totals"]["runs"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
            usage = client.get("/v1/usage").json()
    assert usage["totals"]["runs"] == 1
    assert 2 <= usage["totals"]["output_tokens"] < 10, usage["totals"]
    assert usage["totals"]["input_tokens"] > 0 and usage["totals"]["cost_usd"] > 0


def test_complete_stream_is_not_cancelled(slow: LiveServer) -> None:
    key = slow.key("acme", "patient", ["agents:run:*", "usage"])
    with slow.client(key) as client:
        response = client.post("/v1/runs", json={"template": "writer", "input": "hi", "stream": True})
        events = sse_json(response.text)
        assert events[-1][0] == "final" and events[-1][1]["status"] == "completed"
        assert client.get("/v1/usage").json()["totals"]["runs"] == 1
