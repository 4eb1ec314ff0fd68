"""Test doubles shared by several test modules (models only: backends are always real)."""

from __future__ import annotations

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
