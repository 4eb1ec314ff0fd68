"""Double-texting: what a run submitted on a busy session does (``multitask_strategy``).

``reject`` (the default, 409 ``session_busy``), ``enqueue`` (runs after the session's active runs, in
order), ``interrupt`` (cancel the active run, keep its progress, then run), ``rollback`` (cancel the
active run, drop its progress, then run).
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = ["DEFAULT_STRATEGY", "STRATEGIES", "MultitaskStrategy"]

MultitaskStrategy = Literal["reject", "enqueue", "interrupt", "rollback"]
STRATEGIES: Final[tuple[str, ...]] = get_args(MultitaskStrategy)
DEFAULT_STRATEGY: Final[MultitaskStrategy] = "reject"
