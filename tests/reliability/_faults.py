"""Helpers of the fault tests: runtime settings on a test Redis, an in-process HTTP client, a fake
model provider speaking the OpenAI wire format, and (run as a module) the worker a test kills.

``python -m tests.reliability._faults worker <settings json> <key> <session> <mode>`` runs turns in a
session and prints ``READY`` / ``STREAMING <run_id>`` lines for the parent to time its ``SIGKILL``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt

from agent_runtime.runtime import Runtime
from agent_runtime.server.app import create_app
from agent_runtime.settings import LimitSettings, RedisSettings, ReliabilitySettings, Settings
from agent_runtime.types import AgentContext

JWT_SECRET = "reliability-test-secret-0123456789abcdef"


def redis_settings(url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Redis state with short client timeouts and a short breaker cooldown, so faults resolve quickly."""
    reliability = ReliabilitySettings(
        **overrides.pop("reliability", {"breaker_failures": 3, "breaker_cooldown_s": 0.3})
    )
    limits = LimitSettings(**overrides.pop("limits", {"run_timeout_s": 10}))
    return Settings(
        state_backend="redis",
        redis_url=url,
        data_dir=data_dir,
        redis=RedisSettings(connect_timeout=0.5, socket_timeout=overrides.pop("socket_timeout", 1.5), key_prefix="rel"),
        reliability=reliability,
        limits=limits,
        jwt_secret=JWT_SECRET,
        **overrides,
    )


def jwt_token(tenant: str, user: str, **claims: Any) -> str:
    body = {
        "sub": user,
        "tenant": tenant,
        "scope": "agents:run:* sessions usage",
        "exp": int(time.time()) + 600,
        **claims,
    }
    return jwt.encode(body, JWT_SECRET, algorithm="HS256")


@asynccontextmanager
async def http_client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The real application on the caller's runtime, through httpx's ASGI transport."""
    app = create_app(runtime, drain_timeout_s=1)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
        yield client


class FakeProvider:
    """An OpenAI-compatible ``/v1/chat/completions`` on a real socket that fails as told.

    ``status`` 200 answers normally; 429 and 5xx fail, with ``Retry-After: retry_after`` when set.
    ``hits`` records the arrival time of every request.
    """

    def __init__(self, status: int = 200, retry_after: float | None = None) -> None:
        self.status = status
        self.retry_after = retry_after
        self.hits: list[float] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                provider.hits.append(time.monotonic())
                if provider.status == 200:
                    body: dict[str, Any] = {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "fake",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "from the provider"},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
                    }
                else:
                    body = {
                        "error": {"message": "provider says no", "type": "rate_limit", "code": str(provider.status)}
                    }
                data = json.dumps(body).encode()
                self.send_response(provider.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                if provider.retry_after is not None:
                    self.send_header("retry-after", str(provider.retry_after))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def model(self) -> str:
        return f"openai-compatible:fake@http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def _worker(settings_json: str, key: str, session: str, mode: str) -> None:
    """The process a test kills: ``stream`` streams one long turn; ``burst`` runs short turns forever."""
    settings = Settings.model_validate_json(settings_json)
    runtime = await Runtime.create(settings)
    context = AgentContext(
        input="my name is Ada",
        template="writer",
        session_id=session,
        credentials=key,
        metadata={"create_session": True},
    )
    await runtime.executor.execute_async(context)
    print("READY", flush=True)
    if mode == "stream":
        long_turn = AgentContext(
            input="write a long story about the sea " * 4, template="writer", session_id=session, credentials=key
        )
        async for event in runtime.executor.execute_stream(long_turn):
            if event.type == "token":
                print(f"STREAMING {long_turn.run_id}", flush=True)
                await asyncio.sleep(3600)  # the parent kills us here, mid-run
    turn = 0
    while True:
        turn += 1
        await runtime.executor.execute_async(
            AgentContext(input=f"turn {turn}: say something", template="writer", session_id=session, credentials=key)
        )


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        asyncio.run(_worker(*sys.argv[2:6]))
