"""Model price table: USD per million tokens, bundled defaults overridable by a TOML/YAML/JSON file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agent_runtime._files import read_config_file
from agent_runtime.errors import ConfigurationError

__all__ = ["DEFAULT_PRICES", "PRICES_AS_OF", "ModelPrice", "PriceTable"]

PRICES_AS_OF = "2026-11-01"
"""Date the bundled list prices were taken from the providers' public price pages."""


class ModelPrice(BaseModel):
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None


DEFAULT_PRICES: dict[str, ModelPrice] = {
    # The offline model is free in reality; it carries a simulated price so quotas and cost reports
    # can be exercised end to end without a provider. Override it with a price file to zero it.
    "offline": ModelPrice(input_per_mtok=0.15, output_per_mtok=0.60, cached_input_per_mtok=0.075),
    "gpt-4o-mini": ModelPrice(input_per_mtok=0.15, output_per_mtok=0.60, cached_input_per_mtok=0.075),
    "gpt-4o": ModelPrice(input_per_mtok=2.50, output_per_mtok=10.00, cached_input_per_mtok=1.25),
    "gpt-4.1": ModelPrice(input_per_mtok=2.00, output_per_mtok=8.00, cached_input_per_mtok=0.50),
    "gpt-4.1-mini": ModelPrice(input_per_mtok=0.40, output_per_mtok=1.60, cached_input_per_mtok=0.10),
    "claude-sonnet-4": ModelPrice(input_per_mtok=3.00, output_per_mtok=15.00, cached_input_per_mtok=0.30),
    "claude-haiku-4": ModelPrice(input_per_mtok=1.00, output_per_mtok=5.00, cached_input_per_mtok=0.10),
}


class PriceTable:
    """Looks up a model's price by exact name, then by the name without its provider prefix, then by
    the longest known prefix (``gpt-4o-mini-2024-07-18`` -> ``gpt-4o-mini``). Unknown models cost
    ``fallback`` (None: zero, which the spend-anomaly alert catches)."""

    def __init__(self, prices: dict[str, ModelPrice] | None = None, *, fallback: ModelPrice | None = None):
        self.prices = dict(DEFAULT_PRICES if prices is None else prices)
        self.fallback = fallback
        self._cache: dict[str, ModelPrice | None] = {}

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        """Bundled defaults, with entries from ``path`` (``{model: {input_per_mtok, output_per_mtok, ...}}``) on top."""
        table = cls()
        if path is None:
            return table
        try:
            raw = _read_mapping(path)
            for name, entry in raw.items():
                table.prices[str(name)] = ModelPrice.model_validate(entry)
        except (OSError, ValueError, ValidationError) as exc:
            raise ConfigurationError(f"invalid price file {path}: {exc}") from exc
        return table

    def price_for(self, model: str) -> ModelPrice | None:
        if model in self._cache:
            return self._cache[model]
        found = self.prices.get(model)
        if found is None:
            bare = model.split(":", 1)[-1].split("/")[-1]
            found = self.prices.get(bare)
            if found is None:
                candidates = [name for name in self.prices if bare.startswith(name)]
                found = self.prices[max(candidates, key=len)] if candidates else None
            if found is None:  # "offline:fast" is the offline model in another configuration
                found = self.prices.get(model.split(":", 1)[0], self.fallback)
        self._cache[model] = found
        return found

    def cost(self, model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        """USD for one call; cached input tokens (a subset of input tokens) at the cached price."""
        price = self.price_for(model)
        if price is None:
            return 0.0
        cached = min(cached_tokens, input_tokens)
        cached_price = price.cached_input_per_mtok if price.cached_input_per_mtok is not None else price.input_per_mtok
        usd = (input_tokens - cached) * price.input_per_mtok + cached * cached_price
        usd += output_tokens * price.output_per_mtok
        return round(usd / 1_000_000, 10)


def _read_mapping(path: Path) -> dict[str, Any]:
    data = read_config_file(path, "price", ConfigurationError)
    if not isinstance(data, dict):
        raise ValueError("the price file must map model names to prices")
    return data
