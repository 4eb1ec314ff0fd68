"""Typed entries of the accounting journal: one per write a finished attempt owes the state backend."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from agent_runtime.errors import ServiceUnavailableError, ValidationError

__all__ = ["ENTRY_KINDS", "EntryKind", "JournalEntry", "JournalFullError"]

EntryKind = Literal["settle", "adjust", "usage"]
ENTRY_KINDS: tuple[EntryKind, ...] = ("settle", "adjust", "usage")


class JournalFullError(ServiceUnavailableError):
    """The journal holds its maximum of unapplied entries: new runs are refused rather than lose more."""

    code = "accounting_journal_full"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """What one attempt owes one backend; ``(run_id, attempt, kind)`` names it in the journal and in
    every backend's applied-marker, so applying it twice counts once."""

    run_id: str
    attempt: int
    kind: EntryKind
    payload: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.run_id or self.attempt < 0 or self.kind not in ENTRY_KINDS:
            raise ValidationError(f"malformed journal entry {self.run_id!r}/{self.attempt}/{self.kind!r}")

    @property
    def op_id(self) -> str:
        """The idempotency key backends record when they apply this entry."""
        return f"{self.run_id}:{self.attempt}:{self.kind}"

    def dumps(self) -> str:
        return json.dumps(self.payload, separators=(",", ":"), sort_keys=True)
