"""``CronScheduler``: fires due ticks, each exactly once across every process sharing the cron store.

Every ``serve`` and ``worker`` process runs one. A pass reads the due schedules and, for each:

1. claims the tick ``(cron_id, next_run_at)`` (``CronStore.claim_tick``: exactly one winner);
2. moves ``next_run_at`` to the first tick after *now*, as a compare-and-set from the value it read
   (winner or not, so a winner that died right after its claim never leaves the schedule stuck);
3. the winner alone checks the creator's key and submits the run (``fire``), then records the outcome.

**Missed ticks** (every process was down, or the queue was full for a while): the schedule fires
once, for the first tick it missed, and then continues from the next tick after now; it never
replays a burst. A process that dies between its claim and its submission loses that one tick
(at most once: the claim is never handed to another process).

**Revoked keys:** before each run the creator's API key is read again; a revoked, expired or deleted
key disables the schedule (``last_error.code`` ``key_revoked``) instead of starting a run. JWT
principals have no key record to check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from agent_runtime.crons.base import CronStore
from agent_runtime.crons.schedule import Schedule, next_tick
from agent_runtime.errors import AgentRuntimeError, AuthenticationError

__all__ = ["Authorize", "CronScheduler", "Fire", "Tick"]

log = logging.getLogger("agent_runtime.crons")

Fire = Callable[[Schedule, float], Awaitable[str]]
"""Start the run of one tick (``tick_at`` in Unix seconds); its run id, or a typed error."""
Authorize = Callable[[Schedule], Awaitable[Schedule]]
"""The schedule to fire, its creator's principal as it stands now (scopes, limits); ``AuthenticationError``
when the creator may no longer start runs."""


@dataclass(frozen=True, slots=True)
class Tick:
    """One tick this scheduler won: the run it started, or why it could not."""

    cron_id: str
    tick_at: float
    run_id: str | None
    error: dict[str, str] | None = None
    """``{"code", "message"}`` when the run was not started."""


class CronScheduler:
    """Fires due schedules of ``store`` through ``fire``.

    Args:
        clock: Unix time now (injectable, so tests move time instead of waiting).
        poll_s: pause between passes of ``run_forever``.
        batch: due schedules read per pass.
    """

    def __init__(
        self,
        store: CronStore,
        fire: Fire,
        *,
        authorize: Authorize | None = None,
        clock: Callable[[], float] = time.time,
        poll_s: float = 1.0,
        batch: int = 100,
    ) -> None:
        self.store = store
        self.fire = fire
        self.authorize = authorize
        self.clock = clock
        self.poll_s = poll_s
        self.batch = batch
        self._task: asyncio.Task[None] | None = None

    async def run_due(self) -> list[Tick]:
        """One pass: every due schedule handled; the ticks this scheduler won."""
        won: list[Tick] = []
        for schedule in await self.store.due(self.clock(), self.batch):
            try:
                tick = await self._handle(schedule)
            except AgentRuntimeError as exc:  # this schedule's trouble must not hold up the others
                log.warning("cron %s: tick not handled: %s", schedule.cron_id, exc.message)
                continue
            if tick is not None:
                won.append(tick)
        return won

    async def _handle(self, schedule: Schedule) -> Tick | None:
        tick_at = schedule.next_run_at
        if tick_at is None:
            return None
        now = self.clock()
        claimed = await self.store.claim_tick(schedule.cron_id, tick_at, now)
        following = next_tick(schedule.schedule, schedule.timezone, max(now, tick_at), schedule.end_time)
        await self.store.update(schedule.cron_id, match={"next_run_at": tick_at}, next_run_at=following, updated_at=now)
        if not claimed:
            return None
        tick = await self._start(schedule, tick_at)
        outcome: dict[str, Any] = {"last_tick_at": tick_at, "last_run_id": tick.run_id, "last_error": tick.error}
        if tick.error is not None and tick.error["code"] == "key_revoked":
            outcome["enabled"] = False
        await self.store.update(schedule.cron_id, **outcome)
        return tick

    async def _start(self, schedule: Schedule, tick_at: float) -> Tick:
        try:
            if self.authorize is not None:
                schedule = await self.authorize(schedule)
            return Tick(schedule.cron_id, tick_at, await self.fire(schedule, tick_at))
        except AuthenticationError as exc:
            log.warning("cron %s disabled: %s", schedule.cron_id, exc.message)
            return Tick(schedule.cron_id, tick_at, None, {"code": "key_revoked", "message": exc.message})
        except AgentRuntimeError as exc:
            log.warning("cron %s tick %.0f not started: %s", schedule.cron_id, tick_at, exc.message)
            return Tick(schedule.cron_id, tick_at, None, {"code": exc.code, "message": exc.message})

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_due()
            except AgentRuntimeError as exc:  # the backend is down: try again next pass
                log.warning("cron scheduler pass failed: %s", exc.message)
            except Exception:  # a bug must not stop every later tick of this process silently
                log.exception("cron scheduler pass failed")
            await asyncio.sleep(self.poll_s)

    def start(self) -> None:
        """Run passes in the background until ``aclose``."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run_forever(), name="agent-runtime-crons")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
