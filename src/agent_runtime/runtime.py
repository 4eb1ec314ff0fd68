"""``Runtime``: every component built once from ``Settings`` and wired together.

The CLI and the HTTP service both start from here, so each component is configured in one place:
factory -> executor with the middleware chain (auth, rate limit, cost, logging by default), the
session manager, key service, rate limiter, quota ledger, cost tracker, metrics and event bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent_runtime.accounting import AccountingOutbox, usage_appliers, usage_entry
from agent_runtime.agents.factory import AgentFactory
from agent_runtime.agents.templates import AgentTemplate
from agent_runtime.crons import Crons, CronScheduler
from agent_runtime.crons.firing import build_crons
from agent_runtime.errors import AgentRuntimeError, RunAbandonedError
from agent_runtime.monitoring.cost_tracker import CostTracker, build_cost_tracker
from agent_runtime.monitoring.metrics import RuntimeMetrics
from agent_runtime.monitoring.observer import MetricsObserver
from agent_runtime.monitoring.timeseries import DashboardObserver, RunSeries
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.orchestration.middleware.cost import CostEstimate, upper_bound_estimate
from agent_runtime.orchestration.middleware.defaults import SecurityStores, build_middlewares, open_security_stores
from agent_runtime.orchestration.observers import RunObserver
from agent_runtime.orchestration.retry_budget import RetryBudget
from agent_runtime.orchestration.runs import AbandonedHook, RunReaper, RunRecord, RunTracker, build_run_store
from agent_runtime.runs import Run, RunDispatcher, RunRecorder, RunRecordStore, build_run_records
from agent_runtime.runs.events import RunEventLog, build_run_events
from agent_runtime.runs.queue import build_run_queue
from agent_runtime.runs.recorder import worker_id
from agent_runtime.runs.rollback import RunRollback
from agent_runtime.runs.webhooks import WebhookSender
from agent_runtime.runs.worker import RunWorker, SalvageHook
from agent_runtime.sessions import SessionManager, build_session_manager
from agent_runtime.sessions.threads import Threads
from agent_runtime.settings import Settings, load_settings
from agent_runtime.store import RunScopedStore
from agent_runtime.store import build_store as build_memory_store
from agent_runtime.tracing import TracingObserver, configure_tracing
from agent_runtime.types import AgentContext, AgentResult
from agent_runtime.workflows.spec import placeholders, render_input

__all__ = ["Runtime"]

log = logging.getLogger("agent_runtime.runtime")


@dataclass
class Runtime:
    settings: Settings
    factory: AgentFactory
    executor: AgentExecutor
    sessions: SessionManager
    security: SecurityStores
    cost_tracker: CostTracker
    metrics: RuntimeMetrics
    event_bus: Any = None
    publisher: Any = None
    event_observer: Any = None
    """Buffers the runs' notifications and hands them to ``publisher`` one loop step later."""
    closers: list[Any] = field(default_factory=list)
    series: RunSeries = field(default_factory=RunSeries)
    """Per-worker minute series behind /dashboard (Prometheus is the fleet-wide view)."""
    runs: RunTracker | None = None
    """This process's in-flight runs in the run registry (``runs.store``)."""
    reaper: RunReaper | None = None
    run_records: RunRecordStore | None = None
    """Every run as a durable record (see ``agent_runtime.runs``)."""
    dispatcher: RunDispatcher | None = None
    """This process's background runs; started by the server (``start_dispatcher``)."""
    run_events: RunEventLog | None = None
    """What each background run streamed, bounded, for joins from any process (``agent_runtime.runs.events``)."""
    store: Any = None
    """The long-term memory backend (a LangGraph ``BaseStore``); reach it through ``TenantStore``."""
    crons: Crons | None = None
    """Cron schedules (``agent_runtime.crons``); ``cron_scheduler`` fires them, started with the dispatcher."""
    cron_scheduler: CronScheduler | None = None
    _reaper_task: asyncio.Task[None] | None = None

    @property
    def keys(self) -> Any:
        return self.security.keys

    @property
    def threads(self) -> Threads:
        """Sessions as LangGraph threads (states, history, copies), over this runtime's templates."""
        factory, sessions = self.factory, self.sessions
        return Threads(
            sessions,
            lambda name: factory.create_from_template(name, checkpointer=sessions.checkpointer),
            factory.has_template,
        )

    @classmethod
    async def create(
        cls,
        settings: Settings | None = None,
        *,
        collect_events: bool = False,
        metrics: RuntimeMetrics | None = None,
        with_event_bus: bool = True,
        series: RunSeries | None = None,
    ) -> Runtime:
        """Build every component; nothing connects until first used, so this never blocks on a backend."""
        settings = settings or load_settings()
        metrics = metrics or RuntimeMetrics(tenant_allowlist=settings.metrics_tenant_allowlist)
        closers: list[Any] = []
        closers += _breakers(settings, metrics)  # before any Redis or PostgreSQL client is made
        factory = AgentFactory(settings)
        memory_store = await build_memory_store(settings)
        factory.use_store(RunScopedStore(memory_store, settings.store))
        closers.append(memory_store)
        sessions = build_session_manager(settings)
        security = open_security_stores(settings)
        cost_tracker = build_cost_tracker(settings)
        series = series or RunSeries()
        observers: list[RunObserver] = [MetricsObserver(metrics, cost_tracker.price_table), DashboardObserver(series)]
        run_records = build_run_records(settings)
        recorder = RunRecorder(run_records) if settings.runs.record_foreground else None
        if recorder is not None:
            observers.append(recorder)
        if configure_tracing():  # OTEL_TRACES_EXPORTER set: the run span
            observers.append(TracingObserver())
        event_bus = publisher = observer = None
        if with_event_bus:
            event_bus, publisher, observer = _event_bus(settings, metrics, observers, sessions)
        if observer is not None:
            # aclose runs in reverse, so these close after every store: the observer hands the last
            # runs' buffered events to the publisher and waits (bounded) for the bus to take them,
            # and only then is the bus closed
            closers += [event_bus, observer]
        if security.outbox is not None:
            security.outbox.appliers.update(usage_appliers(cost_tracker.usage_store))
        middlewares = build_middlewares(
            settings,
            security,
            estimate=lambda context: _estimate(context, factory, cost_tracker),
            usage_recorder=lambda context, result: _record_usage(cost_tracker, context, result, security.outbox),
        )
        if hasattr(security.limiter, "on_fallback"):  # fail-open rate limiting: count decisions taken locally
            security.limiter.on_fallback = lambda: metrics.backend_error("redis", "ratelimit_local_fallback")
        rel = settings.reliability
        store = build_run_store(settings)
        tracker = RunTracker(
            store,
            heartbeat_s=rel.run_heartbeat_s,
            abandon_after_s=rel.run_abandon_after_s,
            flush_s=rel.run_registry_flush_s,
        )
        reaper = RunReaper(
            store,
            abandon_after_s=rel.run_abandon_after_s,
            ledger=security.ledger,
            charge=rel.abandoned_run_charge,
            on_abandoned=_report_abandoned(metrics, publisher),
        )
        budget = RetryBudget(rel.retry_budget_per_minute) if rel.retry_budget_per_minute is not None else None
        executor = AgentExecutor(
            factory,
            settings=settings,
            middlewares=middlewares,
            session_manager=sessions,
            observers=observers,
            price_table=cost_tracker.price_table,
            collect_events=collect_events,
            retry_budget=budget,
            run_tracker=tracker,
        )
        run_events = build_run_events(settings)
        dispatcher = _dispatcher(
            settings, run_records, run_events, executor, publisher, metrics, cost_tracker, security, sessions
        )
        crons, cron_scheduler = build_crons(settings, factory.has_template, dispatcher, security.keys, sessions)
        closers += [sessions, security, cost_tracker, store, tracker, run_records, run_events, dispatcher.queue]
        closers.append(crons.store)
        if security.outbox is not None:  # closed first: its last pass writes to the ledgers closed after it
            closers.append(security.outbox)
        if recorder is not None:
            closers.append(recorder)
        return cls(
            settings,
            factory,
            executor,
            sessions,
            security,
            cost_tracker,
            metrics,
            event_bus,
            publisher,
            observer,
            closers,
            series,
            tracker,
            reaper,
            run_records,
            dispatcher,
            run_events=run_events,
            store=memory_store,
            crons=crons,
            cron_scheduler=cron_scheduler,
        )

    async def start_dispatcher(self) -> None:
        """Execute background runs in this process, starting with the pending ones left in the store."""
        if self.dispatcher is not None:
            if self.dispatcher.worker is not None:  # threads follow their runs, before waiters wake
                from agent_runtime.runs.thread_outcome import ThreadOutcome

                self.dispatcher.worker.on_finished.insert(0, ThreadOutcome(self.threads).finished)
            await self.dispatcher.start()
        if self.cron_scheduler is not None:
            self.cron_scheduler.start()

    async def stop_dispatcher(self) -> None:
        """Stop firing schedules and executing background runs; those still running go back to pending."""
        if self.cron_scheduler is not None:
            await self.cron_scheduler.aclose()
        if self.dispatcher is not None:
            await self.dispatcher.aclose()

    async def flush_events(self, timeout: float | None = None) -> None:
        """Hand the runs' buffered events to the bus now and wait (up to ``timeout``) until it took them."""
        if self.event_observer is not None:
            await self.event_observer.flush(timeout)

    async def reap_abandoned_runs(self) -> list[RunRecord]:
        """Close the runs of dead workers now (the server also does it every ``reaper_interval_s``)."""
        return await self.reaper.reap() if self.reaper is not None else []

    def start_reaper(self) -> None:
        """Reap abandoned runs now and then every ``reliability.reaper_interval_s``, in the background;
        also replay what the accounting journal holds from before a restart, and retry it until applied."""
        if self.security.outbox is not None:
            self.security.outbox.start()
        if self.reaper is not None and (self._reaper_task is None or self._reaper_task.done()):
            interval = self.settings.reliability.reaper_interval_s
            self._reaper_task = asyncio.get_running_loop().create_task(
                self.reaper.run_forever(interval), name="agent-runtime-run-reaper"
            )

    async def stop_reaper(self) -> None:
        task, self._reaper_task = self._reaper_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await task

    async def aclose(self) -> None:
        await self.stop_reaper()
        await self.stop_dispatcher()
        await self.executor.aclose()
        for closer in reversed(self.closers):
            with contextlib.suppress(AgentRuntimeError, OSError):
                await closer.aclose()


async def _record_usage(
    costs: CostTracker, context: AgentContext, result: AgentResult, outbox: AccountingOutbox | None
) -> None:
    """Charge an attempt to the usage ledger (through the accounting journal when there is one);
    attempts that spent nothing (refused before the model ran) leave no row."""
    if not (result.usage.total_tokens or result.usage.cost_usd):
        return
    if outbox is None:
        await costs.record(result, context.principal, template=context.template)
        return
    records = costs.price(result, context.principal, template=context.template)
    await outbox.submit(usage_entry(context.run_id, context.attempt, records))


def _dispatcher(
    settings: Settings,
    records: RunRecordStore,
    events: RunEventLog,
    executor: AgentExecutor,
    publisher: Any,
    metrics: RuntimeMetrics,
    costs: CostTracker,
    security: SecurityStores,
    sessions: SessionManager,
) -> RunDispatcher:
    """The run queue of the state backend, this process's queue worker on it, and the dispatcher over both."""
    runs, me = settings.runs, worker_id()
    webhooks = WebhookSender(runs.webhooks, records) if runs.webhooks.allowed_hosts else None
    queue = build_run_queue(settings, records, consumer=me)
    publish = _run_events(publisher)
    worker = RunWorker(
        records,
        queue,
        executor,
        worker=me,
        events=events,
        max_concurrent=runs.max_concurrent_runs,
        lease_s=runs.lease_s,
        heartbeat_s=runs.heartbeat_s,
        max_attempts=runs.max_attempts,
        scan_s=runs.scan_s,
        publish=publish,
        metrics=metrics,
        salvage=_salvage(costs, security.outbox),
        rollback=RunRollback(records, sessions),
    )
    return RunDispatcher(records, queue, executor, worker=worker, publish=publish, webhooks=webhooks)


def _salvage(costs: CostTracker, outbox: AccountingOutbox | None) -> SalvageHook:
    """Charge the steps a dead attempt finished (found in the checkpoint by its successor) as that attempt,
    once: the usage journal applies each (run, attempt) once."""

    async def charge(run: Run, result: AgentResult, usage: Any, attempt: int) -> None:
        context = AgentContext(
            input=run.input, template=run.template, run_id=run.run_id, principal=run.principal, attempt=attempt
        )
        spent = result.model_copy(update={"usage": usage, "attempts": attempt})
        try:
            await _record_usage(costs, context, spent, outbox)
        except AgentRuntimeError as exc:
            log.warning("could not charge run %s attempt %d: %s", run.run_id, attempt, exc.message)

    return charge


def _estimate(context: AgentContext, factory: AgentFactory, costs: CostTracker) -> CostEstimate:
    """Upper bound of a run for quota reservation: a template with tools may call the model twice
    (tool call, then answer), each call reading the input and writing up to ``max_output_tokens``.
    A declarative workflow is bounded by the sum of its steps, each reading its input mapping filled
    with the run's input and, at most, the whole output of every step it reads."""
    try:
        template = factory.get_template(context.template)
        steps = _workflow_steps(factory, template)
    except AgentRuntimeError:
        return CostEstimate(0, 0.0)
    if not steps:
        history = "".join(turn.model_dump_json() for turn in context.history)  # over-counts: a bound
        return _bound(context, factory, costs, template, history + context.input, 0)
    longest = {name: step.max_output_tokens for name, step, _ in steps}
    bounds = []
    for _, step, text in steps:
        carried = sum(longest[name] for name in placeholders(text))
        bounds.append(_bound(context, factory, costs, step, render_input(text, context.input, {}), carried))
    return CostEstimate(sum(b.tokens for b in bounds), sum(b.cost_usd for b in bounds))


def _workflow_steps(factory: AgentFactory, template: AgentTemplate) -> list[tuple[str, AgentTemplate, str]]:
    """(step, its template, its input mapping) of a declarative workflow; empty for anything else."""
    if template.workflow is None or template.workflow not in factory.workflows:
        return []
    graph = factory.workflows.get(template.workflow)
    inputs: dict[str, str] = getattr(graph, "step_inputs", {})
    return [
        (name, factory.get_template(step_template), inputs.get(name, "{input}"))
        for name, step_template in getattr(graph, "step_templates", {}).items()
    ]


def _bound(
    context: AgentContext, factory: AgentFactory, costs: CostTracker, template: AgentTemplate, text: str, carried: int
) -> CostEstimate:
    price = costs.price_table.price_for(factory.model_for(template, context.model))
    calls = 2 if template.tools else 1
    output = template.max_output_tokens
    if context.generation is not None and context.generation.max_tokens is not None:  # the client's lower bound
        output = min(output, context.generation.max_tokens)
    return upper_bound_estimate(
        text * calls,
        max_output_tokens=output * calls,
        usd_per_input_token=(price.input_per_mtok if price else 0.0) / 1e6,
        usd_per_output_token=(price.output_per_mtok if price else 0.0) / 1e6,
        overhead=64 + carried * calls,
    )


class _Unsubscribe:
    """A closer that detaches this runtime's metrics from the process-wide Redis circuit breaker."""

    def __init__(self, unsubscribe: Callable[[], None]) -> None:
        self._unsubscribe = unsubscribe

    async def aclose(self) -> None:
        self._unsubscribe()


def _breakers(settings: Settings, metrics: RuntimeMetrics) -> list[_Unsubscribe]:
    """Install the process's breaker for each Redis and PostgreSQL server in use, counting its failures
    and refusals (metrics ``backend_errors{backend="redis"|"postgres"}``)."""
    from agent_runtime import _postgres, _redis
    from agent_runtime.backends import engines_in_use

    rel = settings.reliability
    operations = {"failure": "connection_failure", "rejected": "circuit_open"}
    closers = []
    for engine, module, backend in (("redis", _redis, "redis"), ("postgresql", _postgres, "postgres")):
        for url in engines_in_use(settings, engine):
            breaker = module.use_circuit_breaker(url, failures=rel.breaker_failures, cooldown_s=rel.breaker_cooldown_s)

            def count(event: str, backend: str = backend) -> None:
                if event in operations:
                    metrics.backend_error(backend, operations[event])

            closers.append(_Unsubscribe(breaker.subscribe(count)))
    return closers


def _report_abandoned(metrics: RuntimeMetrics, publisher: Any) -> AbandonedHook:
    """``run.failed`` (code ``abandoned``) on the bus and in the run metrics, for each reaped run."""

    async def report(record: RunRecord, error: RunAbandonedError) -> None:
        metrics.run_failed(record.template, error.code, max(0.0, time.time() - record.started_at))
        if publisher is None:
            return
        from agent_runtime.event_bus.events import EventType, make_event

        payload: dict[str, Any] = {"template": record.template, "error_code": error.code, "message": error.message}
        payload |= {"attempt": record.attempt, "session_id": record.session_id}
        event = make_event(EventType.RUN_FAILED, payload, tenant=record.tenant, run_id=record.run_id)
        await publisher.publish(event)

    return report


def _run_events(publisher: Any) -> Any:
    """``run.queued`` / ``run.cancelled`` of background runs on the bus."""
    if publisher is None:
        return None
    from agent_runtime.event_bus.events import make_event

    def publish(type: str, run: Run, payload: dict[str, Any]) -> None:
        body = {"template": run.template, "session_id": run.session_id, "user": run.user, **payload}
        publisher.publish_nowait(make_event(type, body, tenant=run.tenant, run_id=run.run_id))

    return publish


def _event_bus(
    settings: Settings, metrics: RuntimeMetrics, observers: list[RunObserver], sessions: SessionManager
) -> tuple[Any, Any, Any]:
    try:
        from agent_runtime.event_bus.factory import build_event_bus
        from agent_runtime.event_bus.observer import EventObserver
        from agent_runtime.event_bus.publisher import SafePublisher
    except ImportError:  # the event observer lands with the bus wiring
        return None, None, None
    bus = build_event_bus(settings)
    publisher = SafePublisher(
        bus,
        on_lost=lambda event, exc: metrics.eventbus("lost"),
        on_published=lambda event: metrics.eventbus("published"),
    )
    bus.on_count = lambda kind: metrics.eventbus(kind)  # type: ignore[arg-type]  # consumed | dead_lettered
    observer = EventObserver(publisher)
    observers.append(observer)
    sessions.on_event = observer.session_event
    return bus, publisher, observer
