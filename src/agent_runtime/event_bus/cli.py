"""``agent-runtime consume --group NAME``: the event worker process.

Builds the runtime (so triggered runs go through the same executor, middlewares, stores and bus as
the service), registers the trigger rules and runs the consumers until SIGTERM / SIGINT; then
in-flight runs finish, their events are acked, and the bus and stores are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from pathlib import Path

import click

from agent_runtime.cli.group import main, run_sync
from agent_runtime.errors import ConfigurationError
from agent_runtime.settings import Settings, load_settings

__all__ = ["consume"]


@main.command()
@click.option("--group", required=True, help="Consumer group; workers with the same group share the events.")
@click.option(
    "--triggers",
    "triggers_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML/TOML file with a `triggers:` list (default: AGENT_RUNTIME_TRIGGERS_FILE).",
)
@click.option("--tenant", default="default", show_default=True, help="Tenant of rules that name none.")
@click.option("--max-depth", default=3, show_default=True, type=click.IntRange(0, 100), help="Trigger depth limit.")
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 256), help="Parallel runs.")
def consume(group: str, triggers_file: Path | None, tenant: str, max_depth: int, concurrency: int) -> None:
    """Run the event consumers (trigger rules) of GROUP until SIGTERM or SIGINT."""
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    if triggers_file is not None:
        settings = settings.model_copy(update={"triggers_file": triggers_file})
    run_sync(_consume(settings, group, tenant=tenant, max_depth=max_depth, concurrency=concurrency))


async def _consume(settings: Settings, group: str, *, tenant: str, max_depth: int, concurrency: int) -> None:
    from agent_runtime.event_bus.consumer import ConsumerRegistry, ConsumerRunner
    from agent_runtime.event_bus.dedupe import DedupeStore, MemoryDedupe
    from agent_runtime.event_bus.trigger_handler import TriggerHandler, rules_from_settings
    from agent_runtime.runtime import Runtime

    rules = rules_from_settings(settings)
    if not rules:
        raise ConfigurationError("no trigger rules: pass --triggers FILE or set AGENT_RUNTIME_TRIGGERS_FILE")
    runtime = await Runtime.create(settings)
    try:
        bus = runtime.event_bus
        dedupe: DedupeStore = MemoryDedupe()
        if bus.backend == "redis":  # share the marks with every worker of the group
            from agent_runtime.event_bus.redis import RedisDedupe

            dedupe = RedisDedupe(bus.redis, namespace=settings.events.namespace, key_prefix=settings.redis.key_prefix)
        handler = TriggerHandler(runtime.executor, rules, tenant=tenant, max_depth=max_depth, dedupe=dedupe)
        registry = ConsumerRegistry()
        handler.register(registry, concurrency=concurrency)
        runner = ConsumerRunner(bus, group, registry)
        with _stop_signals() as stopping:
            await runner.start()
            names = ", ".join(rule.name for rule in rules)
            click.echo(f"consuming group {group} on the {bus.backend} bus; triggers: {names}", err=True)
            await stopping.wait()
            click.echo("stopping: finishing in-flight runs", err=True)
            await runner.stop()
        await runtime.flush_events(timeout=runner.shutdown_timeout_s)  # the last runs' events go out first
        click.echo(f"stopped: {handler.stats}", err=True)
    finally:
        await runtime.aclose()


@contextlib.contextmanager
def _stop_signals() -> Iterator[asyncio.Event]:
    """An event set by SIGTERM / SIGINT while the block runs (handlers removed afterwards)."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stopping.set)
            installed.append(sig)
    try:
        yield stopping
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
