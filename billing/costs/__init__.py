"""Upstream costs: the genai-prices adapter with user overrides (pure) and their storage service."""

from spanledger.billing.costs.upstream import (
    COST_PLACES,
    GENAI_PRICES_SOURCE,
    PROVIDER_ALIASES,
    PriceOverride,
    UpstreamCost,
    UpstreamCostCalculator,
    genai_prices_provider,
    override_cost,
)

__all__ = [
    "COST_PLACES",
    "GENAI_PRICES_SOURCE",
    "PROVIDER_ALIASES",
    "PriceOverride",
    "UpstreamCost",
    "UpstreamCostCalculator",
    "genai_prices_provider",
    "override_cost",
]
