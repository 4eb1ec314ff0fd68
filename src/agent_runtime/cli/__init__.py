"""``agent-runtime``: serve, run, templates, keys, usage, runs, crons, worker, migrate, resume, consume.

Commands and flags are an outside contract (scripts rely on them): add, never rename. ``group`` holds
the command group; each module of this package adds its commands to it when imported here.
"""

from __future__ import annotations

import contextlib
import importlib

from agent_runtime.cli import admin, commands, crons, migrate, runs, worker, workflows
from agent_runtime.cli.group import main

__all__ = ["main"]

_COMMAND_MODULES = (admin, commands, crons, migrate, runs, worker, workflows)

with contextlib.suppress(ImportError):  # the event bus extra registers ``consume``
    importlib.import_module("agent_runtime.event_bus.cli")
