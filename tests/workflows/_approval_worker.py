"""One process of the approval tests: start a gated run, or resume one, on a SQLite data dir.

    python -m tests.workflows._approval_worker DATA_DIR CALLS_FILE start TEXT [TEMPLATE]
    python -m tests.workflows._approval_worker DATA_DIR CALLS_FILE resume ID DECISIONS_JSON

TEMPLATE is ``gated`` (a template that asks before ``publish``, the default) or ``release`` (a
workflow whose second step is ``gated``). Prints the run's result as one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext
from tests.workflows.conftest import PRINCIPAL, register_gated, register_release


async def main(data_dir: str, calls_file: str, action: str, arg: str, extra: str | None) -> None:
    settings = Settings(state_backend="sqlite", data_dir=Path(data_dir))
    runtime = await Runtime.create(settings, with_event_bus=False)
    try:
        register_gated(runtime.factory, Path(calls_file))
        register_release(runtime.factory)
        if action == "start":
            result = await runtime.executor.execute_async(
                AgentContext(input=arg, template=extra or "gated", principal=PRINCIPAL)
            )
        else:
            result = await runtime.executor.resume_async(arg, json.loads(extra or '"approve"'), principal=PRINCIPAL)
        print(result.model_dump_json())
    finally:
        await runtime.aclose()


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(args[0], args[1], args[2], args[3], args[4] if len(args) > 4 else None))
