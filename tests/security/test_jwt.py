"""JWT verification: HS256 and RS256, expiry, issuer, audience, ``alg: none`` and key-type confusion."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from agent_runtime.errors import AuthenticationError, ConfigurationError
from agent_runtime.security.jwt import JwtVerifier

SECRET = "s" * 40
ISS, AUD = "https://issuer.example", "agent-runtime"


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[str, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sub": "alice",
        "tenant": "acme",
        "scope": "agents:run:writer agents:run:analyst",
        "iss": ISS,
        "aud": AUD,
        "exp": int(time.time()) + 86_400,  # computed at collection: must outlive a long suite
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs_verifier() -> JwtVerifier:
    return JwtVerifier(secret=SECRET, issuer=ISS, audience=AUD)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest()) if key else ""
    return f"{signing_input}.{signature}"


def test_hs256_token_gives_a_principal() -> None:
    token = jwt.encode(claims(rpm=5, daily_tokens=1000), SECRET, algorithm="HS256")
    principal = hs_verifier().verify(token)
    assert (principal.tenant, principal.user) == ("acme", "alice")
    assert principal.scopes == frozenset({"agents:run:writer", "agents:run:analyst"})
    assert (principal.rpm, principal.daily_tokens, principal.key_id) == (5, 1000, None)


def test_scopes_as_a_list() -> None:
    token = jwt.encode(claims(scope=None, scopes=["agents:run:*"]), SECRET, algorithm="HS256")
    assert hs_verifier().verify(token).allows("agents:run:searcher")


def test_rs256_token_gives_a_principal(rsa_keys: tuple[str, str]) -> None:
    private_pem, public_pem = rsa_keys
    token = jwt.encode(claims(), private_pem, algorithm="RS256")
    assert JwtVerifier(public_key=public_pem, issuer=ISS, audience=AUD).verify(token).user == "alice"


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (claims(exp=int(time.time()) - 10), "expired"),
        (claims(exp=None), "MissingRequiredClaim"),
        (claims(aud="someone-else"), "audience"),
        (claims(aud=None), "MissingRequiredClaim"),
        (claims(iss="https://evil.example"), "issuer"),
        (claims(tenant=None), "tenant"),
        (claims(sub=None), "MissingRequiredClaim"),
        (claims(scope=42), "scope"),
    ],
    ids=["expired", "no-exp", "wrong-aud", "no-aud", "wrong-iss", "no-tenant", "no-sub", "bad-scope"],
)
def test_bad_claims_are_rejected(payload: dict[str, Any], match: str) -> None:
    with pytest.raises(AuthenticationError, match=match):
        hs_verifier().verify(jwt.encode(payload, SECRET, algorithm="HS256"))


def test_wrong_signature_and_garbage_are_rejected() -> None:
    with pytest.raises(AuthenticationError):
        hs_verifier().verify(jwt.encode(claims(), "x" * 40, algorithm="HS256"))
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    head, _, sig = token.split(".")
    tampered_body = _b64(json.dumps(claims(tenant="other")).encode())
    for bad in (f"{head}.{tampered_body}.{sig}", "a.b.c", "not-a-jwt", token[:-3]):
        with pytest.raises(AuthenticationError):
            hs_verifier().verify(bad)


def test_alg_none_is_refused() -> None:
    for alg in ("none", "None", "NONE"):
        with pytest.raises(AuthenticationError, match="not accepted"):
            hs_verifier().verify(forge({"alg": alg, "typ": "JWT"}, claims(), None))


def test_rs256_public_key_used_as_hmac_secret_is_refused(rsa_keys: tuple[str, str]) -> None:
    """Algorithm confusion: an attacker signs HS256 with the (public) RSA key as the secret."""
    _, public_pem = rsa_keys
    forged = forge({"alg": "HS256", "typ": "JWT"}, claims(), public_pem.encode())
    with pytest.raises(AuthenticationError, match="not accepted"):
        JwtVerifier(public_key=public_pem, issuer=ISS, audience=AUD).verify(forged)


def test_token_with_an_algorithm_we_do_not_accept(rsa_keys: tuple[str, str]) -> None:
    private_pem, _ = rsa_keys
    with pytest.raises(AuthenticationError, match="RS256"):
        hs_verifier().verify(jwt.encode(claims(), private_pem, algorithm="RS256"))
    with pytest.raises(AuthenticationError, match="HS512"):
        hs_verifier().verify(jwt.encode(claims(), "h" * 64, algorithm="HS512"))


def test_wrong_key_types_fail_configuration(rsa_keys: tuple[str, str]) -> None:
    _, public_pem = rsa_keys
    ec_public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(ConfigurationError, match="RSA"):
        JwtVerifier(public_key=ec_public)
    with pytest.raises(ConfigurationError, match="PEM"):
        JwtVerifier(public_key="not a key")
    with pytest.raises(ConfigurationError, match="PEM"):
        JwtVerifier(secret=public_pem)
    with pytest.raises(ConfigurationError, match="32 bytes"):
        JwtVerifier(secret="short")
    with pytest.raises(ConfigurationError):
        JwtVerifier()


@pytest.mark.parametrize("bad", ["100", -5, True, [1], {"n": 1}])
def test_unreadable_limit_claims_are_refused_not_ignored(bad: Any) -> None:
    token = jwt.encode(claims(rpm=bad), SECRET, algorithm="HS256")
    with pytest.raises(AuthenticationError, match="limit claims"):
        hs_verifier().verify(token)
