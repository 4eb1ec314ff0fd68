"""LangSmith tracing switches on from the environment alone: runs are posted to the configured endpoint.

The endpoint is a local HTTP server of the test's own, so nothing leaves the machine.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.callbacks import langsmith_tracer
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.types import AgentContext


class _Collector(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        type(self).bodies.append(self.path.encode() + b" " + self.rfile.read(length))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    do_PATCH = do_POST

    def do_GET(self) -> None:  # no /info: the client falls back to its default ingest settings
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def langsmith_endpoint(monkeypatch: pytest.MonkeyPatch) -> Any:
    _Collector.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2_test_key")
    monkeypatch.setenv("LANGSMITH_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("LANGSMITH_PROJECT", "agent-runtime-tests")
    _forget_langsmith_env()  # a real process sets these before its first run; the test suite did runs already
    yield _Collector
    server.shutdown()
    monkeypatch.undo()
    _forget_langsmith_env()


def _forget_langsmith_env() -> None:
    import langsmith.run_trees as run_trees
    import langsmith.utils as ls_utils

    ls_utils.get_env_var.cache_clear()
    ls_utils.get_tracer_project.cache_clear()
    run_trees._CLIENT = None


def test_no_tracer_without_the_environment() -> None:
    assert langsmith_tracer() is None


async def test_runs_are_traced_to_langsmith_when_its_env_is_set(langsmith_endpoint: Any) -> None:
    from langchain_core.tracers.langchain import wait_for_all_tracers

    assert langsmith_tracer() is not None
    result = await AgentExecutor(AgentFactory()).execute_async(AgentContext(input="what is 6*7?", template="analyst"))
    assert "42" in result.output
    wait_for_all_tracers()
    posted = b"\n".join(langsmith_endpoint.bodies)
    assert posted, "nothing was sent to the LangSmith endpoint"
    assert b"calculator" in posted and b"analyst" in posted
