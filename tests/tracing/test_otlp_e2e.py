"""A served worker exports its spans over OTLP/HTTP (protobuf) to a receiver this test runs on a socket."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.reliability.conftest import worker_factory  # noqa: F401 - the fixture

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class _Receiver(ThreadingHTTPServer):
    spans: list[Any]
    lock: threading.Lock


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path != "/v1/traces" or self.headers["Content-Type"] != "application/x-protobuf":
            self.send_response(400)
            self.end_headers()
            return
        request = ExportTraceServiceRequest.FromString(body)
        with self.server.lock:
            for resource in request.resource_spans:
                service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
                for scope in resource.scope_spans:
                    self.server.spans.extend((service, span) for span in scope.spans)
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver(("127.0.0.1", 0), _Handler)
    server.spans, server.lock = [], threading.Lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _wait_for(receiver: _Receiver, predicate: Any, timeout: float = 30) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with receiver.lock:
            spans = [span for _, span in receiver.spans]
        if predicate(spans):
            return spans
        time.sleep(0.05)
    raise AssertionError(f"spans never arrived: {[s.name for s in spans]}")


def test_a_served_run_is_one_trace_continuing_the_clients_traceparent(worker_factory: Any, receiver: _Receiver) -> None:  # noqa: F811
    port = receiver.server_address[1]
    worker = worker_factory(
        {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": "runtime-under-test",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        }
    )
    headers = {"Authorization": f"Bearer {worker.admin_key}", "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    answer = httpx.post(
        worker.url + "/v1/runs", json={"template": "analyst", "input": "what is 17*23+4?"}, headers=headers, timeout=30
    )
    assert answer.status_code == 200, answer.text
    run_id = answer.json()["run_id"]
    traced = bytes.fromhex(TRACE_ID)

    def complete(spans: list[Any]) -> bool:
        names = {s.name for s in spans if s.trace_id == traced}
        return "invoke_agent analyst" in names and "execute_tool calculator" in names and "POST /v1/runs" in names

    spans = [s for s in _wait_for(receiver, complete) if s.trace_id == traced]
    by_name = {s.name: s for s in spans}
    run = by_name["invoke_agent analyst"]
    servers = {s.span_id: s for s in spans if s.name == "POST /v1/runs"}
    assert all(s.parent_span_id == bytes.fromhex(PARENT_ID) for s in servers.values())  # the client's span
    parents = {s.span_id: s.parent_span_id for s in spans}
    ancestor = run.parent_span_id  # the run nests under the server span (FastAPI's own spans may sit between)
    while ancestor in parents and ancestor not in servers:
        ancestor = parents[ancestor]
    assert ancestor in servers
    attributes = {a.key: a.value for a in run.attributes}
    assert attributes["agent_runtime.run_id"].string_value == run_id
    assert attributes["agent_runtime.tenant"].string_value
    chats = [s for s in spans if s.name.startswith("chat ")]
    assert len(chats) == 2 and all(c.parent_span_id == run.span_id for c in chats)
    assert by_name["execute_tool calculator"].parent_span_id == run.span_id
    assert {a.key for a in chats[0].attributes} >= {"gen_ai.operation.name", "gen_ai.usage.input_tokens"}
    with receiver.lock:
        assert {service for service, _ in receiver.spans} == {"runtime-under-test"}
    # a request without traceparent starts a trace of its own
    plain = httpx.post(
        worker.url + "/v1/runs",
        json={"template": "writer", "input": "hi"},
        headers={"Authorization": headers["Authorization"]},
        timeout=30,
    )
    assert plain.status_code == 200
    spans = _wait_for(receiver, lambda all_: any(s.name == "invoke_agent writer" for s in all_))
    writer = next(s for s in spans if s.name == "invoke_agent writer")
    assert writer.trace_id != traced
    assert any(s.name == "POST /v1/runs" and s.trace_id == writer.trace_id for s in spans)
