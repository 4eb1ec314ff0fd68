"""A real webhook receiver for tests: ``http.server`` on a free port in a thread, answering each POST
with the next status of its script, and the receiver's own signature check (no library code)."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET = "server-webhook-secret"


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    """Answers each POST with the next status of ``script`` (200 once it is used up), and keeps them all."""

    script: list[int] = field(default_factory=list)
    received: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.received if d.path == path]


@contextmanager
def serving() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                status = state.script.pop(0) if state.script else 200
                state.received.append(Delivery(self.path, dict(self.headers), body, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        thread.join(10)


def expected_signature(tenant: str, header: str, body: bytes) -> bool:
    """The receiver's own check: its tenant key is HMAC-SHA256(server secret, label + tenant)."""
    key = hmac.new(SECRET.encode(), b"agent-runtime webhook v1:" + tenant.encode(), hashlib.sha256).hexdigest()
    fields = dict(part.split("=", 1) for part in header.split(","))
    mac = hmac.new(key.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, fields["v1"])
