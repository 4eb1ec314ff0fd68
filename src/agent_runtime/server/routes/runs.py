"""``POST /v1/runs``: one agent run, as JSON or as a ``text/event-stream`` of typed events.

Shared with the OpenAI route: building the ``AgentContext`` from an authenticated principal, the
model override policy, and opening a stream so that errors raised before the first event (auth,
rate limit, quota, unknown session) still get their own HTTP status instead of a 200 stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from agent_runtime.errors import (
    AgentRuntimeError,
    BadRequestError,
    ConfigurationError,
    ServiceUnavailableError,
    ValidationError,
)
from agent_runtime.models.resolve import is_offline_spec, resolve_model
from agent_runtime.runs.multitask import DEFAULT_STRATEGY
from agent_runtime.runtime import Runtime
from agent_runtime.scopes import MODELS_OVERRIDE, SESSIONS
from agent_runtime.server.deps import CurrentPrincipal, CurrentRuntime, request_id, require_scope
from agent_runtime.server.errors import status_for_code
from agent_runtime.server.routes._docs import ERRORS, SSE_RESPONSE
from agent_runtime.server.schemas import ID_PATTERN, ResumeRequest, RunRecordOut, RunRequest, RunResponse
from agent_runtime.server.sse import EventStreamResponse, sse_event
from agent_runtime.types import GRAPH_EVENT_TYPES, AgentContext, AgentResult, Principal, StreamEvent

__all__ = [
    "MODEL_OVERRIDE_SCOPE",
    "aclose",
    "build_context",
    "error_from_event",
    "native_event",
    "open_stream",
    "router",
    "run_response",
]

MODEL_OVERRIDE_SCOPE = MODELS_OVERRIDE

router = APIRouter(tags=["runs"])


def check_model_override(runtime: Runtime, principal: Principal, model: str | None) -> None:
    """Anything but the offline model costs money or reaches a network address, so it needs a scope;
    a model that cannot be built is the request's fault (400), not the server's."""
    if model is None or is_offline_spec(model):
        return
    require_scope(principal, MODEL_OVERRIDE_SCOPE)
    try:
        resolve_model(model, timeout=runtime.settings.limits.run_timeout_s)
    except ConfigurationError as exc:
        raise BadRequestError(f"model {model!r} cannot be used: {exc.message}") from exc


def build_context(
    runtime: Runtime,
    principal: Principal,
    request: Request,
    *,
    template: str,
    text: str,
    session_id: str | None = None,
    model: str | None = None,
    timeout_s: float | None = None,
    create_session: bool = False,
    client_metadata: dict[str, Any] | None = None,
    coalesce_tokens: bool = True,
) -> AgentContext:
    """The run's context: identity from the token only; request metadata kept apart under ``client``.
    A run in a session needs the ``sessions`` scope as well as its template's."""
    check_model_override(runtime, principal, model)
    if session_id is not None:
        require_scope(principal, SESSIONS)
    limit = runtime.settings.limits.run_timeout_s
    metadata: dict[str, Any] = {"source": "http", "create_session": create_session}
    if client_metadata:
        metadata["client"] = client_metadata
    return AgentContext(
        input=text,
        template=template,
        session_id=session_id,
        model=model,
        principal=principal,
        metadata=metadata,
        timeout_s=min(timeout_s, limit) if timeout_s is not None else None,
        request_id=request_id(request),
        coalesce_tokens=coalesce_tokens,
    )


def error_from_event(data: dict[str, Any]) -> AgentRuntimeError:
    """Rebuild the typed error of a stream ``error`` event (same code, status, retry-after)."""
    code = str(data.get("code", "run_failed"))
    error = AgentRuntimeError(
        str(data.get("message", "run failed")), retry_after=data.get("retry_after"), details=data.get("details")
    )
    error.code = code
    error.status_code = status_for_code(code)
    return error


async def open_stream(runtime: Runtime, context: AgentContext) -> tuple[StreamEvent, AsyncIterator[StreamEvent]]:
    """Start a streamed run and wait for its first event; an immediate error is raised, not streamed."""
    try:
        template = runtime.factory.get_template(context.template)
        retries = template.max_retries
    except AgentRuntimeError:
        retries = 0
    return await first_event(runtime.executor.execute_stream(context, max_retries=retries))


async def first_event(stream: AsyncIterator[StreamEvent]) -> tuple[StreamEvent, AsyncIterator[StreamEvent]]:
    """Wait for a stream's first event; an immediate error is raised (with its status), not streamed."""
    first = await anext(stream)
    if first.type == "error":
        await aclose(stream)
        raise error_from_event(first.data)
    return first, stream


async def aclose(stream: AsyncIterator[Any]) -> None:
    """Close an async generator: for ``execute_stream`` this abandons the run if it is still going."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


def run_response(result: AgentResult) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "template": result.template,
        "model": result.model,
        "session_id": result.session_id,
        "status": result.status,
        "output": result.output,
        "usage": result.usage.model_dump(),
        "tool_calls": [call.model_dump() for call in result.tool_calls],
        "duration_ms": round(result.duration_ms, 3),
        "time_to_first_token_ms": result.time_to_first_token_ms,
        "attempts": result.attempts,
        "metadata": result.metadata,
    }


def native_event(event: StreamEvent, id: str | None = None) -> bytes | None:
    """One event as ``/v1`` streams it (``id``: its event log id); ``None`` for the graph's own events,
    which only graph protocols show."""
    if event.type in GRAPH_EVENT_TYPES:
        return None
    if event.type == "final":
        return sse_event("final", run_response(AgentResult.model_validate(event.data)), id=id)
    data = dict(event.data)
    if event.step is not None:
        data["step"] = event.step
    return sse_event(event.type, data, id=id)


async def _run_events(first: StreamEvent, stream: AsyncIterator[StreamEvent]) -> AsyncIterator[bytes]:
    try:
        event: StreamEvent | None = first
        while event is not None:
            encoded = native_event(event)
            if encoded is not None:
                yield encoded
            event = await anext(stream, None)
    finally:
        await aclose(stream)


@router.post(
    "/v1/runs",
    response_model=RunResponse,
    responses={200: SSE_RESPONSE, 202: {"model": RunRecordOut, "description": "Queued (`background: true`)"}, **ERRORS},
    summary="Run a template",
    description=(
        "Runs `template` on `input`, optionally continuing an existing session. With `stream: true` the "
        "answer is a `text/event-stream` of `token`, `tool_call`, `tool_result`, then `final` (the same "
        "object as the JSON answer) or `error` events. Closing the connection stops the run; what it "
        "spent is still charged. With `background: true` the run is queued and the answer is 202 with "
        "its record (`GET /v1/runs/{run_id}`, `/wait`, `/cancel`); a full queue answers 503 with `Retry-After`."
    ),
)
async def create_run(body: RunRequest, request: Request, principal: CurrentPrincipal, runtime: CurrentRuntime) -> Any:
    context = build_context(
        runtime,
        principal,
        request,
        template=body.template,
        text=body.input,
        session_id=body.session_id,
        model=body.model,
        timeout_s=body.timeout_s,
        client_metadata=body.metadata,
        coalesce_tokens=body.stream_coalesce,
    )
    if body.background:
        return await _submit(runtime, context, body)
    await _prepare_foreground(runtime, context, body)
    if not body.stream:
        result = await runtime.executor.execute_with_retry(context)
        return run_response(result)
    first, stream = await open_stream(runtime, context)
    return EventStreamResponse(_run_events(first, stream), headers={"X-Run-Id": context.run_id})


async def _prepare_foreground(runtime: Runtime, context: AgentContext, body: RunRequest) -> None:
    """Double-texting of a foreground run: wait for (``enqueue``) or cancel the session's active runs."""
    for name, used in (("webhook", body.webhook is not None), ("after_seconds", body.after_seconds > 0)):
        if used:
            raise ValidationError(f"{name} needs background: true", details={"param": name})
    if body.multitask_strategy is None:
        return
    if body.session_id is None:
        raise ValidationError("multitask_strategy needs a session_id", details={"param": "multitask_strategy"})
    if runtime.dispatcher is None:
        raise ServiceUnavailableError("run records are not available in this process", retry_after=1.0)
    timeout_s = runtime.settings.limits.session_lock_timeout_s
    await runtime.dispatcher.prepare(context, body.multitask_strategy, timeout_s=timeout_s)


async def _submit(runtime: Runtime, context: AgentContext, body: RunRequest) -> JSONResponse:
    """Queue a background run: 202 with its record (``Location``: where to poll it)."""
    if body.stream:
        raise ValidationError("background runs are not streamed: poll or wait on them instead")
    if runtime.dispatcher is None:
        raise ServiceUnavailableError("background runs are not available in this process", retry_after=1.0)
    runtime.factory.get_template(context.template)  # an unknown template is the request's 404, not the run's
    run = await runtime.dispatcher.submit(
        context,
        multitask=body.multitask_strategy or DEFAULT_STRATEGY,
        webhook=body.webhook,
        after_s=body.after_seconds,
    )
    headers = {"Location": f"/v1/runs/{run.run_id}", "X-Run-Id": run.run_id}
    return JSONResponse(run.public(), status_code=202, headers=headers)


@router.post(
    "/v1/runs/{run_id}/resume",
    response_model=RunResponse,
    responses={200: SSE_RESPONSE, **ERRORS},
    summary="Answer a run waiting for approval",
    description=(
        "Approves, edits or rejects the pending tool calls of an `interrupted` run and runs it to its next "
        "stop, on any worker. `run_id` is the run's id, or the session id given as `metadata.resume_id` "
        "when the run was held in a named session. 404: no such run for this caller; 409: nothing is "
        "waiting; 422: the decisions do not fit the pending calls."
    ),
)
async def resume_run(
    run_id: Annotated[str, Path(pattern=ID_PATTERN, description="The run id, or its `resume_id`.")],
    body: ResumeRequest,
    request: Request,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
) -> Any:
    options: dict[str, Any] = {"principal": principal, "request_id": request_id(request)}
    if not body.stream:
        return run_response(await runtime.executor.resume_async(run_id, body.decisions, **options))
    first, stream = await first_event(runtime.executor.resume_stream(run_id, body.decisions, **options))
    return EventStreamResponse(_run_events(first, stream), headers={"X-Run-Id": run_id})
