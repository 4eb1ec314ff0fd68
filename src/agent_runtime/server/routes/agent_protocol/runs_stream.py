"""Agent Protocol runs stream routes (being built: see issue 17)."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(tags=["agent protocol: runs stream"])
