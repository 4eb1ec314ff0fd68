"""``/v1/keys``: API keys over HTTP, as LiteLLM proxy users manage virtual keys.

The same ``KeyService`` as ``agent-runtime keys`` (one implementation). An ``admin`` manages the keys
of its own tenant; only a key holding ``platform:admin`` itself may name another ``tenant`` or grant
``platform:admin``. Another tenant's key answers 404, like an unknown one. The secret is in the
answer of the creation only. Changes reach other workers once their cached copy of the key expires
(``api_key_cache_s``); a revocation in this worker applies at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from agent_runtime.errors import PermissionDeniedError
from agent_runtime.scopes import ADMIN, PLATFORM_ADMIN
from agent_runtime.security.record import ApiKey, KeyChanges
from agent_runtime.server.deps import CurrentPrincipal, CurrentRuntime, get_principal, require_scope
from agent_runtime.server.routes._docs import errors
from agent_runtime.server.routes.usage import quotas_of
from agent_runtime.types import Principal

__all__ = ["router"]


async def _admin(principal: Annotated[Principal, Depends(get_principal)]) -> None:
    require_scope(principal, ADMIN)


router = APIRouter(tags=["keys"], dependencies=[Depends(_admin)])
KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="The key id (16 hex characters).")]
TenantQuery = Annotated[
    str | None, Query(pattern=r"^[A-Za-z0-9_.@:\-]{1,200}$", description="`platform:admin` only: another tenant.")
]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(pattern=r"^[A-Za-z0-9_.@:\-]{1,200}$")
    tenant: str | None = Field(default=None, description="`platform:admin` only; default: the caller's tenant.")
    scopes: list[str] = Field(default_factory=list, description="Empty: the defaults (sessions, usage).")
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    daily_tokens: int | None = Field(default=None, ge=0)
    monthly_usd: float | None = Field(default=None, ge=0)
    expires_at: datetime | None = Field(default=None, description="ISO 8601 with a time zone.")
    description: str = Field(default="", max_length=500)


class KeyUpdate(KeyChanges):
    """Only the fields sent change; `null` lifts a limit or the expiry."""

    expires_at: datetime | None = None  # type: ignore[assignment]  # ISO 8601 here, Unix time in the service


def _platform(principal: Principal) -> bool:
    return PLATFORM_ADMIN in principal.scopes  # exactly: admin and * do not imply it


def _tenant(principal: Principal, asked: str | None) -> str:
    if asked is None or asked == principal.tenant:
        return principal.tenant
    if not _platform(principal):
        raise PermissionDeniedError("keys of another tenant need the platform:admin scope")
    return asked


def _may_grant(principal: Principal, scopes: list[str] | None) -> None:
    if scopes and PLATFORM_ADMIN in scopes and not _platform(principal):
        raise PermissionDeniedError("granting platform:admin needs the platform:admin scope")


def _out(key: ApiKey) -> dict[str, Any]:
    data = key.public_dict()
    for name in ("created_at", "expires_at", "revoked_at"):
        value = data.get(name)
        data[name] = datetime.fromtimestamp(float(value), UTC).isoformat() if isinstance(value, int | float) else None
    return data


@router.post("/v1/keys", status_code=201, responses=errors(401, 403, 422, 503), summary="Create an API key")
async def create_key(body: KeyCreate, principal: CurrentPrincipal, runtime: CurrentRuntime) -> JSONResponse:
    _may_grant(principal, body.scopes)
    plaintext, record = await runtime.keys.create_key(
        _tenant(principal, body.tenant),
        body.user,
        body.scopes,
        rpm=body.rpm,
        tpm=body.tpm,
        daily_tokens=body.daily_tokens,
        monthly_usd=body.monthly_usd,
        expires_at=body.expires_at.timestamp() if body.expires_at else None,
        description=body.description,
    )
    return JSONResponse({"key": plaintext, **_out(record)}, status_code=201, headers={"Cache-Control": "no-store"})


@router.get("/v1/keys", responses=errors(401, 403, 422, 503), summary="The tenant's API keys (revoked ones too)")
async def list_keys(principal: CurrentPrincipal, runtime: CurrentRuntime, tenant: TenantQuery = None) -> Any:
    keys = await runtime.keys.list_keys(_tenant(principal, tenant))
    return {"keys": [_out(key) for key in keys]}


async def _key(runtime: Any, principal: Principal, key_id: str, tenant: str | None) -> ApiKey:
    record: ApiKey = await runtime.keys.get_key(key_id, tenant=_tenant(principal, tenant))
    return record


@router.get("/v1/keys/{key_id}", responses=errors(401, 403, 404, 422, 503), summary="One key and its quota spend")
async def get_key(
    key_id: KeyId, principal: CurrentPrincipal, runtime: CurrentRuntime, tenant: TenantQuery = None
) -> Any:
    record = await _key(runtime, principal, key_id, tenant)
    return {**_out(record), "quotas": await quotas_of(runtime, record.to_principal())}


@router.patch("/v1/keys/{key_id}", responses=errors(401, 403, 404, 409, 422, 503), summary="Change a key")
async def update_key(
    key_id: KeyId, body: KeyUpdate, principal: CurrentPrincipal, runtime: CurrentRuntime, tenant: TenantQuery = None
) -> Any:
    _may_grant(principal, body.scopes)
    owner = _tenant(principal, tenant)
    fields = body.model_dump(include=body.model_fields_set)
    if "expires_at" in fields and fields["expires_at"] is not None:
        fields["expires_at"] = fields["expires_at"].timestamp()
    changed = await runtime.keys.update_key(key_id, KeyChanges(**fields), tenant=owner)
    return _out(changed)


@router.delete("/v1/keys/{key_id}", responses=errors(401, 403, 404, 422, 503), summary="Revoke a key (for good)")
async def revoke_key(
    key_id: KeyId, principal: CurrentPrincipal, runtime: CurrentRuntime, tenant: TenantQuery = None
) -> Any:
    return _out(await runtime.keys.revoke_key(key_id, tenant=_tenant(principal, tenant)))
