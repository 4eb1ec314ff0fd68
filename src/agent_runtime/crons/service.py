"""``Crons``: what every API (native ``/v1/crons``, the Agent Protocol, the CLI) does with schedules.

Checks happen here once: the expression and zone (422 naming ``schedule`` / ``timezone``), the
template (404 when unknown), the creator's scopes (the run scope of the template, and ``sessions``
for a schedule on a session: 403), and ownership: a schedule is its creator's; an admin of the tenant
sees every schedule of it; anyone else gets 404, exactly like for an unknown id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from agent_runtime._redis import check_key_part
from agent_runtime.crons.base import CronFilter, CronStore
from agent_runtime.crons.schedule import Schedule, check_expression, check_timezone, next_tick
from agent_runtime.errors import InputTooLargeError, NotFoundError, PermissionDeniedError, ValidationError
from agent_runtime.runs.multitask import DEFAULT_STRATEGY, MultitaskStrategy
from agent_runtime.scopes import ADMIN, SESSIONS, run_scope
from agent_runtime.types import Principal

__all__ = ["CronChanges", "CronSpec", "Crons"]

_EDITABLE = (
    "template",
    "input",
    "schedule",
    "timezone",
    "enabled",
    "end_time",
    "multitask_strategy",
    "webhook",
    "metadata",
    "payload",
)


@dataclass(frozen=True, kw_only=True)
class CronSpec:
    """A new schedule as a caller describes it."""

    template: str
    input: str
    schedule: str
    timezone: str = "UTC"
    session_id: str | None = None
    enabled: bool = True
    end_time: float | None = None
    multitask_strategy: MultitaskStrategy = DEFAULT_STRATEGY
    webhook: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class CronChanges:
    """What an update sets: only the fields given (``end_time`` may be cleared with ``clear_end_time``)."""

    values: dict[str, Any]
    clear_end_time: bool = False


def is_admin(principal: Principal) -> bool:
    return ADMIN in principal.scopes or "*" in principal.scopes


def _authorize(principal: Principal, template: str, session_id: str | None) -> None:
    scope = run_scope(template)
    if not principal.allows(scope):
        raise PermissionDeniedError(f"missing scope {scope!r}", details={"scope": scope})
    if session_id is not None and not principal.allows(SESSIONS):
        raise PermissionDeniedError(f"missing scope {SESSIONS!r}", details={"scope": SESSIONS})


class Crons:
    """Schedules of a ``CronStore`` as the caller's API sees them.

    Args:
        has_template: whether a template of that name exists (unknown ones are 404).
        check_webhook: the URL if runs may be delivered to it, else ``ValidationError`` (``None``: this
            server delivers no webhooks, so a schedule with one is refused).
        clock: Unix time now (the first tick is computed from it).
    """

    def __init__(
        self,
        store: CronStore,
        has_template: Callable[[str], bool],
        *,
        max_input_chars: int = 32_000,
        check_webhook: Callable[[str], str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.has_template = has_template
        self.max_input_chars = max_input_chars
        self.check_webhook = check_webhook
        self.clock = clock

    def _check_webhook(self, url: str | None) -> str | None:
        if url is None:
            return None
        if self.check_webhook is None:
            raise ValidationError("webhooks are not enabled on this server", details={"param": "webhook"})
        return self.check_webhook(url)

    def _check_input(self, text: str) -> None:
        if len(text) > self.max_input_chars:
            raise InputTooLargeError(f"input is {len(text)} characters; the limit is {self.max_input_chars}")

    def _check_template(self, template: str) -> None:
        if not self.has_template(template):
            raise NotFoundError(f"template {template!r} not found", details={"template": template})

    def _first_tick(self, expression: str, timezone: str, end_time: float | None) -> float | None:
        check_timezone(timezone)
        return next_tick(check_expression(expression), timezone, self.clock(), end_time)

    async def create(self, principal: Principal, spec: CronSpec) -> Schedule:
        expression = check_expression(spec.schedule)
        first = self._first_tick(expression, spec.timezone, spec.end_time)
        self._check_template(spec.template)
        self._check_input(spec.input)
        webhook = self._check_webhook(spec.webhook)
        _authorize(principal, spec.template, spec.session_id)
        now = self.clock()
        schedule = Schedule(
            tenant=principal.tenant,
            user=principal.user,
            principal=principal,
            template=spec.template,
            session_id=spec.session_id,
            input=spec.input,
            schedule=expression,
            timezone=spec.timezone,
            next_run_at=first,
            enabled=spec.enabled,
            end_time=spec.end_time,
            multitask_strategy=spec.multitask_strategy,
            webhook=webhook,
            metadata=spec.metadata,
            payload=spec.payload,
            created_at=now,
            updated_at=now,
        )
        await self.store.create(schedule)
        return schedule

    async def get(self, principal: Principal, cron_id: str) -> Schedule:
        found = await self.store.get(check_key_part(cron_id, "cron id"), tenant=principal.tenant)
        if found is None or not (found.user == principal.user or is_admin(principal)):
            raise NotFoundError(f"cron {cron_id} not found", details={"cron_id": cron_id})
        return found

    async def find(self, principal: Principal, query: CronFilter) -> list[Schedule]:
        """``query`` narrowed to what ``principal`` may see (its tenant; its own schedules unless admin)."""
        user = None if is_admin(principal) else principal.user
        return await self.store.find(replace(query, tenant=principal.tenant, user=user))

    async def update(self, principal: Principal, cron_id: str, changes: CronChanges) -> Schedule:
        """Apply ``changes``; the next tick is computed again from now (a re-enabled schedule does not
        fire for the ticks it missed while disabled)."""
        unknown = sorted(set(changes.values) - set(_EDITABLE))
        if unknown:
            raise ValidationError(f"cannot change {', '.join(unknown)}", details={"param": unknown[0]})
        current = await self.get(principal, cron_id)
        merged = current.model_dump() | changes.values
        if changes.clear_end_time:
            merged["end_time"] = None
        expression = check_expression(merged["schedule"])
        if "template" in changes.values:
            self._check_template(merged["template"])
        self._check_input(merged["input"])
        if "webhook" in changes.values:
            merged["webhook"] = self._check_webhook(merged["webhook"])
        _authorize(principal, merged["template"], current.session_id)
        values = {k: merged[k] for k in _EDITABLE} | {"schedule": expression, "updated_at": self.clock()}
        values["next_run_at"] = self._first_tick(expression, merged["timezone"], merged["end_time"])
        updated = await self.store.update(current.cron_id, tenant=principal.tenant, **values)
        if updated is None:  # deleted meanwhile
            raise NotFoundError(f"cron {cron_id} not found", details={"cron_id": cron_id})
        return updated

    async def delete(self, principal: Principal, cron_id: str) -> None:
        current = await self.get(principal, cron_id)
        if not await self.store.delete(current.cron_id, tenant=principal.tenant):
            raise NotFoundError(f"cron {cron_id} not found", details={"cron_id": cron_id})
