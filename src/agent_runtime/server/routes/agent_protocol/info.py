"""``GET /info`` and ``GET /ok``: what LangGraph's clients (Studio, Agent Chat UI) probe before connecting."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(tags=["agent protocol: server"])


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return None


@router.get("/info", summary="Server version and capabilities (no credentials needed, like LangGraph's)")
async def info() -> dict[str, Any]:
    return {
        "version": _version("agent-runtime"),
        "langgraph_py_version": _version("langgraph"),
        "flags": {"assistants": True, "crons": False, "langsmith": False, "langsmith_tracing_replicas": False},
        "host": {
            "kind": "self-hosted",
            "project_id": None,
            "host_revision_id": None,
            "revision_id": None,
            "tenant_id": None,
        },
    }


@router.get("/ok", summary="Liveness, as LangGraph's server answers it")
async def ok() -> dict[str, bool]:
    return {"ok": True}
