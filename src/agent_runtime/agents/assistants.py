"""Assistants: the runtime's templates (workflows included) as LangGraph sees its graphs.

Every template is one assistant whose ``graph_id`` is the template name and whose ``assistant_id`` is
a stable UUID (uuid5 of the name), the same on every worker and across restarts; a client may pass
either (as ``langgraph dev`` accepts graph ids). Graphs, schemas and subgraphs come from the compiled
graph the template runs.
"""

from __future__ import annotations

import contextlib
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.agents.templates import AgentTemplate
from agent_runtime.errors import NotFoundError, ValidationError

__all__ = ["ASSISTANT_NAMESPACE", "Assistant", "AssistantQuery", "Assistants", "assistant_id"]

ASSISTANT_NAMESPACE = uuid.UUID("5b0e2c1a-7f39-4c52-9b8e-61a3d3c0a7e4")
SYSTEM_CREATED_AT = datetime(2025, 1, 1, tzinfo=UTC)
"""Templates have no creation time of their own; a fixed one keeps every worker's answer identical."""


def assistant_id(template: str) -> str:
    """The stable UUID of a template's assistant."""
    return str(uuid.uuid5(ASSISTANT_NAMESPACE, template))


@dataclass(frozen=True)
class Assistant:
    """One template as an assistant."""

    assistant_id: str
    template: AgentTemplate

    @property
    def graph_id(self) -> str:
        return self.template.name

    @property
    def metadata(self) -> dict[str, Any]:
        return {"created_by": "system", **self.template.metadata, "tags": list(self.template.tags)}


@dataclass(frozen=True)
class AssistantQuery:
    metadata: Mapping[str, Any] | None = None
    graph_id: str | None = None
    name: str | None = None
    sort_by: Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] = "created_at"
    descending: bool = True
    limit: int = 10
    offset: int = 0


class Assistants:
    """Look up, search and describe assistants over an ``AgentFactory``."""

    def __init__(self, factory: AgentFactory) -> None:
        self.factory = factory

    def all(self) -> list[Assistant]:
        return [Assistant(assistant_id(t.name), t) for t in self.factory.list_templates()]

    def get(self, assistant: str) -> Assistant:
        """By template name or by the UUID search returned; ``NotFoundError`` otherwise."""
        with contextlib.suppress(NotFoundError):
            return Assistant(assistant_id(assistant), self.factory.get_template(assistant))
        found = next((a for a in self.all() if a.assistant_id == assistant), None)
        if found is None:
            raise NotFoundError(f"assistant {assistant} not found")
        return found

    def search(self, query: AssistantQuery) -> list[Assistant]:
        wanted = query.metadata or {}
        found = [
            a
            for a in self.all()
            if (query.graph_id is None or a.graph_id == query.graph_id)
            and (query.name is None or query.name.lower() in a.graph_id.lower())
            and all(a.metadata.get(k) == v for k, v in wanted.items())
        ]
        key: Callable[[Assistant], Any] = {
            "assistant_id": lambda a: a.assistant_id,
            "graph_id": lambda a: a.graph_id,
            "name": lambda a: a.graph_id,
        }.get(query.sort_by, lambda a: a.graph_id)  # every template has the same creation time
        found.sort(key=key, reverse=query.descending and query.sort_by in ("assistant_id", "graph_id", "name"))
        return found[query.offset : query.offset + query.limit]

    def graph(self, assistant: Assistant) -> Any:
        return self.factory.create_from_template(assistant.graph_id)

    def drawing(self, assistant: Assistant, xray: int | bool = False) -> dict[str, Any]:
        """Nodes and edges of the assistant's graph (``xray``: include subgraphs, to that depth)."""
        if not isinstance(xray, bool) and xray < 0:
            raise ValidationError("xray must be a boolean or a non-negative depth", details={"param": "xray"})
        drawing: dict[str, Any] = self.graph(assistant).get_graph(xray=xray).to_json()
        return drawing

    def schemas(self, assistant: Assistant, graph: Any = None) -> dict[str, Any]:
        """Input, output, state, config and context JSON schemas (``None`` where one cannot be made)."""
        graph = graph if graph is not None else self.graph(assistant)
        output = _schema(graph.get_output_jsonschema)
        return {
            "graph_id": assistant.graph_id,
            "input_schema": _schema(graph.get_input_jsonschema),
            "output_schema": output,
            "state_schema": output,  # the output channels are the state a thread holds
            "config_schema": _schema(graph.get_config_jsonschema, legacy=True),
            "context_schema": _schema(graph.get_context_jsonschema),
        }

    async def subgraphs(
        self, assistant: Assistant, namespace: str | None = None, *, recurse: bool = False
    ) -> dict[str, Any]:
        """Schemas of the graph's subgraphs by namespace (``namespace``: only that one)."""
        graph = self.graph(assistant)
        return {
            ns: self.schemas(assistant, sub)
            async for ns, sub in graph.aget_subgraphs(namespace=namespace, recurse=recurse)
        }


def _schema(make: Callable[[], Any], *, legacy: bool = False) -> dict[str, Any] | None:
    try:
        with warnings.catch_warnings():
            if legacy:  # LangGraph 1.x deprecates config schemas for context ones; clients still read both
                warnings.simplefilter("ignore", DeprecationWarning)
            schema = make()
    except Exception:  # a graph whose types have no JSON schema: LangGraph answers None for it too
        return None
    return schema if isinstance(schema, dict) else None
