"""LangGraph's Agent Protocol routes at the root (``/assistants``, ``/threads``, ``/runs``, ``/store``)."""

from __future__ import annotations

from fastapi import APIRouter

from agent_runtime.server.routes.agent_protocol import store

__all__ = ["router"]

router = APIRouter()
router.include_router(store.router)
