"""A raw HTTP/1.1 client on a socket: sends exactly the bytes given (CRLF, invalid UTF-8, lies in
``Content-Length``), which httpx would refuse or fix, and reports a hang as a failure."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

TIMEOUT_S = 15.0


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def send_raw(port: int, data: bytes, *, timeout: float = TIMEOUT_S) -> Answer:
    """Send ``data`` as is and read one response (the request should say ``Connection: close``).

    Raises:
        TimeoutError: the server neither answered nor closed within ``timeout`` (a hang).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        try:
            conn.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (413, 400) and close before the whole body was sent
        received = b""
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                received += chunk
        except ConnectionResetError:
            pass
        except TimeoutError as exc:
            raise TimeoutError(f"no complete answer within {timeout} s: {received[:200]!r}") from exc
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 "):
        raise AssertionError(f"not an HTTP answer: {received[:200]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    return Answer(int(lines[0].split()[1]), headers, body)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


def request(
    method: str,
    path: bytes | str,
    *,
    token: bytes | str | None = None,
    body: bytes | None = None,
    content_type: bytes | str | None = b"application/json",
    headers: list[bytes] | None = None,
    content_length: int | None = None,
) -> bytes:
    """The bytes of one request; every part may be any bytes."""

    def b(value: bytes | str) -> bytes:
        return value if isinstance(value, bytes) else value.encode()

    lines = [b(method) + b" " + b(path) + b" HTTP/1.1", b"Host: fuzz", b"Connection: close"]
    if token is not None:
        lines.append(b"Authorization: Bearer " + b(token))
    if body is not None:
        if content_type is not None:
            lines.append(b"Content-Type: " + b(content_type))
        lines.append(b"Content-Length: " + str(len(body) if content_length is None else content_length).encode())
    lines += headers or []
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")
