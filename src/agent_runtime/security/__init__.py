"""Authentication material: API keys (hashed at rest) in memory/SQLite/Redis stores, and JWT verification."""

from __future__ import annotations

from agent_runtime.security.base import KeyStore
from agent_runtime.security.jwt import JwtVerifier
from agent_runtime.security.keys import ApiKey, KeyService, generate_key, hash_key, parse_key
from agent_runtime.security.memory import MemoryKeyStore

__all__ = [
    "ApiKey",
    "JwtVerifier",
    "KeyService",
    "KeyStore",
    "MemoryKeyStore",
    "generate_key",
    "hash_key",
    "parse_key",
]
