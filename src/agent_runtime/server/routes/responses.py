"""OpenAI's Responses API: ``POST /v1/responses``, ``GET`` and ``DELETE /v1/responses/{id}``.

A thin view over the run core that chat completions uses: ``model`` is a template name (or
``template@model``), ``input`` is the conversation (a string, or messages ending with the user's),
``instructions`` a system message for this response only. ``previous_response_id`` continues the
conversation of a stored response (``store``, on by default) that belongs to the caller; anyone
else's id is a 404. Each response is one run, metered and recorded like every other
(``resp_<hex>`` is run ``run_<hex>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request

from agent_runtime.models.resolve import provider_of
from agent_runtime.runtime import Runtime
from agent_runtime.server.deps import CurrentPrincipal, CurrentRuntime
from agent_runtime.server.routes._docs import ERRORS, errors
from agent_runtime.server.routes._openai_request import paused_error
from agent_runtime.server.routes._responses_input import (
    check_continued,
    generation_options,
    input_turns,
    instructions_turn,
    refuse_unsupported,
    refused,
)
from agent_runtime.server.routes._responses_output import ResponseDraft, input_items, item_page, response_events
from agent_runtime.server.routes._responses_store import ResponseStore
from agent_runtime.server.routes.runs import build_context, open_stream
from agent_runtime.server.schemas import ID_PATTERN
from agent_runtime.server.schemas_responses import (
    ResponseCreateRequest,
    ResponseDeleted,
    ResponseItemList,
    ResponseObject,
)
from agent_runtime.server.sse import EventStreamResponse
from agent_runtime.types import AgentResult, ChatTurn, Principal

__all__ = ["router"]

router = APIRouter(tags=["openai"])
_PAGE_PARAMS = frozenset({"after", "limit", "order"})
ResponseId = Annotated[str, Path(pattern=ID_PATTERN, description="A response id (`resp_...`).")]


def _store(runtime: Runtime) -> ResponseStore:
    return ResponseStore(runtime.store, runtime.settings.responses)


def _client_metadata(body: ResponseCreateRequest, draft: ResponseDraft) -> dict[str, Any]:
    """What the run record keeps of the request (never identity: that comes from the token)."""
    client: dict[str, Any] = {"openai_response_id": draft.id}
    if body.previous_response_id:
        client["previous_response_id"] = body.previous_response_id
    if body.user:
        client["openai_user"] = body.user
    if body.metadata:
        client["openai_metadata"] = body.metadata
    return client


@dataclass
class _Saver:
    """Keeps a finished response, with its conversation, when the request asked to ``store`` it."""

    store: ResponseStore
    principal: Principal
    keep: bool
    earlier: list[ChatTurn]
    """The conversation continued (``previous_response_id``)."""
    inputs: list[ChatTurn]
    """This request's own input, ending with the user message the run answers."""

    async def __call__(self, response: dict[str, Any], result: AgentResult, text: str) -> None:
        if self.keep:
            turns = [*self.earlier, *self.inputs, ChatTurn(role="assistant", content=text)]
            await self.store.put(self.principal, response["id"], response, turns, inputs=len(self.inputs))


@router.post(
    "/v1/responses",
    response_model=ResponseObject,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}, "description": "Response"},
        **ERRORS,
    },
    summary="OpenAI Responses API (a template is a model)",
)
async def create_response(
    body: ResponseCreateRequest,
    request: Request,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    x_session_id: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Any:
    template_name, _, model = body.model.partition("@")
    if x_session_id is not None:
        raise refused("X-Session-Id", "sessions do not apply to /v1/responses: continue with previous_response_id")
    refuse_unsupported(body)
    template = runtime.factory.get_template(template_name)
    allow_system = template.client_system_messages
    turns, text = input_turns(body, allow_system=allow_system)
    store = _store(runtime)
    earlier: list[ChatTurn] = []
    if body.previous_response_id:
        stored = await store.get(principal, body.previous_response_id)
        earlier = check_continued(stored.conversation, allow_system=allow_system)
    context = build_context(runtime, principal, request, template=template_name, text=text, model=model or None)
    draft = ResponseDraft.for_run(context.run_id, body)
    context.metadata["client"] = _client_metadata(body, draft)
    context.history = [*instructions_turn(body, allow_system=allow_system), *earlier, *turns]
    context.generation = generation_options(body, provider_of(runtime.factory.model_for(template, model or None)))
    save = _Saver(store, principal, body.store, earlier, [*turns, ChatTurn(role="user", content=text)])
    if not body.stream:
        result = await runtime.executor.execute_with_retry(context)
        if result.status == "interrupted":
            raise paused_error(result)
        response = draft.finished(result, result.output)
        await save(response, result, result.output)
        return response
    first, stream = await open_stream(runtime, context)
    events = response_events(draft, first, stream, save, final_only=template.workflow is not None)
    return EventStreamResponse(events, headers={"X-Run-Id": context.run_id})


@router.get(
    "/v1/responses/{response_id}",
    response_model=ResponseObject,
    responses=errors(401, 404),
    summary="A stored response (the caller's own)",
)
async def get_response(response_id: ResponseId, principal: CurrentPrincipal, runtime: CurrentRuntime) -> Any:
    return (await _store(runtime).get(principal, response_id)).response


@router.delete(
    "/v1/responses/{response_id}",
    response_model=ResponseDeleted,
    responses=errors(401, 404),
    summary="Delete a stored response (the caller's own)",
)
async def delete_response(response_id: ResponseId, principal: CurrentPrincipal, runtime: CurrentRuntime) -> Any:
    await _store(runtime).delete(principal, response_id)
    return {"id": response_id, "object": "response.deleted", "deleted": True}


@router.get(
    "/v1/responses/{response_id}/input_items",
    response_model=ResponseItemList,
    responses=errors(400, 401, 404),
    summary="The input items of a stored response (the caller's own)",
)
async def list_input_items(
    response_id: ResponseId,
    request: Request,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    after: Annotated[str | None, Query(pattern=ID_PATTERN, description="List the items after this one.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
) -> Any:
    for name in request.query_params:  # ``include`` (``include[]`` as the SDK sends it) and any other
        if name not in _PAGE_PARAMS:
            raise refused(name, f"{name!r} is not supported here (only after, limit, order)")
    stored = await _store(runtime).get(principal, response_id)
    return item_page(input_items(response_id, stored.input_turns()), after=after, limit=limit, order=order)
