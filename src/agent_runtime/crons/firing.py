"""How a tick becomes a run: a background run submitted as the schedule's creator, and the key check before it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent_runtime.backends import build
from agent_runtime.crons.schedule import Schedule
from agent_runtime.crons.scheduler import Authorize, CronScheduler, Fire
from agent_runtime.crons.service import Crons
from agent_runtime.errors import AuthenticationError
from agent_runtime.runs.dispatcher import RunDispatcher
from agent_runtime.security.keys import KeyService
from agent_runtime.sessions import SessionManager
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext

__all__ = ["SOURCE", "build_crons", "key_check", "submit_to"]

SOURCE = "cron"
"""``metadata.source`` of the runs schedules start (the schedule's ``last_run_id`` names the latest)."""


def submit_to(dispatcher: RunDispatcher, sessions: SessionManager) -> Fire:
    """Submit each tick's run to ``dispatcher`` (queue, fairness, quotas: like any background run).

    The schedule's session is opened first, created for its owner when missing (the first tick, or
    after the session expired), as ``agent-runtime run --session`` does; an id another user holds
    is ``SessionNotFoundError``, recorded on the schedule."""

    async def fire(schedule: Schedule, tick_at: float) -> str:
        if schedule.session_id is not None:
            await sessions.open_for_run(
                schedule.session_id,
                tenant=schedule.tenant,
                user_id=schedule.user,
                template=schedule.template,
                create_missing=True,
            )
        metadata: dict[str, Any] = {"source": SOURCE}
        if schedule.metadata:
            metadata["client"] = dict(schedule.metadata)
        context = AgentContext(
            input=schedule.input,
            template=schedule.template,
            session_id=schedule.session_id,
            principal=schedule.principal,
            metadata=metadata,
        )
        run = await dispatcher.submit(context, multitask=schedule.multitask_strategy, webhook=schedule.webhook)
        return run.run_id

    return fire


def key_check(keys: KeyService) -> Authorize:
    """Refuse a tick whose creator's API key was revoked, expired or deleted since the schedule was made,
    and run it with the key as it is now (scopes and limits changed since apply to the next run).

    The record is read from the key store itself, not the service's cache, so a revocation made in
    another process counts at the very next tick."""

    async def authorize(schedule: Schedule) -> Schedule:
        key_id = schedule.principal.key_id
        if key_id is None:
            return schedule
        record = await keys.store.get(key_id)
        if record is None or record.revoked or record.is_expired() or record.tenant != schedule.tenant:
            raise AuthenticationError(f"the API key {key_id} that created this schedule is no longer valid")
        return schedule.model_copy(update={"principal": record.to_principal()})

    return authorize


def build_crons(
    settings: Settings,
    has_template: Callable[[str], bool],
    dispatcher: RunDispatcher,
    keys: KeyService,
    sessions: SessionManager,
) -> tuple[Crons, CronScheduler | None]:
    """The cron store of ``settings`` (registry family ``crons``), its API, and this process's scheduler
    (``None`` when ``crons.scheduler`` is off)."""
    cfg = settings.crons
    webhooks = dispatcher.webhooks
    crons = Crons(
        build("crons", settings),
        has_template,
        max_input_chars=settings.limits.max_input_chars,
        check_webhook=webhooks.check if webhooks is not None else None,
    )
    if not cfg.scheduler:
        return crons, None
    scheduler = CronScheduler(
        crons.store, submit_to(dispatcher, sessions), authorize=key_check(keys), poll_s=cfg.poll_s, batch=cfg.batch
    )
    return crons, scheduler
