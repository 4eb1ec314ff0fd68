"""JWT bearer tokens (PyJWT): HS256 with a shared secret, RS256 with a public key.

The accepted algorithm list is fixed by the configuration, never taken from the token: ``alg: none``
and algorithm confusion (an RS256 public key used as an HS256 secret) are refused. ``exp`` is
required; ``iss`` and ``aud`` are required and checked when configured.

Claims: ``sub`` is the user, ``tenant`` (configurable) the tenant, scopes come from ``scope``
(space separated, OAuth style) or ``scopes`` (list); optional ``rpm``, ``tpm``, ``daily_tokens``,
``monthly_usd`` carry limits like an API key's.
"""

from __future__ import annotations

from typing import Any

import jwt as pyjwt

from agent_runtime._redis import check_key_part
from agent_runtime.errors import AuthenticationError, ConfigurationError, ValidationError
from agent_runtime.types import Principal

__all__ = ["JwtVerifier"]

_LIMIT_CLAIMS = ("rpm", "tpm", "daily_tokens", "monthly_usd")


class JwtVerifier:
    """Turns a signed token into a ``Principal``.

    Args:
        secret: HS256 shared secret (at least 32 bytes).
        public_key: RS256 public key in PEM form.
        issuer: required ``iss`` value, if set.
        audience: required ``aud`` value, if set.
        tenant_claim: claim that names the tenant.
        leeway_s: clock skew tolerated on ``exp``/``nbf``/``iat``.
    """

    def __init__(
        self,
        *,
        secret: str | None = None,
        public_key: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        tenant_claim: str = "tenant",
        leeway_s: float = 0.0,
    ) -> None:
        self._keys: dict[str, Any] = {}
        if secret:
            if len(secret.encode()) < 32:
                raise ConfigurationError("jwt_secret must be at least 32 bytes for HS256")
            if "-----BEGIN" in secret:
                raise ConfigurationError("jwt_secret looks like a PEM key; use jwt_public_key for RS256")
            self._keys["HS256"] = secret
        if public_key:
            from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            try:
                loaded = load_pem_public_key(public_key.encode())
            except ValueError as exc:
                raise ConfigurationError(f"jwt_public_key is not a PEM public key: {exc}") from exc
            if not isinstance(loaded, RSAPublicKey):
                raise ConfigurationError("jwt_public_key must be an RSA public key for RS256")
            self._keys["RS256"] = loaded
        if not self._keys:
            raise ConfigurationError("JWT verification needs jwt_secret (HS256) or jwt_public_key (RS256)")
        self.issuer = issuer
        self.audience = audience
        self.tenant_claim = tenant_claim
        self.leeway_s = leeway_s

    @property
    def algorithms(self) -> list[str]:
        return sorted(self._keys)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token.

        Raises:
            AuthenticationError: bad signature, wrong algorithm, expired, wrong issuer/audience,
                or missing ``sub``/tenant claims.
        """
        try:
            alg = pyjwt.get_unverified_header(token).get("alg")
        except (pyjwt.PyJWTError, UnicodeError) as exc:  # a str token may hold what UTF-8 cannot encode
            raise AuthenticationError("invalid token: malformed") from exc
        if not isinstance(alg, str) or alg not in self._keys:
            raise AuthenticationError(f"invalid token: algorithm {alg!r} not accepted")
        required = ["exp", "sub"] + (["iss"] if self.issuer else []) + (["aud"] if self.audience else [])
        try:
            claims: dict[str, Any] = pyjwt.decode(
                token,
                self._keys[alg],
                algorithms=[alg],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_s,
                options={"require": required, "verify_aud": self.audience is not None},
            )
        except pyjwt.ExpiredSignatureError as exc:
            raise AuthenticationError("invalid token: expired") from exc
        except pyjwt.InvalidAudienceError as exc:
            raise AuthenticationError("invalid token: wrong audience") from exc
        except pyjwt.InvalidIssuerError as exc:
            raise AuthenticationError("invalid token: wrong issuer") from exc
        except pyjwt.PyJWTError as exc:
            raise AuthenticationError(f"invalid token: {type(exc).__name__}") from exc
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        tenant, user = claims.get(self.tenant_claim), claims.get("sub")
        if not isinstance(tenant, str) or not tenant or not isinstance(user, str) or not user:
            raise AuthenticationError(f"invalid token: needs string 'sub' and '{self.tenant_claim}' claims")
        try:  # they become parts of storage keys: refuse them here (401), not deep inside a backend
            check_key_part(tenant, self.tenant_claim)
            check_key_part(user, "sub")
        except ValidationError as exc:
            raise AuthenticationError(f"invalid token: {exc.message}") from exc
        raw_scopes = claims.get("scopes", claims.get("scope", ""))
        if isinstance(raw_scopes, str):
            scopes = frozenset(raw_scopes.split())
        elif isinstance(raw_scopes, list) and all(isinstance(s, str) for s in raw_scopes):
            scopes = frozenset(raw_scopes)
        else:
            raise AuthenticationError("invalid token: 'scope' must be a string or 'scopes' a list of strings")
        limits = {name: claims[name] for name in _LIMIT_CLAIMS if claims.get(name) is not None}
        bad = [n for n, v in limits.items() if isinstance(v, bool) or not isinstance(v, int | float) or v < 0]
        if bad:  # a limit that cannot be read must not silently become "no limit"
            raise AuthenticationError(f"invalid token: limit claims {bad} must be non-negative numbers")
        try:
            return Principal(tenant=tenant, user=user, scopes=scopes, **limits)
        except ValueError as exc:
            raise AuthenticationError("invalid token: bad limit claims") from exc
