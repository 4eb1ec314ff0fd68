"""Starting an Agent Protocol run, for every route that starts one (background, wait, stream, batch):
the assistant's template, the thread (``if_not_exists``, or a temporary one for a stateless run), the
checks LangGraph's server makes before it queues (busy thread, interrupt to answer), then
``RunDispatcher.submit``: the run is the same durable record as a ``/v1`` background run."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from agent_runtime.agents.assistants import Assistants
from agent_runtime.errors import ConflictError, ServiceUnavailableError, ValidationError
from agent_runtime.runs import RunDispatcher, RunFilter
from agent_runtime.runs.record import Run
from agent_runtime.runs.recorder import KWARGS_KEY
from agent_runtime.runs.thread_outcome import WAITED_KEY
from agent_runtime.runtime import Runtime
from agent_runtime.server.routes.agent_protocol._run_body import RunCreate, resume_decisions, run_context
from agent_runtime.sessions.models import PENDING_RUN_KEY, Session
from agent_runtime.sessions.threads import Owner
from agent_runtime.types import AgentContext, Principal
from agent_runtime.workflows.approval import build_resume_value

__all__ = ["Started", "dispatcher_of", "start_run", "thread_runs"]

_PAGE = 200


@dataclass(frozen=True)
class Started:
    """A queued run and the thread it runs on (``temporary``: a stateless run's)."""

    run: Run
    thread: Session
    temporary: bool

    @property
    def location(self) -> str:
        return f"/threads/{self.thread.id}/runs/{self.run.run_id}"

    def headers(self) -> dict[str, str]:
        """``Content-Location`` names the run (the SDK's ``on_run_created`` reads it)."""
        path = f"/runs/{self.run.run_id}" if self.temporary else self.location
        return {"Content-Location": path, "X-Run-Id": self.run.run_id}


def dispatcher_of(runtime: Runtime) -> RunDispatcher:
    if runtime.dispatcher is None:
        raise ServiceUnavailableError("runs are not available in this process", retry_after=1.0)
    return runtime.dispatcher


async def start_run(
    runtime: Runtime,
    principal: Principal,
    owner: Owner,
    request: Request,
    body: RunCreate,
    *,
    thread_id: str | None,
    waited: bool = False,
) -> Started:
    """Queue ``body`` as a run on ``thread_id`` (``None``: stateless, on a temporary thread).

    Raises:
        NotFoundError: unknown assistant, or thread (``if_not_exists="reject"``).
        SessionBusyError: the thread has an active run and the strategy is ``reject`` (the dispatcher's).
        ConflictError: the thread waits at an interrupt and no ``command`` answers it, or the reverse.
        ValidationError: the body does not fit (input, resume decisions, unsupported options).
    """
    dispatcher = dispatcher_of(runtime)
    assistants = Assistants(runtime.factory)
    assistant = assistants.get(body.assistant_id)
    template = assistant.graph_id
    if body.stream_subgraphs and await assistants.subgraphs(assistant):
        raise ValidationError(
            f"stream_subgraphs: the events of {template}'s subgraphs are not streamed apart by agent-runtime",
            details={"param": "stream_subgraphs"},
        )
    if thread_id is not None and body.on_completion is not None:
        raise ValidationError("on_completion applies to stateless runs only", details={"param": "on_completion"})
    # a malformed or oversize input is refused before a thread is made for it
    turns = body.turns()
    runtime.executor.validate(AgentContext(input=turns.text, history=list(turns.history), template=template))
    thread = await _thread(runtime, principal, owner, body, thread_id, template)
    try:
        context = run_context(runtime, principal, request, body, template=template, thread_id=thread.id)
        if thread_id is not None:
            await _check_thread(runtime, thread, body)
        if thread_id is None:
            context.metadata[KWARGS_KEY].setdefault("on_completion", "delete")
            if waited:  # the waiting request reads the thread's final state, then deletes it
                context.metadata[KWARGS_KEY][WAITED_KEY] = True
        run = await dispatcher.submit(
            context,
            multitask=body.multitask_strategy or "reject",
            webhook=body.webhook,
            after_s=body.after_seconds,
        )
    except BaseException:
        if thread_id is None:
            await runtime.sessions.delete_session(thread.id, tenant=thread.tenant, user_id=thread.user_id)
        raise
    return Started(run, thread, temporary=thread_id is None)


async def _thread(
    runtime: Runtime, principal: Principal, owner: Owner, body: RunCreate, thread_id: str | None, template: str
) -> Session:
    threads = runtime.threads
    if thread_id is None:
        return await threads.create(
            principal, thread_id=None, metadata=None, template=template, ttl_s=runtime.settings.limits.approval_ttl_s
        )
    if body.if_not_exists == "create":
        session = await threads.create(
            principal, thread_id=thread_id, metadata=None, if_exists="do_nothing", template=template
        )
    else:
        session = await threads.get(thread_id, owner)
    return session if session.template is not None else await threads.bind_template(session, template)


async def _check_thread(runtime: Runtime, thread: Session, body: RunCreate) -> None:
    """What would make the queued run fail on this thread, refused now with its own status (a busy
    thread is the dispatcher's: ``multitask_strategy``)."""
    waiting = bool(thread.metadata.get(PENDING_RUN_KEY))
    if body.command is None:
        if waiting:
            raise ConflictError(
                f"thread {thread.id} waits at an interrupt: answer it with command.resume first",
                details={"thread_id": thread.id},
            )
        return
    state = await runtime.threads.state(thread)
    if not state.interrupts:
        raise ConflictError(f"thread {thread.id} is not waiting at an interrupt", details={"param": "command"})
    pending = thread.metadata.get(PENDING_RUN_KEY)
    if isinstance(pending, dict) and pending.get("template") not in (None, thread.template):
        raise ConflictError("the interrupt belongs to another assistant's run", details={"param": "assistant_id"})
    build_resume_value(list(state.interrupts), resume_decisions(body.command.resume))  # 422 when they do not fit


async def thread_runs(dispatcher: RunDispatcher, thread: Session, *, status: str | None, want: int) -> list[Run]:
    """Up to ``want`` runs of the thread, newest first. Run records name the session by id, and two
    users may each have a thread of the same id: only its owner's runs are the thread's."""
    found: list[Run] = []
    offset = 0
    while len(found) < want:
        query = RunFilter(tenant=thread.tenant, session_id=thread.id, status=status, limit=_PAGE, offset=offset)
        page = await dispatcher.store.find(query)
        found += [run for run in page if run.user == thread.user_id]
        if len(page) < _PAGE:
            break
        offset += _PAGE
    return found[:want]
