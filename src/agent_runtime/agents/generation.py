"""Per-run generation options (``max_tokens``, ``temperature``, ``stop``, ...) applied to every model call.

The executor puts the run's options in ``config["configurable"][GENERATION_KEY]``; this LangChain
middleware, which every agent the factory builds carries (outermost, so fallback models get them
too), merges them into the model request's settings, which ``create_agent`` passes to the model call.
Agents are compiled once and shared by all runs, so the options travel in the run's config.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse

__all__ = ["GENERATION_KEY", "GenerationMiddleware"]

GENERATION_KEY = "agent_runtime_generation"


def _run_settings() -> dict[str, Any]:
    from langgraph.config import get_config

    try:
        settings = get_config().get("configurable", {}).get(GENERATION_KEY)
    except RuntimeError:  # called outside a graph run
        return {}
    return dict(settings) if isinstance(settings, dict) else {}


def _with_settings(request: ModelRequest) -> ModelRequest:
    """The request with the run's options; a client's ``max_tokens`` only ever lowers the model's own bound
    (the template's ``max_output_tokens``, which the quota reservation counts on)."""
    settings = _run_settings()
    own = getattr(request.model, "max_tokens", None)
    if isinstance(own, int) and isinstance(settings.get("max_tokens"), int):
        settings["max_tokens"] = min(own, settings["max_tokens"])
    return request.override(model_settings={**request.model_settings, **settings}) if settings else request


class GenerationMiddleware(AgentMiddleware):
    """Merges the run's generation options into each model call's settings."""

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]) -> Any:
        return handler(_with_settings(request))

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> Any:
        return await handler(_with_settings(request))
