"""Cron schedules: templates run on a cron expression in an IANA time zone, as background runs.

A schedule (``Schedule``) lives in the state backend (``CronStore``: memory, SQLite, Redis, PostgreSQL,
built by the registry family ``crons``). Every serving or worker process runs a ``CronScheduler``;
each tick fires exactly once across all of them (see ``crons.scheduler`` for the claim and for what
happens to ticks missed during downtime). The run a tick starts is an ordinary background run of
the schedule's creator: charged to it, limited by its quotas, refused once its key is revoked.
"""

from __future__ import annotations

from agent_runtime.crons.base import CronFilter, CronStore
from agent_runtime.crons.schedule import Schedule, next_tick
from agent_runtime.crons.scheduler import CronScheduler, Tick
from agent_runtime.crons.service import CronChanges, Crons, CronSpec

__all__ = [
    "CronChanges",
    "CronFilter",
    "CronScheduler",
    "CronSpec",
    "CronStore",
    "Crons",
    "Schedule",
    "Tick",
    "next_tick",
]
