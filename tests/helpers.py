"""Test doubles shared by several test modules (models and clocks only: backends are always real)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel

from agent_runtime.models.offline import OfflineChatModel


class FlakyModel(OfflineChatModel):
    """The offline model, but the first ``failures`` calls raise ``error()``."""

    failures: int = 0
    calls: int = 0
    error: Callable[[], BaseException] = RuntimeError

    def _fail(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error()

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        self._fail()
        return super()._generate(*args, **kwargs)

    async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
        self._fail()
        return await super()._agenerate(*args, **kwargs)

    async def _astream(self, *args: Any, **kwargs: Any) -> Any:
        self._fail()
        async for chunk in super()._astream(*args, **kwargs):
            yield chunk


def resolver_for(model: BaseChatModel) -> Callable[..., BaseChatModel]:
    def resolve(spec: str, **_: Any) -> BaseChatModel:
        return model

    return resolve


class ProviderRateLimited(Exception):
    """Named like openai.RateLimitError so the executor maps it by name."""


ProviderRateLimited.__name__ = "RateLimitError"


class ManualClock:
    """Wall-clock seconds that move only when a test says so (``clock.advance(120)``). It starts at the
    real time, so what a backend expires by the real clock (Redis key TTLs) stays in the future."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def until(probe: Callable[[], Any], what: str = "the condition", timeout: float = 20.0) -> Any:
    """``probe()``'s value (awaited when it is a coroutine) once truthy; fails the test after ``timeout``.

    The one way tests wait for another task or process: a condition with a deadline, never a bare sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def until_sync(probe: Callable[[], Any], what: str = "the condition", timeout: float = 30.0) -> Any:
    """``until`` for synchronous tests (probing a server process over HTTP)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
