"""Embeddings for the store's semantic index: an offline hashing embedder, or any LangChain one.

``offline`` (the default when an index is switched on without a provider) hashes each word into
one of ``dims`` buckets (signed, L2-normalised): deterministic, free and fast, so texts sharing
words score high; good enough for tests and for "find the memory that mentions X". A provider
string (``openai:text-embedding-3-small``) goes through ``langchain.embeddings.init_embeddings``.
"""

from __future__ import annotations

import hashlib
import math
import re

from langchain_core.embeddings import Embeddings

__all__ = ["HashingEmbeddings", "resolve_embeddings"]

_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbeddings(Embeddings):
    """Bag of words hashed into ``dims`` signed buckets, normalised to unit length."""

    def __init__(self, dims: int = 256) -> None:
        self.dims = dims

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self.dims
        for word in _WORD.findall(text.casefold()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "big") % self.dims
            vector[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


def resolve_embeddings(spec: str, dims: int) -> Embeddings:
    if spec == "offline":
        return HashingEmbeddings(dims)
    from langchain.embeddings import init_embeddings

    return init_embeddings(spec)
