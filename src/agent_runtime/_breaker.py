"""A circuit breaker, so a dead backend costs a caller microseconds instead of a timeout.

``failures`` consecutive failures (refused or timed-out connections, timed-out replies) open the
breaker: for ``cooldown_s`` every call is refused at once, before it touches the network. After the
cooldown the breaker is *half open*: the next caller goes through as a probe (the others keep being
refused for another cooldown); its success closes the breaker, its failure opens it again.

The state is two numbers read without a lock: a stale read can only let one extra call through or
refuse one extra call, never wedge the breaker.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from typing import Literal

__all__ = ["BreakerEvent", "BreakerState", "CircuitBreaker", "breaker_probe", "probing"]

log = logging.getLogger("agent_runtime.breaker")

BreakerState = Literal["closed", "open", "half_open"]
BreakerEvent = Literal["failure", "rejected", "opened", "closed"]
_PROBING: contextvars.ContextVar[bool] = contextvars.ContextVar("agent_runtime_breaker_probe", default=False)


@contextlib.contextmanager
def breaker_probe() -> Iterator[None]:
    """Calls inside go through an open breaker (and close it if they succeed): readiness probes."""
    token = _PROBING.set(True)
    try:
        yield
    finally:
        _PROBING.reset(token)


def probing() -> bool:
    """Whether the current call is a readiness probe (see ``breaker_probe``)."""
    return _PROBING.get()


class CircuitBreaker:
    """Consecutive-failure breaker with a cooldown and a single half-open probe.

    Args:
        name: what it guards (``redis 127.0.0.1:6379``), for logs.
        failures: consecutive failures that open it.
        cooldown_s: how long it stays open before letting one probe through.
    """

    def __init__(
        self, name: str, *, failures: int = 5, cooldown_s: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.failure_threshold = failures
        self.cooldown_s = cooldown_s
        self.rejected = 0
        """Calls refused while open (since the process started)."""
        self.times_opened = 0
        self.total_failures = 0
        """Failures ever recorded: clients compare it to drop connections opened before a failure."""
        self._clock = clock
        self._failures = 0
        self._open_until = 0.0  # 0.0 means closed
        self._listeners: list[Callable[[BreakerEvent], None]] = []

    @property
    def state(self) -> BreakerState:
        if self._open_until == 0.0:
            return "closed"
        return "open" if self._clock() < self._open_until else "half_open"

    @property
    def retry_after(self) -> float:
        """Seconds until the next probe may go through (0 when closed)."""
        return max(0.0, self._open_until - self._clock()) if self._open_until else 0.0

    def allow(self) -> bool:
        """Whether a call may go out now; the first caller after the cooldown becomes the probe."""
        if self._open_until == 0.0:
            return True
        now = self._clock()
        if now >= self._open_until:
            self._open_until = now + self.cooldown_s
            return True
        self.rejected += 1
        self._notify("rejected")
        return False

    def record_success(self) -> None:
        if self._failures or self._open_until:
            was_open = self._open_until != 0.0
            self._failures = 0
            self._open_until = 0.0
            if was_open:
                log.warning("circuit for %s closed: the backend answers again", self.name)
                self._notify("closed")

    def record_failure(self) -> None:
        self.total_failures += 1
        self._failures += 1
        self._notify("failure")
        if self._failures >= self.failure_threshold:
            if self._open_until == 0.0:
                self.times_opened += 1
                log.warning(
                    "circuit for %s opened after %d consecutive failures; failing fast for %.1f s",
                    self.name,
                    self._failures,
                    self.cooldown_s,
                )
                self._notify("opened")
            self._open_until = self._clock() + self.cooldown_s

    def reset(self) -> None:
        """Close the breaker and forget the failures (tests, operator action)."""
        self._failures = 0
        self._open_until = 0.0

    def subscribe(self, listener: Callable[[BreakerEvent], None]) -> Callable[[], None]:
        """Call ``listener(event)`` on every failure, refusal and state change; returns the unsubscriber."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _notify(self, event: BreakerEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a broken metrics hook must never fail the call it reports on
                log.exception("circuit breaker listener failed")
