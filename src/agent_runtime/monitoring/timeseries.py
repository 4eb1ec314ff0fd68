"""Per-minute, in-process time series of runs for the live dashboard (``/dashboard``).

A ring of the last ``minutes`` one-minute buckets, each holding counts of runs, errors, rate-limit and
quota rejections, tokens and cost (in total, by template and by model) and a log-scale latency
histogram from which p50/p95/p99 are read. Recording is a lock, a dict lookup and a few additions
(about 3 µs); memory is bounded by ``minutes`` x ``max_tenants`` x ``max_keys``.

Data is kept per tenant (a tenant admin sees only their tenant) and for the whole worker (the fleet
view). It is **per worker process**: with ``--workers N`` each worker's dashboard shows the runs that
worker served, roughly 1/N of the traffic. Prometheus (``/metrics``, aggregated across workers) is
the fleet-wide, durable view; this series is the zero-setup "what is happening right now" page.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Final

from agent_runtime.errors import AgentRuntimeError, ValidationError
from agent_runtime.monitoring.metrics import LabelBudget
from agent_runtime.types import AgentContext, AgentResult, ToolCallRecord

__all__ = ["DashboardObserver", "RunSeries", "latency_bucket", "latency_percentiles"]

REJECTION_CODES: Final = {"rate_limited": "rate_limited", "quota_exceeded": "quota_rejected"}
"""Error codes counted as rejections rather than errors: the runtime refused the run on purpose."""

_GROWTH: Final = 2 ** (1 / 8)
"""Latency bucket ratio: each bucket is ~9% wider than the last, so a percentile is within ~4.5%."""
_LOG_GROWTH: Final = math.log(_GROWTH)
_MIN_MS: Final = 0.01


def latency_bucket(ms: float) -> int:
    """The histogram bucket of a latency: bucket ``i`` holds ``(GROWTH**(i-1), GROWTH**i]`` ms."""
    return math.ceil(math.log(max(ms, _MIN_MS)) / _LOG_GROWTH)


def latency_percentiles(
    histogram: dict[int, int], quantiles: Iterable[float], *, low: float = 0.0, high: float = math.inf
) -> list[float | None]:
    """Percentiles of a bucket histogram (geometric bucket midpoints, clamped to ``[low, high]``, the
    exact extremes when known); ``None`` for an empty histogram."""
    total = sum(histogram.values())
    if not total:
        return [None for _ in quantiles]
    buckets = sorted(histogram.items())
    out: list[float | None] = []
    for q in quantiles:
        rank = max(1, math.ceil(q * total))
        seen = 0
        for bucket, count in buckets:
            seen += count
            if seen >= rank:
                value = min(max(_GROWTH ** (bucket - 0.5), low), high)
                out.append(round(value, 3))
                break
    return out


class _Counts:
    """Runs, tokens and cost of one key (a template or a model) in one minute."""

    __slots__ = ("cost_usd", "runs", "tokens")

    def __init__(self) -> None:
        self.runs = 0
        self.tokens = 0
        self.cost_usd = 0.0


class _Minute:
    __slots__ = (
        "cost_usd",
        "error_codes",
        "errors",
        "index",
        "input_tokens",
        "latency",
        "latency_max",
        "latency_min",
        "models",
        "output_tokens",
        "quota_rejected",
        "rate_limited",
        "runs",
        "templates",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.runs = self.errors = self.rate_limited = self.quota_rejected = 0
        self.input_tokens = self.output_tokens = 0
        self.cost_usd = 0.0
        self.latency: dict[int, int] = {}
        self.latency_min = math.inf
        self.latency_max = 0.0
        self.templates: dict[str, _Counts] = {}
        self.models: dict[str, _Counts] = {}
        self.error_codes: dict[str, int] = {}


class _Ring:
    """The last ``size`` minutes of one view (a tenant, or the whole worker)."""

    __slots__ = ("size", "slots")

    def __init__(self, size: int) -> None:
        self.size = size
        self.slots: list[_Minute | None] = [None] * size

    def minute(self, index: int) -> _Minute:
        pos = index % self.size
        slot = self.slots[pos]
        if slot is None or slot.index != index:
            slot = self.slots[pos] = _Minute(index)
        return slot

    def get(self, index: int) -> _Minute | None:
        slot = self.slots[index % self.size]
        return slot if slot is not None and slot.index == index else None


def _add(table: dict[str, _Counts], key: str, tokens: int, cost: float) -> None:
    counts = table.get(key)
    if counts is None:
        counts = table[key] = _Counts()
    counts.runs += 1
    counts.tokens += tokens
    counts.cost_usd += cost


class RunSeries:
    """Bounded per-minute series of the runs one worker served, per tenant and for the worker.

    Args:
        minutes: how many one-minute buckets are kept (the longest window the dashboard can show).
        bucket_s: bucket width in seconds (60; tests use shorter buckets).
        max_keys: distinct template, model and error-code names kept (per worker); later ones are
            counted under ``other`` (as in the Prometheus labels), so a flood of made-up names cannot grow memory.
        max_tenants: tenants kept; the least recently active one is dropped past this.
        clock: wall-clock seconds, injectable for tests.
    """

    def __init__(
        self,
        *,
        minutes: int = 120,
        bucket_s: float = 60.0,
        max_keys: int = 20,
        max_tenants: int = 256,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if minutes < 1 or bucket_s <= 0 or max_tenants < 1:
            raise ValidationError("minutes, bucket_s and max_tenants must be positive")
        self.minutes = minutes
        self.bucket_s = bucket_s
        self.max_tenants = max_tenants
        self.clock = clock
        self.started_at = clock()
        self._templates = LabelBudget(max_keys)
        self._models = LabelBudget(max_keys)
        self._codes = LabelBudget(max_keys)
        self._fleet = _Ring(minutes)
        self._tenants: OrderedDict[str, _Ring] = OrderedDict()
        self._lock = threading.Lock()

    # -- recording (hot path) -----------------------------------------------------------------------
    def _rings(self, tenant: str | None) -> tuple[_Ring, ...]:
        """The worker's ring and the tenant's (created, or refreshed as most recently active); locked."""
        if tenant is None:
            return (self._fleet,)
        ring = self._tenants.get(tenant)
        if ring is None:
            ring = self._tenants[tenant] = _Ring(self.minutes)
            if len(self._tenants) > self.max_tenants:
                self._tenants.popitem(last=False)
        else:
            self._tenants.move_to_end(tenant)
        return self._fleet, ring

    def record_run(
        self,
        *,
        tenant: str | None,
        template: str,
        model: str,
        duration_ms: float | None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost_usd: float = 0.0,
    ) -> None:
        """Count a finished run; ``duration_ms`` feeds the latency percentiles unless ``None``."""
        template, model = self._templates(template), self._models(model)
        tokens = input_tokens + output_tokens
        bucket = latency_bucket(duration_ms) if duration_ms is not None else None
        index = int(self.clock() // self.bucket_s)
        with self._lock:
            for ring in self._rings(tenant):
                m = ring.minute(index)
                m.runs += 1
                m.input_tokens += input_tokens
                m.output_tokens += output_tokens
                m.cost_usd += cost_usd
                _add(m.templates, template, tokens, cost_usd)
                _add(m.models, model, tokens, cost_usd)
                if bucket is not None and duration_ms is not None:
                    m.latency[bucket] = m.latency.get(bucket, 0) + 1
                    m.latency_min = min(m.latency_min, duration_ms)
                    m.latency_max = max(m.latency_max, duration_ms)

    def record_failure(self, *, tenant: str | None, code: str) -> None:
        """Count a failed run: a rejection (rate limit, quota) or an error, by error code."""
        rejection = REJECTION_CODES.get(code)
        code = self._codes(code)
        index = int(self.clock() // self.bucket_s)
        with self._lock:
            for ring in self._rings(tenant):
                m = ring.minute(index)
                if rejection == "rate_limited":
                    m.rate_limited += 1
                elif rejection == "quota_rejected":
                    m.quota_rejected += 1
                else:
                    m.errors += 1
                    m.error_codes[code] = m.error_codes.get(code, 0) + 1

    # -- reading ------------------------------------------------------------------------------------
    def tenants(self) -> list[str]:
        with self._lock:
            return list(self._tenants)

    def snapshot(self, *, tenant: str | None = None, fleet: bool = False, minutes: int | None = None) -> dict[str, Any]:
        """The last ``minutes`` buckets (oldest first, empty minutes as zeros) as JSON-ready lists.

        Args:
            tenant: the tenant whose runs to show (ignored when ``fleet``).
            fleet: show every run this worker served, of all tenants.
            minutes: window length, clamped to ``1..self.minutes`` (default: all kept).
        """
        window = max(1, min(minutes or self.minutes, self.minutes))
        now = self.clock()
        last = int(now // self.bucket_s)
        indexes = range(last - window + 1, last + 1)
        with self._lock:
            ring = self._fleet if fleet else (self._tenants.get(tenant) if tenant is not None else None)
            buckets = [ring.get(i) if ring is not None else None for i in indexes]
            return _render(buckets, indexes, self.bucket_s, now) | {
                "view": "fleet" if fleet else "tenant",
                "tenant": None if fleet else tenant,
                "worker": {"pid": os.getpid(), "started_at": self.started_at},
            }


def _render(buckets: list[_Minute | None], indexes: range, bucket_s: float, now: float) -> dict[str, Any]:
    n = len(buckets)
    quantiles = (0.5, 0.95, 0.99)
    latency: dict[str, list[float | None]] = {"p50": [], "p95": [], "p99": []}
    merged: dict[int, int] = {}
    low, high = math.inf, 0.0
    by_template: dict[str, dict[str, list[float]]] = {}
    by_model: dict[str, dict[str, list[float]]] = {}
    error_codes: dict[str, list[int]] = {}
    for pos, m in enumerate(buckets):
        values = latency_percentiles(m.latency, quantiles, low=m.latency_min, high=m.latency_max) if m else [None] * 3
        for name, value in zip(latency, values, strict=True):
            latency[name].append(value)
        if m is None:
            continue
        for bucket, count in m.latency.items():
            merged[bucket] = merged.get(bucket, 0) + count
        low, high = min(low, m.latency_min), max(high, m.latency_max)
        for source, target in ((m.templates, by_template), (m.models, by_model)):
            for key, counts in source.items():
                row = target.setdefault(key, {"runs": [0] * n, "tokens": [0] * n, "cost_usd": [0.0] * n})
                row["runs"][pos] = counts.runs
                row["tokens"][pos] = counts.tokens
                row["cost_usd"][pos] = round(counts.cost_usd, 8)
        for code, count in m.error_codes.items():
            error_codes.setdefault(code, [0] * n)[pos] = count

    def column(name: str) -> list[Any]:
        return [getattr(m, name) if m is not None else 0 for m in buckets]

    runs, errors = column("runs"), column("errors")
    rate_limited, quota_rejected = column("rate_limited"), column("quota_rejected")
    input_tokens, output_tokens = column("input_tokens"), column("output_tokens")
    cost = [round(value, 8) for value in column("cost_usd")]
    p50, p95, p99 = latency_percentiles(merged, quantiles, low=low, high=high)
    return {
        "generated_at": now,
        "bucket_s": bucket_s,
        "minutes": [index * bucket_s for index in indexes],
        "runs": runs,
        "errors": errors,
        "rate_limited": rate_limited,
        "quota_rejected": quota_rejected,
        "latency_ms": latency,
        "tokens": {"input": input_tokens, "output": output_tokens},
        "cost_usd": cost,
        "by_template": dict(sorted(by_template.items())),
        "by_model": dict(sorted(by_model.items())),
        "error_codes": dict(sorted(error_codes.items())),
        "totals": {
            "runs": sum(runs),
            "errors": sum(errors),
            "rate_limited": sum(rate_limited),
            "quota_rejected": sum(quota_rejected),
            "input_tokens": sum(input_tokens),
            "output_tokens": sum(output_tokens),
            "cost_usd": round(sum(cost), 8),
            "p50_ms": p50,
            "p95_ms": p95,
            "p99_ms": p99,
        },
    }


class DashboardObserver:
    """Feeds a :class:`RunSeries` from the executor's run notifications (a ``RunObserver``)."""

    def __init__(self, series: RunSeries) -> None:
        self.series = series

    def run_started(self, context: AgentContext) -> None:
        """Nothing to count until the run ends."""

    def run_finished(self, context: AgentContext, result: AgentResult) -> None:
        usage = result.usage
        self.series.record_run(
            tenant=context.tenant,
            template=result.template,
            model=result.model,
            # an abandoned stream's duration says how long the client listened, not how fast we were
            duration_ms=result.duration_ms if result.status == "completed" else None,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=usage.cost_usd,
        )

    def run_failed(self, context: AgentContext, error: AgentRuntimeError, duration_s: float) -> None:
        self.series.record_failure(tenant=context.tenant, code=error.code)

    def tool_called(self, context: AgentContext, call: ToolCallRecord) -> None:
        """Tool calls are not charted."""
