"""What every Agent Protocol route shares: strict bodies that name unsupported fields, strict query
strings, and the caller's ownership filter."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, ClassVar

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, model_validator

from agent_runtime.errors import ValidationError
from agent_runtime.scopes import SESSIONS
from agent_runtime.server.deps import CurrentPrincipal, is_admin, require_scope
from agent_runtime.sessions.threads import Owner

__all__ = ["APModel", "CurrentOwner", "only_query", "threads_scope"]


class APModel(BaseModel):
    """A request body: unknown fields are errors, and fields LangGraph defines but agent-runtime does
    not implement (``unsupported``) are refused by name when a client sets them."""

    model_config = ConfigDict(extra="forbid")
    unsupported: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        if isinstance(data, dict):
            used = [name for name in cls.unsupported if data.get(name) not in (None, [], {}, "")]
            if used:
                raise ValueError(f"not supported by agent-runtime: {', '.join(used)}")
            data = {k: v for k, v in data.items() if k not in cls.unsupported}
        return data


def only_query(*allowed: str) -> Callable[[Request], Coroutine[Any, Any, None]]:
    """A dependency refusing query parameters other than ``allowed`` (never silently ignored)."""

    async def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - set(allowed))
        if unknown:
            raise ValidationError(
                f"query parameters not supported here: {', '.join(unknown)}", details={"param": unknown[0]}
            )

    return check


async def threads_scope(principal: CurrentPrincipal) -> None:
    """Threads are sessions: the ``sessions`` scope (403 before anything is looked up)."""
    require_scope(principal, SESSIONS)


async def _owner(principal: CurrentPrincipal) -> Owner:
    return Owner.of(principal, admin=is_admin(principal))


CurrentOwner = Annotated[Owner, Depends(_owner)]
