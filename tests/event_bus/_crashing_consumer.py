"""A consumer process that takes events and hangs before acking, so the test can SIGKILL it."""

from __future__ import annotations

import asyncio
import sys

from agent_runtime.event_bus import Event
from agent_runtime.event_bus.redis import RedisEventBus


async def main(url: str, namespace: str) -> None:
    bus = RedisEventBus(url, namespace=namespace)

    async def hang(event: Event) -> None:
        print("got", event.id, flush=True)
        await asyncio.Event().wait()

    await bus.subscribe("proc", hang, consumer_name="doomed", batch_size=100)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
