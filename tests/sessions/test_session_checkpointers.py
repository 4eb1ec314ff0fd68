"""LangGraph's checkpointer conformance suite against the saver of every backend.

The Redis saver is our own (see ``checkpoint_redis.py``): this suite is the proof that it behaves
like LangGraph's savers; it runs against the real redis-server the tests start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from langgraph.checkpoint.conformance import checkpointer_test, validate

from agent_runtime.sessions.base import SessionStore


async def test_conformance(backend: str, store_factory: Callable[[], SessionStore]) -> None:
    @checkpointer_test(name=f"{backend}-saver")
    async def factory() -> AsyncIterator[Any]:
        store = store_factory()
        saver = store.make_checkpointer()
        try:
            yield saver
        finally:
            await store.close_checkpointer(saver)
            await store.aclose()

    report = await validate(factory)
    failures = {cap: r.failures for cap, r in report.results.items() if r.detected and not r.passed}
    assert report.passed_all_base(), failures
    assert report.passed_all(), failures
    assert sum(r.tests_passed for r in report.results.values()) >= 50  # the base suite really ran
