"""``TriggerHandler``: matching events start agent runs, through the executor's whole middleware chain.

Each rule runs as its own service principal (``trigger:<rule>``, tenant of the rule, only the scopes
the rule lists), so auth, rate limits, quotas, cost and logging apply to triggered runs exactly as to
requests. The run's ``metadata["trigger"]`` names its cause; ``EventObserver`` turns that into
``depth = cause depth + 1`` on every event of the run.

Loop protection: an event at ``depth >= max_depth`` triggers nothing (counted and logged), so a rule
that reacts to the events of its own runs stops after ``max_depth`` generations.

Delivery: the bus is at-least-once, so a redelivered event names the same run id, and with a
``DedupeStore`` a (rule, event) pair that already ran is not run again. A failed run is final (its
``run.failed`` event says why) unless the failure is the infrastructure's (backend down, rate
limited, provider unavailable): then the handler raises, and the bus retries it with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agent_runtime.errors import (
    AgentRuntimeError,
    BackendError,
    ProviderError,
    RateLimitError,
    ServiceUnavailableError,
    ValidationError,
)
from agent_runtime.event_bus.consumer import ConsumerRegistry, Registration
from agent_runtime.event_bus.dedupe import DedupeStore
from agent_runtime.event_bus.events import Event
from agent_runtime.event_bus.observer import TRIGGER_KEY, TriggerCause
from agent_runtime.event_bus.trigger_rules import (
    FilterCondition,
    SessionPolicy,
    TriggerRule,
    load_rules,
    parse_rules,
)
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext, AgentResult

__all__ = [
    "FilterCondition",
    "SessionPolicy",
    "TriggerHandler",
    "TriggerRule",
    "TriggerStats",
    "load_rules",
    "parse_rules",
    "rules_from_settings",
]

log = logging.getLogger("agent_runtime.event_bus.triggers")


@dataclass
class TriggerStats:
    matched: int = 0
    started: int = 0
    completed: int = 0
    failed: int = 0
    depth_limited: int = 0
    """Matching events at or past the depth limit: the loop protection at work."""
    duplicates: int = 0
    invalid: int = 0
    """Events whose input or session id could not be built from the payload."""
    redelivered: int = 0
    """Infrastructure failures handed back to the bus for a later retry."""


class TriggerHandler:
    """Runs the matching rules for each event (an ``EventBus`` handler).

    Args:
        executor: the runtime's executor (with its middleware chain).
        rules: the trigger rules; names must be unique.
        tenant: tenant of rules that name none.
        max_depth: events at this depth or deeper trigger nothing.
        dedupe: remembers (rule, event) pairs already run, across redeliveries (and workers, if shared).
        max_retries: passed to ``execute_with_retry`` (default: the template's).
    """

    def __init__(
        self,
        executor: AgentExecutor,
        rules: Iterable[TriggerRule],
        *,
        tenant: str = "default",
        max_depth: int = 3,
        dedupe: DedupeStore | None = None,
        max_retries: int | None = None,
    ) -> None:
        self.executor = executor
        self.rules = list(rules)
        names = [rule.name for rule in self.rules]
        if len(set(names)) != len(names):
            raise ValidationError("trigger rule names must be unique")
        if max_depth < 0:
            raise ValidationError("max_depth must be >= 0")
        self.tenant = tenant
        self.max_depth = max_depth
        self.dedupe = dedupe
        self.max_retries = max_retries
        self.stats = TriggerStats()
        self.results: dict[str, AgentResult] = {}
        """Last few results by run id (bounded), for operators and tests."""

    async def __call__(self, event: Event) -> None:
        rules = [rule for rule in self.rules if rule.matches(event, self.tenant)]
        if not rules:
            return
        self.stats.matched += len(rules)
        outcomes = await asyncio.gather(*(self.fire(rule, event) for rule in rules), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def fire(self, rule: TriggerRule, event: Event) -> AgentResult | None:
        """Run ``rule`` for ``event`` unless the depth limit or a dedupe mark stops it."""
        limit = self.max_depth if rule.max_depth is None else min(rule.max_depth, self.max_depth)
        if event.depth >= limit:
            self.stats.depth_limited += 1
            log.warning(
                "trigger %s not fired: event %s (%s) is at depth %d, the limit is %d",
                rule.name,
                event.id,
                event.type,
                event.depth,
                limit,
            )
            return None
        key = f"trg.{rule.name}.{event.id}"
        if self.dedupe is not None and await self.dedupe.seen(key):
            self.stats.duplicates += 1
            return None
        try:
            context = self.context_for(rule, event)
        except ValidationError as exc:
            self.stats.invalid += 1
            log.warning("trigger %s not fired for event %s: %s", rule.name, event.id, exc.message)
            return None
        self.stats.started += 1
        try:
            result = await self.executor.execute_with_retry(context, self.max_retries)
        except AgentRuntimeError as exc:
            if _redeliver(exc):
                self.stats.redelivered += 1
                raise
            self.stats.failed += 1
            log.warning("triggered run %s (%s) failed: [%s] %s", context.run_id, rule.name, exc.code, exc.message)
            await self._mark(key)
            return None
        self.stats.completed += 1
        self._remember(result)
        await self._mark(key)
        return result

    def context_for(self, rule: TriggerRule, event: Event) -> AgentContext:
        """The run request for (rule, event): input and session from the event, the rule's principal."""
        cause: TriggerCause = {
            "event_id": event.id,
            "event_type": event.type,
            "rule": rule.name,
            "depth": event.depth,
            "correlation_id": event.correlation_id or event.id,
        }
        session_id = rule.session_for(event)
        return AgentContext(
            input=rule.render_input(event),
            template=rule.template,
            run_id=rule.run_id_for(event),
            session_id=session_id,
            model=rule.model,
            timeout_s=rule.timeout_s,
            principal=rule.principal(self.tenant),
            metadata={TRIGGER_KEY: cause, "source": "trigger", "create_session": session_id is not None},
        )

    def subscription(self) -> dict[str, Any]:
        """``types`` / ``pattern`` for subscribing: exact types when every rule names one, else all."""
        rules = [rule for rule in self.rules if rule.enabled]
        globs = [rule.event for rule in rules if rule.is_glob]
        if not globs:
            return {"types": {rule.event for rule in rules}}
        if len(globs) == len(rules) and len(set(globs)) == 1:
            return {"pattern": globs[0]}
        return {}

    def register(self, registry: ConsumerRegistry, name: str = "triggers", **options: Any) -> Registration:
        """Register this handler in ``registry`` (options: ``concurrency``, ``max_attempts``, ...)."""
        return registry.register(name, self, **{**self.subscription(), **options})

    async def _mark(self, key: str) -> None:
        if self.dedupe is None:
            return
        try:
            await self.dedupe.mark(key)
        except AgentRuntimeError as exc:  # the run happened; a lost mark only risks a duplicate later
            log.warning("could not record trigger %s as done: %s", key, exc.message)

    def _remember(self, result: AgentResult) -> None:
        self.results[result.run_id] = result
        while len(self.results) > 100:
            self.results.pop(next(iter(self.results)))


def _redeliver(error: AgentRuntimeError) -> bool:
    """Failures worth retrying later through the bus: the infrastructure's, not the run's own."""
    if isinstance(error, BackendError | ServiceUnavailableError | RateLimitError):
        return True
    return isinstance(error, ProviderError) and error.retriable


def rules_from_settings(settings: Settings) -> list[TriggerRule]:
    """Rules from ``settings.triggers_file`` (none when it is unset)."""
    path = settings.triggers_file
    return load_rules(path) if path is not None else []
