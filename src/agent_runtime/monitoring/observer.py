"""Feeds ``RuntimeMetrics`` from the executor's run notifications."""

from __future__ import annotations

from agent_runtime.accounting.attempts import error_usage, failed_result, result_tokens
from agent_runtime.errors import AgentRuntimeError
from agent_runtime.monitoring.metrics import RuntimeMetrics
from agent_runtime.types import AgentContext, AgentResult, ToolCallRecord

__all__ = ["MetricsObserver"]


class MetricsObserver:
    def __init__(self, metrics: RuntimeMetrics) -> None:
        self.metrics = metrics

    def run_started(self, context: AgentContext) -> None:
        self.metrics.run_started(context.template)

    def run_finished(self, context: AgentContext, result: AgentResult) -> None:
        self.metrics.run_finished(context.template)
        self.metrics.observe_run(result, context.tenant)

    def run_failed(self, context: AgentContext, error: AgentRuntimeError, duration_s: float) -> None:
        self.metrics.run_finished(context.template)
        self.metrics.run_failed(context.template, error.code, duration_s)
        spent = error_usage(error)  # the model calls made before the failure, by the model of each
        if result_tokens(spent):
            for model, usage in failed_result(context, error, spent).usage_by_model().items():
                self.metrics.observe_spend(model, usage, context.tenant)
        if error.code == "rate_limited":
            self.metrics.ratelimit_rejected(str(error.details.get("scope", "request")))
        elif error.code == "quota_exceeded":
            self.metrics.quota_rejected(context.tenant)

    def tool_called(self, context: AgentContext, call: ToolCallRecord) -> None:
        """Counted by ``observe_run`` with the rest of the result."""
