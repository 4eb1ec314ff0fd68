"""LangGraph's Agent Protocol at the root (``/assistants``, ``/threads``, ``/runs``, ``/store``): thin
views over the same core as ``/v1``, so ``langgraph-sdk``, Agent Chat UI and Studio work unchanged."""

from __future__ import annotations

from fastapi import APIRouter

from agent_runtime.server.routes.agent_protocol import assistants, crons, info, runs, runs_stream, store, threads

__all__ = ["router"]

router = APIRouter()
router.include_router(info.router)
router.include_router(assistants.router)
router.include_router(threads.router)
router.include_router(runs_stream.router)  # before runs: /threads/{id}/runs/stream is not a run id
router.include_router(runs.router)
router.include_router(crons.router)
router.include_router(store.router)
