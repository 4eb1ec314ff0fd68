"""The store an agent is compiled with: one object, confined at each call to the run it serves.

Compiled agents are cached and shared by every run, so the store they hold cannot be one tenant's.
The executor puts the run's ``StoreScope`` in the LangGraph config (``STORE_SCOPE_KEY``, a ``__``
key, so it never lands in checkpoint metadata); every store call made inside the run (a tool's
``runtime.store``, a middleware's) reads it from there and goes through that scope's
``TenantStore``. Outside a run, or in a run without a scope, the store refuses to work.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from langgraph.store.base import BaseStore, Op, Result

from agent_runtime.errors import PermissionDeniedError
from agent_runtime.settings import StoreSettings
from agent_runtime.store.confined import StoreScope, TenantStore

__all__ = ["STORE_SCOPE_KEY", "RunScopedStore", "scope_config"]

STORE_SCOPE_KEY = "__agent_runtime_store_scope"


def scope_config(tenant: str, user: str) -> dict[str, Any]:
    """The ``configurable`` entry that confines a run's store calls to ``tenant`` / ``user``."""
    return {STORE_SCOPE_KEY: StoreScope(tenant, user)}


class RunScopedStore(BaseStore):
    """``base`` seen through the ``TenantStore`` of the run that is calling."""

    def __init__(self, base: BaseStore, limits: StoreSettings | None = None) -> None:
        self.base = base
        self.limits = limits or StoreSettings()
        self.supports_ttl = base.supports_ttl

    def view(self) -> TenantStore:
        """The calling run's view; ``PermissionDeniedError`` outside a run that names its scope."""
        from langgraph.config import get_config

        try:
            scope = get_config().get("configurable", {}).get(STORE_SCOPE_KEY)
        except RuntimeError:  # not inside a runnable
            scope = None
        if not isinstance(scope, StoreScope):
            raise PermissionDeniedError("the long-term store is only reachable from inside a run with an owner")
        return TenantStore(self.base, scope, self.limits)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await self.view().abatch(ops)

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        return self.view().batch(ops)
