"""``/assistants``: the runtime's templates (and workflows) as LangGraph assistants, read-only.

Any authenticated caller may list and describe them, as ``/v1/templates``. Creating, updating or
deleting assistants over HTTP is refused: 403 without the admin scope, else 422 (templates come from
template files, validated at start-up).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field

from agent_runtime.agents.assistants import AssistantQuery, Assistants
from agent_runtime.errors import PermissionDeniedError, ValidationError
from agent_runtime.server.deps import CurrentPrincipal, CurrentRuntime, is_admin
from agent_runtime.server.routes._docs import errors
from agent_runtime.server.routes.agent_protocol._common import APModel, only_query
from agent_runtime.server.routes.agent_protocol._shapes import assistant_out

__all__ = ["router"]

router = APIRouter(tags=["agent protocol: assistants"])
AssistantId = Annotated[str, Path(max_length=200, description="Template name or the assistant's UUID.")]
SelectField = Literal[
    "assistant_id",
    "graph_id",
    "name",
    "description",
    "config",
    "context",
    "created_at",
    "updated_at",
    "metadata",
    "version",
]


class AssistantCount(APModel):
    metadata: dict[str, Any] | None = None
    graph_id: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=200)


class AssistantSearch(AssistantCount):
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[SelectField] | None = None


def _assistants(runtime: CurrentRuntime) -> Assistants:
    return Assistants(runtime.factory)


CurrentAssistants = Annotated[Assistants, Depends(_assistants)]


def _query(body: AssistantCount, limit: int = 1000, offset: int = 0) -> AssistantQuery:
    if isinstance(body, AssistantSearch):
        return AssistantQuery(
            metadata=body.metadata,
            graph_id=body.graph_id,
            name=body.name,
            sort_by=body.sort_by or "created_at",
            descending=body.sort_order != "asc",
            limit=limit,
            offset=offset,
        )
    return AssistantQuery(metadata=body.metadata, graph_id=body.graph_id, name=body.name, limit=limit, offset=offset)


@router.post("/assistants/search", responses=errors(401, 422), summary="Search assistants")
async def search_assistants(
    body: AssistantSearch, principal: CurrentPrincipal, assistants: CurrentAssistants
) -> list[dict[str, Any]]:
    found = [assistant_out(a) for a in assistants.search(_query(body, body.limit, body.offset))]
    if body.select:
        found = [{k: v for k, v in a.items() if k in body.select} for a in found]
    return found


@router.post("/assistants/count", responses=errors(401, 422), summary="Count assistants")
async def count_assistants(body: AssistantCount, principal: CurrentPrincipal, assistants: CurrentAssistants) -> int:
    return len(assistants.search(_query(body)))


@router.post("/assistants", responses=errors(401, 403, 422), summary="Create an assistant (refused)")
async def create_assistant(principal: CurrentPrincipal) -> None:
    if not is_admin(principal):
        raise PermissionDeniedError("creating assistants needs the admin scope", details={"scope": "admin"})
    raise ValidationError(
        "creating assistants over HTTP is not supported by agent-runtime: add a template file "
        "(AGENT_RUNTIME_TEMPLATES_DIR); every template is an assistant"
    )


@router.get(
    "/assistants/{assistant_id}",
    responses=errors(401, 404, 422),
    dependencies=[Depends(only_query())],
    summary="One assistant",
)
async def get_assistant(
    assistant_id: AssistantId, principal: CurrentPrincipal, assistants: CurrentAssistants
) -> dict[str, Any]:
    return assistant_out(assistants.get(assistant_id))


@router.get(
    "/assistants/{assistant_id}/graph",
    responses=errors(401, 404, 422),
    dependencies=[Depends(only_query("xray"))],
    summary="The assistant's graph (nodes and edges)",
)
async def get_assistant_graph(
    assistant_id: AssistantId,
    principal: CurrentPrincipal,
    assistants: CurrentAssistants,
    xray: Annotated[str, Query(pattern=r"^(true|false|\d{1,3})$")] = "false",
) -> dict[str, Any]:
    depth: int | bool = xray == "true" if xray in ("true", "false") else int(xray)
    return assistants.drawing(assistants.get(assistant_id), depth)


@router.get(
    "/assistants/{assistant_id}/schemas",
    responses=errors(401, 404, 422),
    dependencies=[Depends(only_query())],
    summary="The assistant's input, output, state, config and context schemas",
)
async def get_assistant_schemas(
    assistant_id: AssistantId, principal: CurrentPrincipal, assistants: CurrentAssistants
) -> dict[str, Any]:
    return assistants.schemas(assistants.get(assistant_id))


@router.get(
    "/assistants/{assistant_id}/subgraphs",
    responses=errors(401, 404, 422),
    dependencies=[Depends(only_query("recurse"))],
    summary="Schemas of the assistant's subgraphs",
)
async def get_assistant_subgraphs(
    assistant_id: AssistantId, principal: CurrentPrincipal, assistants: CurrentAssistants, recurse: bool = False
) -> dict[str, Any]:
    return await assistants.subgraphs(assistants.get(assistant_id), recurse=recurse)


@router.get(
    "/assistants/{assistant_id}/subgraphs/{namespace}",
    responses=errors(401, 404, 422),
    dependencies=[Depends(only_query("recurse"))],
    summary="Schemas of one subgraph namespace",
)
async def get_assistant_subgraph(
    assistant_id: AssistantId,
    namespace: Annotated[str, Path(max_length=200)],
    principal: CurrentPrincipal,
    assistants: CurrentAssistants,
    recurse: bool = False,
) -> dict[str, Any]:
    return await assistants.subgraphs(assistants.get(assistant_id), namespace, recurse=recurse)
