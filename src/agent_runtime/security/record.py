"""``ApiKey``: the stored record of an API key (what a ``KeyStore`` holds; the key itself never is), and
``KeyChanges``: what an update may change."""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field

from agent_runtime.types import Principal

__all__ = ["ApiKey", "KeyChanges"]


class ApiKey(BaseModel):
    """The stored record of one API key: who it is for, what it may do, its limits; never the key."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    key_hash: str = Field(repr=False)
    tenant: str
    user: str
    scopes: frozenset[str] = frozenset()
    created_at: float = Field(default_factory=time.time)
    expires_at: float | None = None
    """Unix time after which the key is refused; ``None`` means it never expires."""
    revoked_at: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    daily_tokens: int | None = None
    monthly_usd: float | None = None
    description: str = ""

    def is_expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (now if now is not None else time.time()) >= self.expires_at

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_principal(self) -> Principal:
        return Principal(
            tenant=self.tenant,
            user=self.user,
            scopes=self.scopes,
            key_id=self.key_id,
            rpm=self.rpm,
            tpm=self.tpm,
            daily_tokens=self.daily_tokens,
            monthly_usd=self.monthly_usd,
        )

    def public_dict(self) -> dict[str, object]:
        """The record as listings show it: everything except the hash."""
        data = self.model_dump(exclude={"key_hash"})
        data["scopes"] = sorted(self.scopes)
        return data


class KeyChanges(BaseModel):
    """Fields of a key an admin may change; only those set are applied (``None`` lifts a limit)."""

    model_config = ConfigDict(extra="forbid")

    scopes: list[str] | None = None
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    daily_tokens: int | None = Field(default=None, ge=0)
    monthly_usd: float | None = Field(default=None, ge=0)
    expires_at: float | None = None
    """Unix time; ``None`` removes the expiry."""
    description: str | None = Field(default=None, max_length=500)
