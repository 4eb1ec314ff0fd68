"""LangGraph's checkpointer conformance suite against the saver of every backend.

The Redis saver is our own (see ``checkpoint_redis.py``): this suite is the proof that it behaves
like LangGraph's savers; it runs against the real redis-server the tests start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate

from tests.sessions.conftest import BACKENDS, make_store


async def test_conformance(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("redis_url") if backend == "redis" else None

    @checkpointer_test(name=f"{backend}-saver")
    async def factory() -> AsyncIterator[Any]:
        store = make_store(backend, tmp_path, url)
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


_ = BACKENDS
