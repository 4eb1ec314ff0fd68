"""Event bus throughput vs the raw clients, in the same run, on servers this script starts.

    .venv/bin/python benchmarks/bench_event_bus.py [--events 5000] [--kafka-events 10000]

Per backend: publish (one awaited call per event), publish batched (100 per call) and end-to-end
(publish batched -> handler saw every event), against redis-py XADD / XREADGROUP+XACK and aiokafka's
producer / consumer doing the same work with the same batch sizes. Ratio = bus time / raw time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from _servers import local_redis, local_tansu

from agent_runtime.event_bus import Event, EventBus, MemoryEventBus, make_event
from agent_runtime.event_bus.kafka import KafkaEventBus
from agent_runtime.event_bus.redis import RedisEventBus

BATCH = 100


def events(n: int) -> list[Event]:
    return [make_event("tool.called", {"tool": "calculator", "n": i}, run_id=f"run_{i % 64}") for i in range(n)]


async def timed(func: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await func()
    return time.perf_counter() - started


async def bus_publish(bus: EventBus, evs: list[Event]) -> float:
    async def run() -> None:
        for event in evs:
            await bus.publish(event)

    return await timed(run)


async def bus_publish_batched(bus: EventBus, evs: list[Event]) -> float:
    async def run() -> None:
        for i in range(0, len(evs), BATCH):
            await bus.publish_many(evs[i : i + BATCH])

    return await timed(run)


async def bus_end_to_end(bus: EventBus, evs: list[Event]) -> float:
    done = asyncio.Event()
    seen = 0

    async def handler(event: Event) -> None:
        nonlocal seen
        seen += 1
        if seen == len(evs):
            done.set()

    sub = await bus.subscribe(f"bench{uuid.uuid4().hex[:6]}", handler, batch_size=BATCH)

    async def run() -> None:
        await bus_publish_batched(bus, evs)
        await done.wait()

    elapsed = await timed(run)
    await sub.stop()
    if isinstance(bus, MemoryEventBus):
        bus.drop_group(sub.group)
    return elapsed


async def redis_raw(url: str, evs: list[Event]) -> dict[str, float]:
    from agent_runtime._redis import make_redis

    r = make_redis(url)
    stream = f"raw:{uuid.uuid4().hex[:6]}"
    payloads = [{"t": e.type, "e": e.to_json()} for e in evs]  # the raw client publishes the same JSON

    async def publish() -> None:
        for fields in payloads:
            await r.xadd(stream, fields, maxlen=100_000, approximate=True)

    async def publish_batched() -> None:
        for i in range(0, len(payloads), BATCH):
            pipe = r.pipeline(transaction=False)
            for fields in payloads[i : i + BATCH]:
                pipe.xadd(stream, fields, maxlen=100_000, approximate=True)
            await pipe.execute()

    async def end_to_end() -> None:
        await r.xgroup_create(stream, "g", id="$", mkstream=True)

        async def consume() -> None:
            seen = 0
            while seen < len(evs):
                resp = await r.xreadgroup("g", "c", {stream: ">"}, count=BATCH, block=1000)
                for _, entries in resp or ():
                    for _entry_id, fields in entries:
                        Event.model_validate_json(fields["e"])  # a consumer has to parse what it gets
                    await r.xack(stream, "g", *(entry_id for entry_id, _ in entries))
                    seen += len(entries)

        task = asyncio.create_task(consume())
        await publish_batched()
        await task

    out = {"publish": await timed(publish), "publish_batched": await timed(publish_batched)}
    out["end_to_end"] = await timed(end_to_end)
    await r.aclose()
    return out


async def kafka_raw(bootstrap: str, evs: list[Event]) -> dict[str, float]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"raw.{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 4, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    records = [(e.to_json().encode(), (e.run_id or e.id).encode(), [("type", e.type.encode())]) for e in evs]

    async def publish() -> None:
        for value, key, headers in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers)

    async def publish_batched() -> None:
        for i in range(0, len(records), BATCH):
            futs = [await producer.send(topic, v, key=k, headers=h) for v, k, h in records[i : i + BATCH]]
            await asyncio.gather(*futs)

    joined = asyncio.Event()

    class Joined(ConsumerRebalanceListener):  # type: ignore[misc]
        async def on_partitions_revoked(self, revoked: Any) -> None: ...

        async def on_partitions_assigned(self, assigned: Any) -> None:
            joined.set()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id="g", enable_auto_commit=False, auto_offset_reset="latest"
    )
    await consumer.start()
    consumer.subscribe([topic], listener=Joined())
    await joined.wait()
    for tp in consumer.assignment():
        await consumer.position(tp)
    out = {"publish": await timed(publish), "publish_batched": await timed(publish_batched)}

    async def end_to_end() -> None:
        async def consume() -> None:
            seen = 0
            while seen < len(evs):
                batches = await consumer.getmany(timeout_ms=500, max_records=BATCH)
                offsets = {}
                for tp, msgs in batches.items():
                    for msg in msgs:
                        Event.model_validate_json(msg.value)
                    offsets[tp] = msgs[-1].offset + 1
                    seen += len(msgs)
                if offsets:
                    await consumer.commit(offsets)

        task = asyncio.create_task(consume())
        await publish_batched()
        await task

    await consumer.seek_to_end()
    for tp in consumer.assignment():
        await consumer.position(tp)  # resolve the lazy seek now, before the timed publishes start
    out["end_to_end"] = await timed(end_to_end)
    await consumer.stop()
    await producer.stop()
    return out


async def bench_bus(bus: EventBus, evs: list[Event]) -> dict[str, float]:
    out = {"publish": await bus_publish(bus, evs), "publish_batched": await bus_publish_batched(bus, evs)}
    out["end_to_end"] = await bus_end_to_end(bus, evs)
    return out


async def main(n: int, kafka_n: int) -> None:
    rows: list[tuple[str, str, int, float, float | None]] = []

    def add(backend: str, count: int, mine: dict[str, float], raw: dict[str, float] | None) -> None:
        for key in ("publish", "publish_batched", "end_to_end"):
            rows.append((backend, key, count, mine[key], raw[key] if raw else None))

    memory = MemoryEventBus(max_queue=n + 1)
    await bench_bus(memory, events(min(n, 1000)))  # warm-up
    add("memory", n, await bench_bus(memory, events(n)), None)
    await memory.aclose()

    with local_redis() as url:
        await redis_raw(url, events(min(n, 1000)))  # warm-up
        raw = await redis_raw(url, events(n))
        bus = RedisEventBus(url, namespace=f"b{uuid.uuid4().hex[:6]}")
        add("redis", n, await bench_bus(bus, events(n)), raw)
        await bus.aclose()

    with local_tansu() as bootstrap:
        raw = await kafka_raw(bootstrap, events(kafka_n))
        kbus = KafkaEventBus(bootstrap, namespace=f"b{uuid.uuid4().hex[:6]}", idempotent=False)
        await kbus.start()
        add("kafka (Tansu)", kafka_n, await bench_bus(kbus, events(kafka_n)), raw)
        await kbus.aclose()

    print(f"\n`.venv/bin/python {' '.join(sys.argv)}`\n")
    print("| backend | operation | events | bus events/s | raw client events/s | bus time / raw time |")
    print("|---|---|---:|---:|---:|---:|")
    for backend, key, count, mine_s, raw_s in rows:
        raw_cell = f"{count / raw_s:,.0f}" if raw_s else "n/a"
        ratio = f"{mine_s / raw_s:.2f}x" if raw_s else "n/a"
        print(f"| {backend} | {key} | {count} | {count / mine_s:,.0f} | {raw_cell} | {ratio} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--kafka-events", type=int, default=10000)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.kafka_events))
