"""Prometheus metrics of the runtime, bounded in cardinality and safe across worker processes.

Each ``RuntimeMetrics`` owns its ``CollectorRegistry`` (no module globals), so tests and embedded
uses can hold several side by side. When ``PROMETHEUS_MULTIPROC_DIR`` is set before
``prometheus_client`` is imported (``agent-runtime serve --workers N`` does that), every worker
writes its values to mmap files in that directory and :meth:`RuntimeMetrics.render` aggregates all of
them, so any worker answers ``/metrics`` for the whole fleet on that host.

Label values are capped (see docs/monitoring.md, "Cardinality budget"): a tenant appears by name only
if it is on the allow-list, and template, model, tool and the other free-form labels keep their first
``max_label_values`` distinct values; everything beyond is reported as ``other``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Final, Generic, Literal, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as _prom_values

from agent_runtime.errors import ValidationError
from agent_runtime.types import AgentResult, Usage

__all__ = ["OTHER", "EventBusKind", "LabelBudget", "RuntimeMetrics", "mark_process_dead", "multiprocess_enabled"]

logger = logging.getLogger(__name__)

OTHER: Final = "other"
"""Label value that absorbs everything over the cardinality budget (and tenants off the allow-list)."""
NO_TENANT: Final = "none"

EventBusKind = Literal["published", "consumed", "dead_lettered", "lost"]

_RUN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_MIDDLEWARE_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5)

M = TypeVar("M", Counter, Gauge, Histogram)


def multiprocess_enabled() -> bool:
    """Whether prometheus_client writes values to mmap files (decided when it was imported)."""
    return bool(getattr(_prom_values.ValueClass, "_multiprocess", False)) and bool(
        os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    )


def mark_process_dead(pid: int, path: str | None = None) -> None:
    """Drop a dead worker's live gauges (``active_runs``) from the aggregate; call it from the process
    manager when a worker exits. A no-op outside multiprocess mode."""
    path = path or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


class LabelBudget:
    """Maps free-form label values onto at most ``limit`` distinct values plus ``other``.

    The first ``limit`` values seen keep their name for the life of the process; later ones, and values
    longer than ``max_len``, become ``other``. This keeps a typo'd or attacker-chosen template or model
    name from creating unbounded series.
    """

    __slots__ = ("_lock", "_seen", "limit", "max_len")

    def __init__(self, limit: int, *, max_len: int = 100) -> None:
        if limit < 0:
            raise ValidationError("a label budget must be >= 0")
        self.limit = limit
        self.max_len = max_len
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if not value or len(value) > self.max_len:
            return OTHER
        with self._lock:
            if len(self._seen) < self.limit:
                self._seen.add(value)
                return value
        return OTHER

    def __len__(self) -> int:
        return len(self._seen)


class _Family(Generic[M]):
    """A labelled metric with its children cached: ``.labels()`` validates and locks on every call,
    a dict lookup does not. The cache is bounded because every label value went through a budget."""

    __slots__ = ("children", "metric")

    def __init__(self, metric: M) -> None:
        self.metric: M = metric
        self.children: dict[tuple[str, ...], M] = {}

    def __call__(self, *labels: str) -> M:
        child = self.children.get(labels)
        if child is None:
            child = self.children[labels] = self.metric.labels(*labels)
        return child


class _Timer:
    __slots__ = ("_histogram", "_start")

    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram
        self._start = 0.0

    def __enter__(self) -> _Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._histogram.observe(time.perf_counter() - self._start)


class RuntimeMetrics:
    """The runtime's Prometheus metrics (all named ``agent_runtime_*``) and the calls that feed them.

    Args:
        tenant_allowlist: tenants reported by name in ``tenant`` labels; all others are ``other``.
        max_label_values: distinct values kept per free-form label (template, model, tool, scope,
            backend, operation, middleware, error code) before ``other``.
        registry: where the metrics are registered; a fresh ``CollectorRegistry`` by default.
    """

    def __init__(
        self,
        *,
        tenant_allowlist: Iterable[str] = (),
        max_label_values: int = 50,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") if multiprocess_enabled() else None
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and self.multiprocess_dir is None:
            logger.warning(
                "PROMETHEUS_MULTIPROC_DIR was set after prometheus_client was imported; metrics stay per process"
            )
        self.tenant_allowlist = frozenset(tenant_allowlist)
        self.max_label_values = max_label_values
        self._template, self._model, self._tool = self._budget(), self._budget(), self._budget()
        self._scope, self._backend, self._operation = self._budget(), self._budget(), self._budget()
        self._middleware, self._error_code = self._budget(), self._budget()

        reg = self.registry
        c, h = self._counter, self._histogram
        self.runs = c("runs", "Runs finished, by template and final status.", ["template", "status"])
        self.run_errors = c("run_errors", "Runs that ended with an error, by error code.", ["template", "code"])
        self.run_duration = h("run_duration_seconds", "Wall time of a run.", ["template"], _RUN_BUCKETS)
        self.ttft = h(
            "time_to_first_token_seconds", "Time from run start to first streamed token.", ["template"], _TTFT_BUCKETS
        )
        self.llm_calls = c("llm_calls", "Chat model calls.", ["model"])
        self.llm_latency = h("llm_latency_seconds", "Latency of one chat model call.", ["model"], _RUN_BUCKETS)
        self.tokens = c("tokens", "Tokens used; kind=cached is a subset of kind=input.", ["model", "kind"])
        self.cost = c("cost_usd", "Spend in USD from the price table.", ["model", "tenant"])
        self.unpriced_runs = c(
            "unpriced_runs", "Runs that used a model missing from the price table (charged $0).", ["model"]
        )
        self.tool_calls = c("tool_calls", "Tool calls, by tool and status (ok|error).", ["tool", "status"])
        self.ratelimit_rejections = c("ratelimit_rejections", "Runs refused by the rate limiter.", ["scope"])
        self.quota_rejections = c("quota_rejections", "Runs refused because a quota was exhausted.", ["tenant"])
        self.backend_errors = c("backend_errors", "Failed backend calls.", ["backend", "operation"])
        self.middleware_latency = h(
            "middleware_latency_seconds", "Time spent in a middleware layer.", ["middleware"], _MIDDLEWARE_BUCKETS
        )
        self.eventbus_counters: dict[str, Counter] = {
            kind: Counter(f"agent_runtime_eventbus_{kind}", f"Events {kind.replace('_', ' ')}.", registry=reg)
            for kind in ("published", "consumed", "dead_lettered", "lost")
        }
        # livesum: the fleet's active runs are the sum over live workers; a dead worker's share is
        # dropped by mark_process_dead. Session and quota gauges mirror shared state, so the newest
        # observation from any worker is the truth.
        self.active_runs = _Family(
            Gauge(
                "agent_runtime_active_runs",
                "Runs in progress.",
                ["template"],
                registry=reg,
                multiprocess_mode="livesum",
            )
        )
        self.queued_runs_ended = c("queued_runs_ended", "Background runs ended, by final status.", ["status"])
        self.run_recoveries = Counter(
            "agent_runtime_run_recoveries", "Background runs taken over from a dead worker.", registry=reg
        )
        self.run_queue_wait = Histogram(
            "agent_runtime_run_queue_wait_seconds",
            "Time from a background run's submission to its first start.",
            registry=reg,
            buckets=_TTFT_BUCKETS,
        )
        self.run_queue_depth_gauge = Gauge(
            "agent_runtime_run_queue_depth",
            "Background runs waiting for a worker.",
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self.active_sessions = Gauge(
            "agent_runtime_active_sessions", "Sessions currently stored.", registry=reg, multiprocess_mode="mostrecent"
        )
        self.quota_utilization = _Family(
            Gauge(
                "agent_runtime_quota_utilization_ratio",
                "Fraction of a tenant's quota spent in the current period (1.0 = exhausted).",
                ["tenant", "period"],
                registry=reg,
                multiprocess_mode="mostrecent",
            )
        )

    def _budget(self) -> LabelBudget:
        return LabelBudget(self.max_label_values)

    def _counter(self, name: str, doc: str, labels: list[str]) -> _Family[Counter]:
        return _Family(Counter(f"agent_runtime_{name}", doc, labels, registry=self.registry))

    def _histogram(self, name: str, doc: str, labels: list[str], buckets: tuple[float, ...]) -> _Family[Histogram]:
        return _Family(Histogram(f"agent_runtime_{name}", doc, labels, registry=self.registry, buckets=buckets))

    # -- labels ----------------------------------------------------------------------------------

    def tenant_label(self, tenant: str | None) -> str:
        if tenant is None:
            return NO_TENANT
        return tenant if tenant in self.tenant_allowlist else OTHER

    # -- runs ------------------------------------------------------------------------------------

    def observe_run(self, result: AgentResult, tenant: str | None = None, *, count_tools: bool = True) -> None:
        """Account one finished run (any status, streamed or not, abandoned streams included).

        ``count_tools=False`` when tool calls were already reported one by one with :meth:`observe_tool`.
        """
        template = self._template(result.template)
        self.runs(template, result.status).inc()
        self.run_duration(template).observe(result.duration_ms / 1000.0)
        if result.time_to_first_token_ms is not None:
            self.ttft(template).observe(result.time_to_first_token_ms / 1000.0)
        if result.error:
            self.run_errors(template, self._error_code(str(result.error.get("code", "unknown")))).inc()
        for model_name, usage in result.usage_by_model().items():  # a workflow's steps, by the model that answered each
            self.observe_spend(model_name, usage, tenant)
        if count_tools:
            for call in result.tool_calls:
                self.tool_calls(self._tool(call.name), call.status).inc()

    def observe_spend(self, model_name: str, usage: Usage, tenant: str | None = None) -> None:
        """Tokens and cost of one model's calls (a failed run's too: the provider billed them)."""
        model = self._model(model_name)
        self.tokens(model, "input").inc(max(usage.input_tokens, 0))
        self.tokens(model, "output").inc(max(usage.output_tokens, 0))
        self.tokens(model, "cached").inc(max(usage.cached_tokens, 0))
        # Incremented even by 0 so the series exists: the spend-anomaly alert compares it to tokens.
        self.cost(model, self.tenant_label(tenant)).inc(max(usage.cost_usd, 0.0))

    def unpriced_run(self, model_name: str) -> None:
        self.unpriced_runs(self._model(model_name)).inc()

    def run_failed(self, template: str, error_code: str, duration_s: float) -> None:
        """Account a run that raised before producing a result."""
        label = self._template(template)
        self.runs(label, "failed").inc()
        self.run_errors(label, self._error_code(error_code)).inc()
        self.run_duration(label).observe(duration_s)

    def run_started(self, template: str) -> None:
        self.active_runs(self._template(template)).inc()

    def run_finished(self, template: str) -> None:
        self.active_runs(self._template(template)).dec()

    def run_queue_depth(self, depth: int) -> None:
        self.run_queue_depth_gauge.set(depth)

    def run_queue_wait_observe(self, seconds: float) -> None:
        self.run_queue_wait.observe(seconds)

    def run_ended(self, status: str) -> None:
        self.queued_runs_ended(status).inc()

    def run_recovered(self) -> None:
        self.run_recoveries.inc()

    def observe_ttft(self, template: str, seconds: float) -> None:
        self.ttft(self._template(template)).observe(seconds)

    # -- calls inside a run ----------------------------------------------------------------------

    def observe_tool(self, name: str, status: str) -> None:
        self.tool_calls(self._tool(name), "ok" if status == "ok" else "error").inc()

    def observe_llm(self, model: str, latency_s: float) -> None:
        label = self._model(model)
        self.llm_calls(label).inc()
        self.llm_latency(label).observe(latency_s)

    # -- rejections, backends, bus ---------------------------------------------------------------

    def ratelimit_rejected(self, scope: str) -> None:
        self.ratelimit_rejections(self._scope(scope)).inc()

    def quota_rejected(self, tenant: str | None = None) -> None:
        self.quota_rejections(self.tenant_label(tenant)).inc()

    def set_quota_utilization(self, tenant: str | None, period: Literal["day", "month"], ratio: float) -> None:
        """Spent / limit for a tenant's quota; feeds the "quota near exhaustion" alert."""
        self.quota_utilization(self.tenant_label(tenant), period).set(ratio)

    def set_active_sessions(self, count: int) -> None:
        """Number of stored sessions, as counted by the session backend (shared across workers)."""
        self.active_sessions.set(count)

    def backend_error(self, backend: str, op: str) -> None:
        self.backend_errors(self._backend(backend), self._operation(op)).inc()

    def eventbus(self, kind: EventBusKind, count: int = 1) -> None:
        counter = self.eventbus_counters.get(kind)
        if counter is None:
            raise ValidationError(
                f"unknown event bus metric {kind!r}; expected one of {sorted(self.eventbus_counters)}"
            )
        counter.inc(count)

    def time_middleware(self, name: str) -> _Timer:
        """``with metrics.time_middleware("auth"): ...`` observes the block's wall time."""
        return _Timer(self.middleware_latency(self._middleware(name)))

    # -- exposition ------------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type; in multiprocess mode, aggregated over all workers."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def mark_process_dead(self, pid: int) -> None:
        mark_process_dead(pid, self.multiprocess_dir)
