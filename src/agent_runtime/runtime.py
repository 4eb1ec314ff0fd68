"""``Runtime``: every component built once from ``Settings`` and wired together.

The CLI and the HTTP service both start from here, so each component is configured in one place:
factory -> executor with the middleware chain (auth, rate limit, cost, logging by default), the
session manager, key service, rate limiter, quota ledger, cost tracker, metrics and event bus.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.errors import AgentRuntimeError
from agent_runtime.monitoring.cost_tracker import CostTracker, build_cost_tracker
from agent_runtime.monitoring.metrics import RuntimeMetrics
from agent_runtime.monitoring.observer import MetricsObserver
from agent_runtime.monitoring.timeseries import DashboardObserver, RunSeries
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.orchestration.middleware.cost import CostEstimate, upper_bound_estimate
from agent_runtime.orchestration.middleware.defaults import SecurityStores, build_middlewares, open_security_stores
from agent_runtime.orchestration.observers import RunObserver
from agent_runtime.sessions import SessionManager, build_session_manager
from agent_runtime.settings import Settings, load_settings
from agent_runtime.types import AgentContext, AgentResult

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
    closers: list[Any] = field(default_factory=list)
    series: RunSeries = field(default_factory=RunSeries)
    """Per-worker minute series behind /dashboard (Prometheus is the fleet-wide view)."""

    @property
    def keys(self) -> Any:
        return self.security.keys

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
        factory = AgentFactory(settings)
        sessions = build_session_manager(settings)
        security = open_security_stores(settings)
        cost_tracker = build_cost_tracker(settings)
        metrics = metrics or RuntimeMetrics(tenant_allowlist=settings.metrics_tenant_allowlist)
        series = series or RunSeries()
        observers: list[RunObserver] = [MetricsObserver(metrics), DashboardObserver(series)]
        event_bus = publisher = None
        if with_event_bus:
            event_bus, publisher = _event_bus(settings, metrics, observers, sessions)
        middlewares = build_middlewares(
            settings,
            security,
            estimate=lambda context: _estimate(context, factory, cost_tracker),
            usage_recorder=lambda context, result: _record_usage(cost_tracker, context, result),
        )
        executor = AgentExecutor(
            factory,
            settings=settings,
            middlewares=middlewares,
            session_manager=sessions,
            observers=observers,
            price_table=cost_tracker.price_table,
            collect_events=collect_events,
        )
        closers: list[Any] = [sessions, security, cost_tracker]
        if publisher is not None:
            closers += [publisher, event_bus]
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
            closers,
            series,
        )

    async def aclose(self) -> None:
        await self.executor.aclose()
        for closer in reversed(self.closers):
            with contextlib.suppress(AgentRuntimeError, OSError):
                await closer.aclose()


async def _record_usage(costs: CostTracker, context: AgentContext, result: AgentResult) -> None:
    """Charge an attempt to the usage ledger; attempts that spent nothing (refused before the model
    ran) leave no row."""
    if result.usage.total_tokens or result.usage.cost_usd:
        await costs.record(result, context.principal, template=context.template)


def _estimate(context: AgentContext, factory: AgentFactory, costs: CostTracker) -> CostEstimate:
    """Upper bound of a run for quota reservation: a template with tools may call the model twice
    (tool call, then answer), each call reading the input and writing up to ``max_output_tokens``."""
    try:
        template = factory.get_template(context.template)
    except AgentRuntimeError:
        return CostEstimate(0, 0.0)
    price = costs.price_table.price_for(factory.model_for(template, context.model))
    calls = 2 if template.tools else 1
    return upper_bound_estimate(
        context.input * calls,
        max_output_tokens=template.max_output_tokens * calls,
        usd_per_input_token=(price.input_per_mtok if price else 0.0) / 1e6,
        usd_per_output_token=(price.output_per_mtok if price else 0.0) / 1e6,
    )


def _event_bus(
    settings: Settings, metrics: RuntimeMetrics, observers: list[RunObserver], sessions: SessionManager
) -> tuple[Any, Any]:
    try:
        from agent_runtime.event_bus.factory import build_event_bus
        from agent_runtime.event_bus.observer import EventObserver
        from agent_runtime.event_bus.publisher import SafePublisher
    except ImportError:  # the event observer lands with the bus wiring
        return None, None
    bus = build_event_bus(settings)
    publisher = SafePublisher(bus, on_lost=lambda event, exc: metrics.eventbus("lost"))
    observer = EventObserver(publisher)
    observers.append(observer)
    sessions.on_event = observer.session_event
    return bus, publisher
