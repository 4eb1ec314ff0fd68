"""``GET /v1/templates`` and ``GET /v1/templates/{name}``: what can be run, and on which model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from agent_runtime.agents.templates import AgentTemplate
from agent_runtime.runtime import Runtime
from agent_runtime.server.deps import CurrentPrincipal, CurrentRuntime
from agent_runtime.server.routes._docs import errors
from agent_runtime.server.schemas import TemplateList, TemplateOut

__all__ = ["router", "template_out"]

router = APIRouter(tags=["templates"])


def template_out(runtime: Runtime, template: AgentTemplate) -> dict[str, Any]:
    """The public view of a template (the system prompt stays on the server)."""
    return {
        "name": template.name,
        "description": template.description,
        "model": runtime.factory.model_for(template),
        "tools": list(template.tools),
        "memory": template.memory,
        "workflow": template.workflow,
        "max_output_tokens": template.max_output_tokens,
        "timeout_s": template.timeout_s,
        "max_retries": template.max_retries,
        "tags": list(template.tags),
    }


@router.get("/v1/templates", response_model=TemplateList, responses=errors(401), summary="List templates")
async def list_templates(principal: CurrentPrincipal, runtime: CurrentRuntime) -> dict[str, Any]:
    return {"object": "list", "data": [template_out(runtime, t) for t in runtime.factory.list_templates()]}


@router.get("/v1/templates/{name}", response_model=TemplateOut, responses=errors(401, 404), summary="One template")
async def get_template(name: str, principal: CurrentPrincipal, runtime: CurrentRuntime) -> dict[str, Any]:
    return template_out(runtime, runtime.factory.get_template(name))
