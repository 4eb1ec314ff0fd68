"""Server-sent events: encoding, and a response that stops the run when the client goes away.

Starlette's ``StreamingResponse`` only notices a disconnect when a write fails, which can be long
after the client left. ``EventStreamResponse`` watches ``http.disconnect`` while it streams; on a
disconnect it cancels the writer once and closes the event generator, whose ``finally`` (the
executor's ``execute_stream``) abandons the run: the model stream is cancelled, and the run is still
logged and charged for what it spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["EventStreamResponse", "sse_data", "sse_event"]


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def sse_event(event: str, data: Any, *, id: str | None = None) -> bytes:
    """``event: <name>`` + one ``data:`` line of JSON (JSON never holds a raw newline); ``id``: the
    event's ``id:`` line, which a client sends back as ``Last-Event-ID`` to resume after it."""
    head = f"event: {event}\n" if id is None else f"event: {event}\nid: {id}\n"
    return f"{head}data: {_dumps(data)}\n\n".encode()


def sse_data(data: Any) -> bytes:
    """A nameless ``data:`` event (the OpenAI streaming format); strings are sent as they are."""
    text = data if isinstance(data, str) else _dumps(data)
    return f"data: {text}\n\n".encode()


class EventStreamResponse(Response):
    """``text/event-stream`` from an async iterator of encoded events.

    Args:
        events: yields ready-to-send bytes; it is always closed (``aclose``) when the response ends,
            normally, on error, or on client disconnect.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        events: AsyncIterator[bytes],
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.events = events
        self.status_code = status_code
        self.background = background
        base = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        self.init_headers({**base, **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        writer = asyncio.create_task(self._write(send))
        watcher = asyncio.create_task(_wait_disconnect(receive))
        try:
            await asyncio.wait({writer, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not writer.done():
                writer.cancel()  # one cancellation: the generator's cleanup may still await
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await writer
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if self.background is not None:
            await self.background()

    async def _write(self, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for chunk in self.events:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            close = getattr(self.events, "aclose", None)
            if close is not None:
                await close()


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
