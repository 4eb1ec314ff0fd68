"""``agent-runtime worker``: queue workers only, no HTTP, for fleets that scale them apart from the API.

It builds the same runtime as ``serve`` (same settings, same middleware onion, same stores) and runs
its background-run worker and reaper until SIGINT / SIGTERM; then the runs it still executes go back
to the queue (their next claim resumes them from their checkpoint).
"""

from __future__ import annotations

import asyncio
import logging
import signal

import click

from agent_runtime.cli.group import main, run_sync
from agent_runtime.settings import Settings, load_settings

__all__ = ["run_worker", "settings_with_concurrency", "worker"]

log = logging.getLogger("agent_runtime.worker")


def settings_with_concurrency(max_concurrent_runs: int | None) -> Settings:
    """The settings from the environment, with ``--max-concurrent-runs`` over ``runs.max_concurrent_runs``."""
    if max_concurrent_runs is None:
        return load_settings()
    return load_settings(runs={"max_concurrent_runs": max_concurrent_runs})


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Execute queued runs until ``stop`` is set (or SIGINT / SIGTERM arrives)."""
    from agent_runtime.runtime import Runtime

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runtime = await Runtime.create(settings)
    try:
        runtime.start_reaper()
        await runtime.start_dispatcher()
        log.info("run worker started (%d concurrent runs)", settings.runs.max_concurrent_runs)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runtime.aclose()


@main.command()
@click.option(
    "--max-concurrent-runs", default=None, type=click.IntRange(1, 10_000), help="Background runs executed at once."
)
def worker(max_concurrent_runs: int | None) -> None:
    """Execute queued background runs (no HTTP API)."""
    from agent_runtime.orchestration.middleware.logging import configure_json_logging

    settings = settings_with_concurrency(max_concurrent_runs)
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    configure_json_logging(settings.log_level.upper())
    run_sync(run_worker(settings))
