"""The HTTP service: REST API, OpenAI-compatible chat completions, SSE streaming, multi-worker serve.

The server imports the library; the library never imports the server.
"""

from __future__ import annotations

from agent_runtime.server.app import create_app, create_app_from_env

__all__ = ["create_app", "create_app_from_env"]
