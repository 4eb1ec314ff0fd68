"""The consumer worker: runs the handlers registered for a group until told to stop.

``agent-runtime consume --group NAME`` builds a bus, a registry (trigger rules and any other
consumers) and runs ``ConsumerRunner(bus, NAME, registry).run()``. Each registered handler gets its
own consumer group ``<group>.<handler name>``, so every handler sees every event it asked for, and
running the same command on N machines shares each handler's events among them. SIGTERM / SIGINT
start a graceful stop: in-flight handlers finish (bounded by ``shutdown_timeout_s``) and are acked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from agent_runtime._redis import check_key_part
from agent_runtime.errors import ValidationError
from agent_runtime.event_bus.base import ConsumerStats, EventBus, Handler, StartFrom, Subscription

__all__ = ["ConsumerRegistry", "ConsumerRunner", "Registration"]

log = logging.getLogger("agent_runtime.event_bus")


@dataclass(frozen=True, kw_only=True)
class Registration:
    """One handler and how it consumes (types or pattern, retries, parallel consumers)."""

    name: str
    handler: Handler
    types: frozenset[str] | None = None
    pattern: str | None = None
    max_attempts: int = 5
    backoff_s: float = 0.2
    concurrency: int = 1
    start: StartFrom = "latest"


@dataclass
class ConsumerRegistry:
    """Named handlers a worker can run; names must be unique and safe in keys and topic names."""

    registrations: dict[str, Registration] = field(default_factory=dict)

    def register(
        self, name: str, handler: Handler, *, types: Iterable[str] | None = None, **options: Any
    ) -> Registration:
        check_key_part(name, "consumer name")
        if name in self.registrations:
            raise ValidationError(f"consumer {name!r} is already registered")
        reg = Registration(name=name, handler=handler, types=frozenset(types) if types else None, **options)
        self.registrations[name] = reg
        return reg

    def handler(self, name: str, **options: Any) -> Callable[[Handler], Handler]:
        """Decorator form of ``register``."""

        def decorate(func: Handler) -> Handler:
            self.register(name, func, **options)
            return func

        return decorate

    def __iter__(self) -> Any:
        return iter(self.registrations.values())

    def __len__(self) -> int:
        return len(self.registrations)


class ConsumerRunner:
    """Subscribes every registration under ``group`` and keeps them running until stopped."""

    def __init__(
        self,
        bus: EventBus,
        group: str,
        registry: ConsumerRegistry,
        *,
        consumer_name: str | None = None,
        shutdown_timeout_s: float = 30.0,
    ) -> None:
        self.bus = bus
        self.group = check_key_part(group, "consumer group")
        self.registry = registry
        self.consumer_name = consumer_name
        self.shutdown_timeout_s = shutdown_timeout_s
        self.subscriptions: dict[str, Subscription] = {}
        self._stop = asyncio.Event()

    def group_of(self, name: str) -> str:
        return f"{self.group}.{name}"

    async def start(self) -> None:
        """Subscribe every registration; on failure, stops what already started and re-raises."""
        if not len(self.registry):
            raise ValidationError(f"no consumers registered for group {self.group!r}")
        try:
            for reg in self.registry:
                self.subscriptions[reg.name] = await self.bus.subscribe(
                    self.group_of(reg.name),
                    reg.handler,
                    types=reg.types,
                    pattern=reg.pattern,
                    consumer_name=self.consumer_name,
                    max_attempts=reg.max_attempts,
                    backoff_s=reg.backoff_s,
                    concurrency=reg.concurrency,
                    start=reg.start,
                )
        except BaseException:
            await self.stop()
            raise
        log.info("consuming group %s with %s", self.group, sorted(self.subscriptions))

    def request_stop(self) -> None:
        """Ask ``run`` to return after a graceful stop (safe from signal handlers)."""
        self._stop.set()

    async def stop(self) -> None:
        """Stop every subscription: in-flight handlers finish, then their events are acked."""
        await asyncio.gather(*(sub.stop(self.shutdown_timeout_s) for sub in self.subscriptions.values()))

    async def run(self, *, install_signals: bool = True) -> None:
        """Start, wait for ``request_stop`` or SIGTERM/SIGINT, stop gracefully, close the bus."""
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, self.request_stop)
                    installed.append(sig)
        try:
            await self.start()
            await self._stop.wait()
        finally:
            await self.stop()
            await self.bus.aclose(self.shutdown_timeout_s)
            for sig in installed:
                loop.remove_signal_handler(sig)

    @property
    def stats(self) -> dict[str, ConsumerStats]:
        return {name: sub.stats for name, sub in self.subscriptions.items()}
