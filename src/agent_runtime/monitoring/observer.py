"""Feeds ``RuntimeMetrics`` from the executor's run notifications.

A run that spent tokens on a model the price table does not know costs $0, so USD budgets do not
see it: each such run is counted (``agent_runtime_unpriced_runs_total{model}``) and the first one per
model in a process is logged as a warning naming the price file setting.
"""

from __future__ import annotations

import logging

from agent_runtime.accounting.attempts import error_usage, failed_result, result_tokens
from agent_runtime.errors import AgentRuntimeError
from agent_runtime.monitoring.metrics import RuntimeMetrics
from agent_runtime.monitoring.pricing import PriceTable
from agent_runtime.types import AgentContext, AgentResult, ToolCallRecord, Usage

__all__ = ["MetricsObserver"]

log = logging.getLogger("agent_runtime.monitoring")


class MetricsObserver:
    def __init__(self, metrics: RuntimeMetrics, prices: PriceTable | None = None) -> None:
        self.metrics = metrics
        self.prices = prices
        self._warned: set[str] = set()

    def _check_priced(self, spend: dict[str, Usage]) -> None:
        if self.prices is None:
            return
        for model, usage in spend.items():
            if not result_tokens(usage) or self.prices.price_for(model) is not None:
                continue
            self.metrics.unpriced_run(model)
            if model not in self._warned and len(self._warned) < 1000:
                self._warned.add(model)
                log.warning(
                    "model %r has no price: its runs cost $0 and USD quotas do not count them; add it to the "
                    "price file (AGENT_RUNTIME_PRICE_FILE)",
                    model,
                    extra={"model": model},
                )

    def run_started(self, context: AgentContext) -> None:
        self.metrics.run_started(context.template)

    def run_finished(self, context: AgentContext, result: AgentResult) -> None:
        self.metrics.run_finished(context.template)
        self.metrics.observe_run(result, context.tenant)
        self._check_priced(result.usage_by_model())

    def run_failed(self, context: AgentContext, error: AgentRuntimeError, duration_s: float) -> None:
        self.metrics.run_finished(context.template)
        self.metrics.run_failed(context.template, error.code, duration_s)
        spent = error_usage(error)  # the model calls made before the failure, by the model of each
        if result_tokens(spent):
            by_model = failed_result(context, error, spent).usage_by_model()
            for model, usage in by_model.items():
                self.metrics.observe_spend(model, usage, context.tenant)
            self._check_priced(by_model)
        if error.code == "rate_limited":
            self.metrics.ratelimit_rejected(str(error.details.get("scope", "request")))
        elif error.code == "quota_exceeded":
            self.metrics.quota_rejected(context.tenant)

    def tool_called(self, context: AgentContext, call: ToolCallRecord) -> None:
        """Counted by ``observe_run`` with the rest of the result."""
