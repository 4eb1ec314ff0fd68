"""Stored responses: what ``GET /v1/responses/{id}`` returns and ``previous_response_id`` continues.

They live in the runtime's store backend (memory, SQLite or Redis, so every worker sees them) under
a namespace that no tenant-confined store view reaches (``openai-responses`` + the owner's tenant
and user labels): a response is found by its owner only, and anyone else's id reads as not found.

Bounded: a response expires ``responses.ttl_s`` after it was stored (swept by backends with TTLs,
treated as gone on read by the others), and a user keeps at most ``responses.max_per_user`` of them
(storing one more evicts the oldest). Each holds its whole conversation, which the executor's input
limit (``limits.max_input_chars``) bounds, since the next response sends it all to the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from langgraph.store.base import BaseStore, Item
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from agent_runtime.errors import BackendError, NotFoundError
from agent_runtime.settings import ResponsesSettings
from agent_runtime.store import CountingStore, StoreScope
from agent_runtime.types import ChatTurn, Principal

__all__ = ["ResponseNotFoundError", "ResponseStore", "StoredResponse"]

ROOT = "openai-responses"
_PAGE = 1000


def _expiry(item: Item) -> float:
    return float(item.value.get("expires_at", 0))


class ResponseNotFoundError(NotFoundError):
    code = "response_not_found"


class StoredResponse(BaseModel):
    """A response object as returned, and the conversation up to and including its answer."""

    response: dict[str, Any]
    conversation: list[ChatTurn]
    expires_at: float
    inputs: int = 0
    """How many turns before the answer (the conversation's last turn) were this response's own input."""

    def input_turns(self) -> list[ChatTurn]:
        return self.conversation[-1 - self.inputs : -1] if self.inputs else []


class ResponseStore:
    """The caller's stored responses on ``base``, bounded by ``settings``."""

    def __init__(self, base: BaseStore, settings: ResponsesSettings, clock: Callable[[], float] = time.time) -> None:
        self.base = base
        self.settings = settings
        self.clock = clock

    @staticmethod
    def _namespace(principal: Principal) -> tuple[str, ...]:
        return (ROOT, *StoreScope(principal.tenant, principal.user).labels)

    async def get(self, principal: Principal, response_id: str) -> StoredResponse:
        """The caller's response ``response_id``; anyone else's, or an expired one, is not found."""
        item = await self.base.aget(self._namespace(principal), response_id, refresh_ttl=False)
        try:
            stored = StoredResponse.model_validate(item.value) if item is not None else None
        except PydanticValidationError as exc:
            raise BackendError(f"stored response {response_id!r} is corrupt") from exc
        if stored is None or stored.expires_at <= self.clock():
            raise ResponseNotFoundError(f"response {response_id!r} not found", details={"param": "response_id"})
        return stored

    async def put(
        self, principal: Principal, response_id: str, response: dict[str, Any], turns: list[ChatTurn], inputs: int
    ) -> None:
        """Keep ``response`` with its conversation ``turns`` (the last is the answer, the ``inputs`` before it
        were the request's own input)."""
        namespace = self._namespace(principal)
        await self._make_room(namespace)
        expires_at = self.clock() + self.settings.ttl_s
        stored = StoredResponse(response=response, conversation=turns, expires_at=expires_at, inputs=inputs)
        ttl = self.settings.ttl_s / 60 if self.base.supports_ttl else None  # LangGraph's TTLs are in minutes
        await self.base.aput(namespace, response_id, stored.model_dump(mode="json"), index=False, ttl=ttl)

    async def delete(self, principal: Principal, response_id: str) -> None:
        await self.get(principal, response_id)
        await self.base.adelete(self._namespace(principal), response_id)

    async def _make_room(self, namespace: tuple[str, ...]) -> None:
        """Below ``max_per_user`` before one more is stored: expired ones go first, then the oldest."""
        limit = self.settings.max_per_user
        if not isinstance(self.base, CountingStore) or await self.base.acount_items(namespace) < limit:
            return
        items = await self.base.asearch(namespace, limit=_PAGE, refresh_ttl=False)
        items.sort(key=_expiry)  # every one lives as long: the first to expire is the oldest
        expired = sum(1 for item in items if _expiry(item) <= self.clock())
        for item in items[: max(1, expired, len(items) - limit + 1)]:
            await self.base.adelete(namespace, item.key)
