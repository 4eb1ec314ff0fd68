"""LangChain 1.x agent middlewares: the ones templates name, and the history limit the factory adds.

These run *inside* the agent loop (around each model or tool call); the runtime's own onion
(``orchestration.middleware``) runs around the whole run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_runtime.agents.catalog import TemplateCatalog
    from agent_runtime.agents.templates import AgentTemplate

__all__ = ["DEFAULT_LC_MIDDLEWARES", "LCMiddlewareBuilder", "history_limit"]

LCMiddlewareBuilder = Callable[["TemplateCatalog", "AgentTemplate", dict[str, Any]], Any]


def history_limit(max_messages: int) -> Any:
    from agent_runtime.sessions.history import HistoryLimitMiddleware

    return HistoryLimitMiddleware(max_messages)


def _model_call_limit(factory: TemplateCatalog, template: AgentTemplate, options: dict[str, Any]) -> Any:
    from langchain.agents.middleware import ModelCallLimitMiddleware

    return ModelCallLimitMiddleware(**options)


def _tool_call_limit(factory: TemplateCatalog, template: AgentTemplate, options: dict[str, Any]) -> Any:
    from langchain.agents.middleware import ToolCallLimitMiddleware

    return ToolCallLimitMiddleware(**options)


def _human_in_the_loop(factory: TemplateCatalog, template: AgentTemplate, options: dict[str, Any]) -> Any:
    from langchain.agents.middleware import HumanInTheLoopMiddleware

    return HumanInTheLoopMiddleware(**options)


def _summarization(factory: TemplateCatalog, template: AgentTemplate, options: dict[str, Any]) -> Any:
    from langchain.agents.middleware import SummarizationMiddleware

    opts = dict(options)
    model = factory.build_model(template, opts.pop("model", None))
    for key in ("trigger", "keep"):
        if isinstance(opts.get(key), list):
            opts[key] = tuple(opts[key])
    return SummarizationMiddleware(model, **opts)


def _pii(factory: TemplateCatalog, template: AgentTemplate, options: dict[str, Any]) -> Any:
    from langchain.agents.middleware import PIIMiddleware

    opts = dict(options)
    return PIIMiddleware(opts.pop("pii_type", "email"), **opts)


DEFAULT_LC_MIDDLEWARES: dict[str, LCMiddlewareBuilder] = {
    "model_call_limit": _model_call_limit,
    "tool_call_limit": _tool_call_limit,
    "human_in_the_loop": _human_in_the_loop,
    "summarization": _summarization,
    "pii": _pii,
}
