"""The ``Session`` record and the (de)serialization every backend shares.

Backends store sessions as JSON bytes and checkpoints as JSON bytes; decoding lives here so a
corrupt record always raises the same ``BackendError`` naming the session, whatever the backend.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError

from agent_runtime._redis import check_key_part
from agent_runtime.errors import BackendError, InputTooLargeError, ValidationError

__all__ = [
    "IMPLICIT_KEY",
    "MAX_CHOSEN_ID",
    "PENDING_RUN_KEY",
    "RESERVED_METADATA",
    "RUN_ERROR_KEY",
    "ResumedSession",
    "Session",
    "SessionStatus",
    "check_id",
    "decode_checkpoint",
    "decode_session",
    "encode_checkpoint",
    "encode_session",
    "from_ts",
    "now_ts",
    "session_key",
    "split_session_key",
    "try_decode_session",
]

logger = logging.getLogger(__name__)

SessionStatus = Literal["active", "closed", "expired"]
_USER_TAG = ".u." + "0" * 16
_USER_SUFFIX = re.compile(r".+\.u\.[0-9a-f]{16}")
MAX_CHOSEN_ID = 200 - len(_USER_TAG)
"""Longest client-chosen session id: its key part (id plus user tag) must fit the 200-character limit."""


PENDING_RUN_KEY = "pending_run"
"""Session metadata: ``{"run_id", "template"}`` of the run paused for approval in it, until it is answered."""
RUN_ERROR_KEY = "run_error"
"""Session metadata: the error of the session's last run when it failed (a thread's ``error`` status)."""
IMPLICIT_KEY = "implicit"
"""Session metadata: the session was made by a run that may pause (it lives only until the run ends)."""
RESERVED_METADATA = frozenset({PENDING_RUN_KEY, RUN_ERROR_KEY, IMPLICIT_KEY})
"""Metadata keys the runtime keeps in a session: clients can neither set nor see them as thread metadata."""


def now_ts() -> float:
    """Wall-clock seconds: expiry must agree across processes and machines, so not monotonic."""
    return time.time()


def from_ts(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


class Session(BaseModel):
    """One conversation: who owns it, which template it runs, and when it expires."""

    id: str
    tenant: str = "default"
    user_id: str
    template: str | None = None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    ttl_s: float
    """Sliding lifetime: each recorded run pushes ``expires_at`` to now + ``ttl_s``."""
    status: SessionStatus = "active"
    metadata: dict[str, Any] = Field(default_factory=dict)
    message_count: int = 0
    per_user: bool = False
    """Stored in its user's namespace: the id it chose was held by another user of the tenant, and
    refusing it would have told the user so. Every other session is in its tenant's namespace."""

    @property
    def key(self) -> str:
        """Where the session is stored (and its LangGraph thread id)."""
        return session_key(self.tenant, self.id, self.user_id if self.per_user else None)

    @property
    def expires_ts(self) -> float:
        return self.expires_at.timestamp()

    def is_expired(self, now: float | None = None) -> bool:
        return self.expires_ts <= (now_ts() if now is None else now)

    def owned_by(self, tenant: str | None, user_id: str | None) -> bool:
        """``None`` means "do not check" (trusted internal callers)."""
        return (tenant is None or tenant == self.tenant) and (user_id is None or user_id == self.user_id)


class ResumedSession(NamedTuple):
    """What ``resume_session`` returns; unpacks as ``session, checkpoint = ...``."""

    session: Session
    checkpoint: dict[str, Any] | None


def check_id(value: str, what: str = "session id") -> str:
    """Ids end up in Redis keys and SQL rows: the same strict alphabet on every backend."""
    return check_key_part(value, what)


def session_key(tenant: str, session_id: str, user_id: str | None = None) -> str:
    """Ids live in their tenant's namespace (``tenant/id``), client-chosen ones in their user's
    (``tenant/id.u.<16 hex digits of the user's hash>``), so nobody learns by a conflict which ids
    another tenant or user uses. ``/`` is outside the id alphabet, so the tenant part is unambiguous;
    the part after it stays in the id alphabet, as the checkpoint savers' thread ids require."""
    if user_id is None:
        return f"{tenant}/{session_id}"
    return f"{tenant}/{session_id}.u.{hashlib.blake2b(user_id.encode(), digest_size=8).hexdigest()}"


def split_session_key(key: str) -> tuple[str, str]:
    """``(tenant, session_id)`` of a ``session_key`` (a bare id, from before ids were per tenant, is
    read as the default tenant's)."""
    tenant, slash, rest = key.partition("/")
    if not slash:
        return "default", key
    return tenant, rest[: -len(_USER_TAG)] if _USER_SUFFIX.fullmatch(rest) else rest


def encode_session(session: Session) -> bytes:
    return session.model_dump_json().encode()


def decode_session(key: str, raw: bytes | str) -> Session:
    """Parse the session stored under ``key``; anything unreadable is a ``BackendError`` naming it."""
    try:
        session = Session.model_validate_json(raw)
    except (PydanticValidationError, ValueError) as exc:
        raise BackendError(f"stored session {key} is corrupt and cannot be read") from exc
    if session.key != key:
        raise BackendError(f"stored session {key} is corrupt (id mismatch)")
    return session


def try_decode_session(key: str, raw: bytes | str) -> Session | None:
    """For listings and sweeps: a corrupt record is logged and skipped so the others still show."""
    try:
        return decode_session(key, raw)
    except BackendError:
        logger.warning("skipping corrupt stored session %s", key)
        return None


def encode_checkpoint(session_id: str, data: dict[str, Any], max_bytes: int) -> bytes:
    """JSON-encode checkpoint data, refusing non-JSON values and anything over ``max_bytes``."""
    if not isinstance(data, dict):
        raise ValidationError("checkpoint data must be a JSON object")
    try:
        raw = json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"checkpoint data for session {session_id} is not JSON-serializable: {exc}") from exc
    if len(raw) > max_bytes:
        raise InputTooLargeError(
            f"checkpoint for session {session_id} is {len(raw)} bytes, over the limit of {max_bytes}",
            details={"size": len(raw), "limit": max_bytes},
        )
    return raw


def decode_checkpoint(session_id: str, raw: bytes | str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BackendError(f"stored checkpoint of session {session_id} is corrupt and cannot be read") from exc
    if not isinstance(data, dict):
        raise BackendError(f"stored checkpoint of session {session_id} is corrupt (not an object)")
    return data
