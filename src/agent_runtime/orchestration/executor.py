"""``AgentExecutor``: runs templates through the middleware onion in four modes.

``execute_async`` / ``execute`` return one ``AgentResult``; ``execute_stream`` yields typed
``StreamEvent`` items (token, tool_call, tool_result, final, error); ``execute_with_retry`` retries
retriable failures with exponential backoff and full jitter, each attempt going through the whole
chain (so each attempt is authorised, limited and charged).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.agents.generation import GENERATION_KEY
from agent_runtime.callbacks.handler import AgentCallbackHandler, langsmith_tracer
from agent_runtime.errors import (
    AgentRuntimeError,
    ConfigurationError,
    InputTooLargeError,
    RunCancelledError,
    ValidationError,
)
from agent_runtime.monitoring.pricing import PriceTable
from agent_runtime.orchestration._attempt import Attempt, assemble, charge_failure, drive, prepare
from agent_runtime.orchestration._errors import map_error
from agent_runtime.orchestration._history import history_chars, history_ids, newer_turns
from agent_runtime.orchestration._sessions import (
    check_no_pending_run,
    open_run_session,
    pending_after,
    resume_context,
    roll_back_turn,
)
from agent_runtime.orchestration._streaming import StreamControl
from agent_runtime.orchestration._sync import SyncPortal
from agent_runtime.orchestration.middleware.base import AgentMiddleware, NextCall, compose
from agent_runtime.orchestration.observers import ObserverGroup, RunObserver
from agent_runtime.orchestration.recovery import DURABLE_KEY
from agent_runtime.orchestration.retry_budget import RetryBudget, RetryPolicy
from agent_runtime.settings import Settings
from agent_runtime.store.agent import scope_config
from agent_runtime.tracing import run_callbacks
from agent_runtime.types import AgentContext, AgentResult, Principal, StreamEvent
from agent_runtime.workflows._charges import WorkflowRun
from agent_runtime.workflows.approval import (
    RESUME_KEY,
    Decisions,
    ResumeRequest,
)

if TYPE_CHECKING:
    from agent_runtime.agents.templates import AgentTemplate
    from agent_runtime.orchestration.runs import RunTracker
    from agent_runtime.sessions.manager import SessionManager

__all__ = ["AgentExecutor", "RetryPolicy"]


class AgentExecutor:
    """Executes agent runs: validation, session binding, timeouts, the middleware chain, observers.

    Args:
        factory: builds (and caches) the compiled agents.
        middlewares: the onion, outermost first.
        session_manager: binds runs with a ``session_id`` to a conversation (LangGraph checkpointer,
            thread id = the session's key, ``<tenant>/<session id>``) and serialises concurrent runs on one session.
        observers: metrics, event bus publishers; called around every run, never allowed to fail it.
        collect_events: attach an ``AgentCallbackHandler`` to every run and put its summary in
            ``result.metadata["callbacks"]`` (costs a little per event; off for the service's hot path).
        retry_budget: retries per tenant per minute shared by all runs of this executor (``None``:
            only each run's ``max_retries`` bounds them).
        run_tracker: records every attempt in the run registry, so a reaper can close the runs of a
            worker that died (batched writes; a run shorter than its flush interval costs none).
    """

    def __init__(
        self,
        factory: AgentFactory,
        *,
        settings: Settings | None = None,
        middlewares: Sequence[AgentMiddleware] = (),
        session_manager: SessionManager | None = None,
        observers: Sequence[RunObserver] = (),
        price_table: PriceTable | None = None,
        retry_policy: RetryPolicy | None = None,
        collect_events: bool = False,
        retry_budget: RetryBudget | None = None,
        run_tracker: RunTracker | None = None,
    ) -> None:
        self.factory = factory
        self.settings = settings or factory.settings
        self.middlewares = list(middlewares)
        self.session_manager = session_manager
        self.observers = ObserverGroup(observers)
        self.prices = price_table or PriceTable.load(self.settings.price_file)
        self.retry_policy = retry_policy or RetryPolicy()
        self.collect_events = collect_events
        self._traced = langsmith_tracer() is not None
        self.retry_budget = retry_budget
        self.run_tracker = run_tracker
        self._chain: NextCall = compose(self._run_typed, self.middlewares)
        self._portal = SyncPortal()

    # -- public API ---------------------------------------------------------------------------------
    async def execute_async(self, context: AgentContext) -> AgentResult:
        """Run once through the whole chain and return the result (raises typed errors)."""
        return await self._observed(context)

    def execute(self, context: AgentContext) -> AgentResult:
        """Blocking ``execute_async`` for scripts; not for use inside an event loop."""
        return self._portal.run(self.execute_async(context))

    async def execute_with_retry(self, context: AgentContext, max_retries: int | None = None) -> AgentResult:
        """``execute_async``, retrying retriable errors (provider rate limit, timeout, connection)."""
        retries = self._max_retries(context, max_retries)
        first = attempt = context.attempt  # a queued run's later claims continue its attempt numbers
        while True:
            attempt_context = context.model_copy(update={"attempt": attempt, "state": {}})
            try:
                result = await self._observed(attempt_context)
            except AgentRuntimeError as exc:
                if not exc.retriable or attempt - first >= retries or not self._may_retry(attempt_context, exc):
                    exc.details.setdefault("attempts", attempt)
                    raise
                await asyncio.sleep(self.retry_policy.delay(attempt, exc))
                attempt += 1
                continue
            result.attempts = attempt
            return result

    async def execute_stream(
        self, context: AgentContext, max_retries: int | None = 0, *, abandon: bool = True
    ) -> AsyncIterator[StreamEvent]:
        """Yield token, tool_call and tool_result events as they happen, then one ``final`` event with
        the ``AgentResult``, or one ``error`` event. Retries only before anything was yielded
        (``max_retries=None``: the template's); attempt numbers start at ``context.attempt``.

        Stopping early (``break`` / ``aclose()``, or the consumer's task being cancelled) abandons the
        run: the model stream is cancelled, and the middlewares still see a result with
        ``status="cancelled"`` and the usage spent so far, so it is logged and charged. With
        ``abandon=False`` the run is cancelled instead, as a cancelled ``execute_async`` is: its thread
        keeps its checkpoints, so a queued run handed back by its worker resumes from them."""
        retries = self._max_retries(context, max_retries)
        first = attempt = context.attempt
        while True:
            control = StreamControl(graph_events=context.graph_events)
            attempt_context = context.model_copy(update={"attempt": attempt, "streaming": True, "state": {}})
            attempt_context.state["stream"] = control
            task = asyncio.create_task(control.drive(self._observed(attempt_context)))
            retry_error: AgentRuntimeError | None = None
            try:
                async for event in control.events(attempt_context.run_id, coalesce=context.coalesce_tokens):
                    error = control.error
                    if event.type == "error" and error is not None:
                        if self._retries(attempt_context, error, control, attempt - first < retries):
                            retry_error = error
                            break
                        error.details.setdefault("attempts", attempt)
                        event = event.model_copy(update={"data": error.to_dict()["error"]})
                    yield event
            finally:
                await control.finish(task, abandon=abandon)
            if retry_error is None:
                return
            await asyncio.sleep(self.retry_policy.delay(attempt, retry_error))
            attempt += 1

    def _retries(self, context: AgentContext, error: AgentRuntimeError, control: StreamControl, left: bool) -> bool:
        """Whether a streamed attempt's error is retried: retriable, nothing streamed yet, retries left."""
        return error.retriable and not control.emitted and left and self._may_retry(context, error)

    async def resume_async(
        self,
        run_or_session_id: str,
        decisions: Decisions,
        *,
        principal: Principal | None = None,
        credentials: str | None = None,
        request_id: str | None = None,
        timeout_s: float | None = None,
    ) -> AgentResult:
        """Answer an interrupted run (approve / edit / reject its pending tool calls) and run it to its
        next stop, through the whole middleware chain, from any worker sharing the session backend.

        ``run_or_session_id`` is the run id of a run that had no session (it got an implicit session
        named after the run) or the session id of a run in a session. ``principal`` (trusted caller) or
        ``credentials`` (checked by the auth middleware, before the session is looked up) must own the
        session.

        Raises:
            SessionNotFoundError: no such live session for this owner (or its approval expired).
            ConflictError: nothing is waiting for approval (already resumed, or never interrupted).
            ValidationError: the decisions do not fit the pending actions.
        """
        context = await resume_context(
            self._sessions(), self.middlewares, run_or_session_id, decisions, principal, credentials, request_id
        )
        context.timeout_s = timeout_s
        return await self._observed(context)

    def resume(self, run_or_session_id: str, decisions: Decisions, **kwargs: Any) -> AgentResult:
        """Blocking ``resume_async`` for scripts; not for use inside an event loop."""
        return self._portal.run(self.resume_async(run_or_session_id, decisions, **kwargs))

    async def resume_stream(
        self,
        run_or_session_id: str,
        decisions: Decisions,
        *,
        principal: Principal | None = None,
        credentials: str | None = None,
        request_id: str | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """``resume_async`` as a stream of events, like ``execute_stream``."""
        context = await resume_context(
            self._sessions(), self.middlewares, run_or_session_id, decisions, principal, credentials, request_id
        )
        async for event in self.execute_stream(context):
            yield event

    async def aclose(self) -> None:
        for middleware in self.middlewares:
            await middleware.aclose()
        self._portal.close()

    # -- internals ----------------------------------------------------------------------------------
    def _may_retry(self, context: AgentContext, error: AgentRuntimeError) -> bool:
        """Take a retry from the tenant's budget (an exhausted budget says so on the error); never wait out a
        ``Retry-After`` longer than the policy's ``max_wait_s``."""
        if error.retry_after is not None and error.retry_after > self.retry_policy.max_wait_s:
            return False
        if self.retry_budget is None or self.retry_budget.try_spend(context.tenant):
            return True
        error.details["retry_budget_exhausted"] = True
        return False

    def _max_retries(self, context: AgentContext, max_retries: int | None) -> int:
        if max_retries is not None:
            if max_retries < 0:
                raise ValidationError("max_retries must be >= 0")
            return max_retries
        try:
            return self.factory.get_template(context.template).max_retries
        except AgentRuntimeError:
            return 0

    async def _observed(self, context: AgentContext) -> AgentResult:
        started = time.perf_counter()
        self.observers.run_started(context)
        try:
            result = await self._chain(context)
        except asyncio.CancelledError:
            self.observers.run_failed(context, RunCancelledError("run cancelled"), time.perf_counter() - started)
            raise
        except Exception as exc:
            error = map_error(exc, timeout_s=context.timeout_s)
            self.observers.run_failed(context, error, time.perf_counter() - started)
            if error is exc:
                raise
            raise error from exc
        self.observers.run_finished(context, result)
        return result

    def validate(self, context: AgentContext) -> None:
        """The input checks every run passes first (``ValidationError``, ``InputTooLargeError``); a queue
        runs them at submission so a bad run is refused in its request."""
        self._validate(context)

    def _validate(self, context: AgentContext) -> None:
        if not isinstance(context.input, str) or not context.input.strip():
            raise ValidationError("input must be a non-empty string")
        limit = self.settings.limits.max_input_chars
        size = len(context.input) + history_chars(context.history)
        if size > limit:
            raise InputTooLargeError(f"input is {size} characters (with its history); the limit is {limit}")
        for text in (context.input, *(turn.content for turn in context.history)):
            if "\x00" in text:
                raise ValidationError("input must not contain NUL characters")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ValidationError("input must be valid Unicode text (it holds a lone surrogate)") from None
        timeout = context.timeout_s
        if timeout is not None and not (0 < timeout <= 24 * 3600):  # also refuses NaN
            raise ValidationError("timeout_s must be a number of seconds between 0 and 86400")

    async def _run_typed(self, context: AgentContext) -> AgentResult:
        """The innermost call of the onion: middlewares only ever see the runtime's typed errors.

        The attempt is in the run registry (with its quota reservation) while it runs."""
        key = await self.run_tracker.started(context) if self.run_tracker is not None else None
        try:
            return await self._run(context)
        except Exception as exc:
            error = map_error(exc, timeout_s=context.timeout_s)
            if error is exc:
                raise
            raise error from exc
        finally:
            if key is not None:
                await self.run_tracker.finished(key, context)  # type: ignore[union-attr]

    async def _run(self, context: AgentContext) -> AgentResult:
        self._validate(context)
        template = self.factory.get_template(context.template)
        model_name = self.factory.model_for(template, context.model)
        timeout_s = context.timeout_s or template.timeout_s or self.settings.limits.run_timeout_s
        context.deadline = time.monotonic() + timeout_s
        workflow = template.workflow  # the name of the workflow this template runs, if any
        if not self._needs_thread(context, template, workflow):
            agent = self.factory.create_from_template(template.name, model=model_name)
            return await self._invoke(context, agent, model_name, timeout_s, config={}, workflow=workflow)
        sessions = self._sessions()
        approval_ttl_s = self.settings.limits.approval_ttl_s
        # opened under the lock: a run paused in the session is seen by the next run, never raced past
        tenant, user = context.tenant or "default", context.user or "local"
        async with sessions.lock(context.session_id or context.run_id, tenant=tenant, user_id=user):
            session = await open_run_session(sessions, context, template, approval_ttl_s=approval_ttl_s)
            check_no_pending_run(session, context)
            if session.message_count:  # the stored conversation holds everything up to its last answer
                context.history = newer_turns(context.history)
            agent = self.factory.create_from_template(
                template.name, model=model_name, checkpointer=sessions.checkpointer
            )
            config = {"configurable": {"thread_id": session.key}}
            fresh_turn = not workflow and RESUME_KEY not in context.metadata
            turn_start = (history_ids(context.run_id, len(context.history)) or [context.run_id])[0]
            try:
                result = await self._invoke(context, agent, model_name, timeout_s, config=config, workflow=workflow)
            except Exception:
                if fresh_turn:  # a failed turn leaves no half behind
                    await roll_back_turn(agent, session.key, turn_start)
                raise
            rolled_back = result.status == "cancelled" and fresh_turn  # a stream its consumer abandoned
            if rolled_back:
                await roll_back_turn(agent, session.key, turn_start)
            with contextlib.suppress(AgentRuntimeError):
                if session.metadata.get("implicit") and result.status != "interrupted":
                    # an approval session outlives only a pause
                    await sessions.delete_session(session.id, tenant=session.tenant, user_id=session.user_id)
                    result.session_id = None
                elif not rolled_back:  # this run's input plus what it produced, and whether it now awaits approval
                    await sessions.record_run(
                        session.id,
                        tenant=session.tenant,
                        user_id=session.user_id,
                        added=len(result.messages) + 1 + len(context.history),
                        metadata=pending_after(session, context, result.status),
                    )
        return result

    def _needs_thread(self, context: AgentContext, template: AgentTemplate, workflow: str | None) -> bool:
        """Whether the run needs a checkpointed thread: it names a session, may pause for approval, or is
        queued (``DURABLE_KEY``: checkpointed so that another worker can resume it after a crash)."""
        if context.session_id is not None or context.metadata.get(DURABLE_KEY):
            return True
        return bool((template.middleware or workflow) and self._can_pause(template))

    def _sessions(self) -> SessionManager:
        if self.session_manager is None:
            raise ConfigurationError(
                "this executor has no session manager; runs cannot name a session_id or wait for approval"
            )
        return self.session_manager

    def _can_pause(self, template: AgentTemplate) -> bool:
        from agent_runtime.workflows.approval import template_needs_checkpointer

        return template_needs_checkpointer(self.factory, template)

    def _workflow_run(self, graph: Any, config: dict[str, Any], context: AgentContext, workflow: str) -> WorkflowRun:
        if context.model is not None:  # the run-level model override, for every step
            config["metadata"]["model_override"] = context.model
        step_templates = getattr(self.factory.workflows.get(workflow), "step_templates", {})
        return WorkflowRun(graph, config, self.prices, step_templates)

    def _configure(
        self, config: dict[str, Any], context: AgentContext, workflow: str | None
    ) -> AgentCallbackHandler | None:
        """The run's LangGraph config (name, limits, tracing metadata, generation options); its event
        collector, when this executor collects events."""
        handler = (
            AgentCallbackHandler(max_events=self.settings.limits.max_events_per_run) if self.collect_events else None
        )
        config["run_name"] = context.template
        config["recursion_limit"] = 50
        if self._traced or workflow:  # metadata is merged into every step's config: only when someone reads it
            config["metadata"] = {"run_id": context.run_id, "template": context.template}
        callbacks = [handler, *run_callbacks()] if handler is not None else run_callbacks()
        if callbacks:
            config["callbacks"] = callbacks
        # whose long-term memory the run's store calls reach (agents with long_term memory)
        config.setdefault("configurable", {}).update(scope_config(context.tenant or "default", context.user or "local"))
        if context.generation is not None:  # read by every model call (agents.generation)
            config.setdefault("configurable", {})[GENERATION_KEY] = context.generation.model_settings()
        if context.metadata.get(DURABLE_KEY):  # tools are at-least-once: this is what they key idempotency on
            config.setdefault("configurable", {}).update(run_id=context.run_id, run_attempt=context.attempt)
        return handler

    async def _invoke(
        self,
        context: AgentContext,
        agent: Any,
        model_name: str,
        timeout_s: float,
        *,
        config: dict[str, Any],
        workflow: str | None = None,
    ) -> AgentResult:
        """One attempt on its agent, stage by stage (``_attempt``); errors are mapped here, once."""
        resume = context.metadata.get(RESUME_KEY)
        attempt = Attempt(
            context=context,
            agent=agent,
            model_name=model_name,
            config=config,
            workflow=workflow,
            handler=self._configure(config, context, workflow),
            flow=self._workflow_run(agent, config, context, workflow) if workflow else None,
            control=context.state.get("stream"),
            resume=resume if isinstance(resume, ResumeRequest) else None,
        )
        await prepare(attempt)
        try:
            async with asyncio.timeout(timeout_s):
                outcome = await drive(attempt)
        except Exception as exc:
            error = map_error(exc, timeout_s=timeout_s)
            charge_failure(attempt, error, self.prices)
            if error is exc:
                raise
            raise error from exc
        return await assemble(attempt, outcome, self.prices)
