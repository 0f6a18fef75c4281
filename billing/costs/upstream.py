"""Upstream cost: what the provider charged the AI product for one call (pure, offline).

Prices come from the ``genai-prices`` package (bundled data, no network) unless a user-supplied
:class:`PriceOverride` for the provider and model, valid at the call's time, wins (negotiated rates,
self-hosted models). Token mapping, exact:

==========================  ========================================================================
genai-prices ``Usage``      from our :class:`~spanledger.billing.usage_event.UsageEvent`
==========================  ========================================================================
``input_tokens``            ``input_tokens`` (both *include* cached tokens, so passed unchanged)
``cache_read_tokens``       ``cache_read_input_tokens``
``cache_write_tokens``      ``cache_write_input_tokens``
``output_tokens``           ``output_tokens`` (includes reasoning, as providers bill it)
``output_reasoning_tokens`` ``reasoning_tokens`` (a part of output, never added twice)
==========================  ========================================================================

An event without a model or token counts, or for a model neither source knows, gets ``None`` — an
unknown cost, never 0 — and :class:`UpstreamCostCalculator` counts a warning for it, so margins can
say how much usage they could not cost. Each result names its ``source`` (``genai-prices 0.2.3`` or
``override:<provider>/<model>@<date>``), stored on the event so an invoice can be reproduced later.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import genai_prices

from spanledger.billing.pricing import InvalidPriceError, validate_unit_price
from spanledger.billing.usage_event import UsageEvent

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

logger = logging.getLogger(__name__)

#: Costs are stored with 12 decimal places (the ``ExactDecimal`` columns).
COST_PLACES = 12
_QUANTUM = Decimal(1).scaleb(-COST_PLACES)
_MILLION = Decimal(1_000_000)

GENAI_PRICES_SOURCE = f"genai-prices {genai_prices.__version__}"

#: OpenTelemetry ``gen_ai.provider.name`` values (and older ``gen_ai.system`` ones) → genai-prices ids.
PROVIDER_ALIASES: dict[str, str] = {
    "gcp.gen_ai": "google",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "vertex_ai": "google",
    "gemini": "google",
    "aws.bedrock": "aws",
    "bedrock": "aws",
    "az.ai.openai": "azure",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
    "xai": "x-ai",
}


def genai_prices_provider(provider: str | None) -> str | None:
    """The genai-prices provider id for an OpenTelemetry provider name (``None`` stays ``None``)."""
    if provider is None:
        return None
    key = provider.strip().lower()
    return PROVIDER_ALIASES.get(key, key)


@dataclass(frozen=True, slots=True)
class UpstreamCost:
    """A call's cost in ``currency`` (``amount`` ``None``: unknown) and where the price came from."""

    amount: Decimal | None
    currency: str | None
    source: str | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """User prices per million tokens for ``provider``/``model`` from ``valid_from`` on.

    Cache reads and writes default to the input price and reasoning to the output price when not given.
    """

    provider: str
    model: str
    valid_from: date
    input_per_million: Decimal
    output_per_million: Decimal
    cache_read_per_million: Decimal | None = None
    cache_write_per_million: Decimal | None = None
    reasoning_per_million: Decimal | None = None
    currency: str = "USD"

    def __post_init__(self) -> None:
        for name in ("input_per_million", "output_per_million"):
            object.__setattr__(self, name, validate_unit_price(getattr(self, name), name))
        for name in ("cache_read_per_million", "cache_write_per_million", "reasoning_per_million"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, validate_unit_price(getattr(self, name), name))
        if not self.provider or not self.model:
            raise InvalidPriceError("a price override needs a provider and a model")

    @property
    def source(self) -> str:
        return f"override:{self.provider}/{self.model}@{self.valid_from.isoformat()}"


def override_cost(override: PriceOverride, event: UsageEvent) -> Decimal:
    """The exact cost of ``event`` under ``override`` (cached tokens are part of ``input_tokens``)."""
    input_tokens = Decimal(event.input_tokens or 0)
    cache_read = Decimal(event.cache_read_input_tokens or 0)
    cache_write = Decimal(event.cache_write_input_tokens or 0)
    output_tokens = Decimal(event.output_tokens or 0)
    reasoning = Decimal(event.reasoning_tokens or 0)
    read_price = override.cache_read_per_million
    write_price = override.cache_write_per_million
    reasoning_price = override.reasoning_per_million
    total = (
        (input_tokens - cache_read - cache_write) * override.input_per_million
        + cache_read * (override.input_per_million if read_price is None else read_price)
        + cache_write * (override.input_per_million if write_price is None else write_price)
        + (output_tokens - reasoning) * override.output_per_million
        + reasoning * (override.output_per_million if reasoning_price is None else reasoning_price)
    )
    return total / _MILLION


#: Per-token prices by (provider, model, genai-prices price object); the price objects belong to the
#: bundled data snapshot, which lives as long as the process, so the cache never goes stale.
_LINEAR_PRICES: dict[tuple[str | None, str, int], _LinearPrices | None] = {}


#: genai-prices' model entries by (snapshot, model, provider id): finding one matches the model name
#: against every provider's patterns, and the answer only changes with the price data snapshot.
_MODEL_INFO: dict[tuple[int, str, str | None], genai_prices.types.ModelInfo] = {}


def _model_info(model: str, provider_id: str | None) -> genai_prices.types.ModelInfo:
    """genai-prices' entry for ``model`` (raises ``LookupError`` when it knows none)."""
    snapshot = genai_prices.data_snapshot.get_snapshot()
    key = (id(snapshot), model, provider_id)
    info = _MODEL_INFO.get(key)
    if info is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, info = snapshot.find_provider_model(model, None, provider_id, None)
        _MODEL_INFO[key] = info
    return info


def _usage_of(event: UsageEvent) -> genai_prices.Usage:
    return genai_prices.Usage(
        input_tokens=event.input_tokens or 0,
        cache_read_tokens=event.cache_read_input_tokens or 0,
        cache_write_tokens=event.cache_write_input_tokens or 0,
        output_tokens=event.output_tokens or 0,
        output_reasoning_tokens=event.reasoning_tokens or 0,
    )


def _calc_total(event: UsageEvent, model: str, provider_id: str | None, usage: genai_prices.Usage) -> Decimal:
    calculation = genai_prices.calc_price(
        usage, model_ref=model, provider_id=provider_id, genai_request_timestamp=event.occurred_at
    )
    return Decimal(calculation.total_price)


@dataclass(frozen=True, slots=True)
class _LinearPrices:
    """USD per million tokens of each kind (and per call), read from genai-prices for one model.

    ``up_to_input_tokens`` bounds where they hold: a tiered price switches *every* token to the tier's
    rate once the input count exceeds the tier's start, so below the first start the cost is linear in
    the base prices, and above it genai-prices is asked call by call. ``None``: linear everywhere.
    """

    per_call: Decimal
    uncached_input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal
    reasoning: Decimal
    up_to_input_tokens: int | None = None

    @classmethod
    def probe(
        cls, model: str, provider_id: str | None, at: datetime, up_to_input_tokens: int | None = None
    ) -> _LinearPrices:
        probe_event = UsageEvent(dedupe_key="probe", occurred_at=at)

        def price(**tokens: int) -> Decimal:
            return _calc_total(probe_event, model, provider_id, genai_prices.Usage(**tokens))

        million = 1_000_000
        # Input probes stay at or below the first tier start; a power of ten keeps the scaling exact.
        sample = million if up_to_input_tokens is None else _power_of_ten_at_most(up_to_input_tokens)
        scale = million // sample
        base = price()
        return cls(
            per_call=base,
            uncached_input=(price(input_tokens=sample) - base) * scale,
            cache_read=(price(input_tokens=sample, cache_read_tokens=sample) - base) * scale,
            cache_write=(price(input_tokens=sample, cache_write_tokens=sample) - base) * scale,
            output=price(output_tokens=million) - base,
            reasoning=price(output_tokens=million, output_reasoning_tokens=million) - base,
            up_to_input_tokens=up_to_input_tokens,
        )

    def applies_to(self, event: UsageEvent) -> bool:
        limit = self.up_to_input_tokens
        return limit is None or (event.input_tokens or 0) <= limit

    def cost(self, event: UsageEvent) -> Decimal:
        cache_read = event.cache_read_input_tokens or 0
        cache_write = event.cache_write_input_tokens or 0
        reasoning = event.reasoning_tokens or 0
        per_million = (
            ((event.input_tokens or 0) - cache_read - cache_write) * self.uncached_input
            + cache_read * self.cache_read
            + cache_write * self.cache_write
            + ((event.output_tokens or 0) - reasoning) * self.output
            + reasoning * self.reasoning
        )
        return self.per_call + per_million / _MILLION


def _power_of_ten_at_most(limit: int) -> int:
    power = 1
    while power * 10 <= min(limit, 1_000_000):
        power *= 10
    return power


def _first_tier_start(model_price: object) -> int | None:
    """The lowest tier start among a model price's tiered prices (``None``: it has no tiers)."""
    tiered = [v for v in vars(model_price).values() if isinstance(v, genai_prices.types.TieredPrices)]
    if not tiered:
        return None
    return min((tier.start for value in tiered for tier in value.tiers), default=_NO_TIER_REACHED)


#: A tiered price with an empty tier list never leaves its base price.
_NO_TIER_REACHED = 2**63


def _normalise(name: str) -> str:
    return name.strip().lower()


class UpstreamCostCalculator:
    """Prices events: overrides first, then genai-prices; counts the events it could not price.

    ``warnings`` counts unknown costs by ``(provider, model)``; each pair is logged once.
    """

    def __init__(self, overrides: Iterable[PriceOverride] = ()) -> None:
        self._overrides: dict[tuple[str, str], list[PriceOverride]] = {}
        for override in overrides:
            key = (_normalise(override.provider), _normalise(override.model))
            self._overrides.setdefault(key, []).append(override)
        for entries in self._overrides.values():
            entries.sort(key=lambda o: o.valid_from)
        #: Per (event provider, model) as events name them: the linear prices that are the whole
        #: answer for the pair, with the genai-prices data snapshot they were read from (see _priced).
        self._fixed_prices: dict[tuple[str | None, str], tuple[object, _LinearPrices]] = {}
        self.warnings: Counter[tuple[str | None, str | None]] = Counter()

    @property
    def unknown_count(self) -> int:
        """How many events got an unknown (``None``) cost so far."""
        return sum(self.warnings.values())

    def find_override(self, provider: str | None, model: str | None, at: datetime) -> PriceOverride | None:
        """The override valid at ``at`` for ``provider``/``model`` (latest ``valid_from`` wins)."""
        if provider is None or model is None:
            return None
        candidates = self._overrides.get((_normalise(provider), _normalise(model)), [])
        valid = [o for o in candidates if o.valid_from <= at.date()]
        return valid[-1] if valid else None

    def cost(self, event: UsageEvent) -> UpstreamCost:
        """The upstream cost of one event (never raises for unknown models or missing counts)."""
        model = event.model
        if model is None:
            return self._unknown(event, "the event names no model")
        if event.input_tokens is None and event.output_tokens is None:
            return self._unknown(event, "the event reports no token counts")
        fixed = self._fixed_prices.get((event.provider, model))
        if fixed is not None and fixed[0] is genai_prices.data_snapshot.get_snapshot():
            linear = fixed[1]
            limit = linear.up_to_input_tokens
            if limit is None or (event.input_tokens or 0) <= limit:
                try:
                    amount = linear.cost(event)
                except (LookupError, ValueError) as exc:  # pragma: no cover - as in _priced, never seen
                    return self._unknown(event, f"genai-prices does not know it ({exc})")
                return UpstreamCost(amount.quantize(_QUANTUM), "USD", GENAI_PRICES_SOURCE)
        return self._priced(event, model)

    def _priced(self, event: UsageEvent, model: str) -> UpstreamCost:
        """:meth:`cost` of an event that names a model and a token count, worked out in full.

        When the answer for the event's provider and model can only ever be "genai-prices' linear
        prices" — no override names the pair and its genai-prices price does not depend on the time —
        those prices are remembered for the pair (with the data snapshot they came from), and
        :meth:`cost` applies them directly to the pair's next events below the first tier start: the
        same arithmetic as here, without the lookups. ``tests/billing/test_upstream_costs_fixed.py``
        checks both agree.
        """
        override = self.find_override(event.provider, model, event.occurred_at)
        if override is not None:
            amount = override_cost(override, event).quantize(_QUANTUM)
            return UpstreamCost(amount, override.currency, override.source)
        provider_id = genai_prices_provider(event.provider)
        try:
            linear, time_independent = self._linear_prices(model, provider_id, event.occurred_at)
            if linear is not None and linear.applies_to(event):
                amount = linear.cost(event)
                if time_independent and not self._overridden(event):
                    snapshot = genai_prices.data_snapshot.get_snapshot()
                    self._fixed_prices[(event.provider, model)] = (snapshot, linear)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    amount = Decimal(_calc_total(event, model, provider_id, _usage_of(event)))
        except (LookupError, ValueError) as exc:
            return self._unknown(event, f"genai-prices does not know it ({exc})")
        return UpstreamCost(amount.quantize(_QUANTUM), "USD", GENAI_PRICES_SOURCE)

    def _overridden(self, event: UsageEvent) -> bool:
        """Whether any override (valid at any time) names the event's provider and model."""
        if event.provider is None or event.model is None:
            return False
        return (_normalise(event.provider), _normalise(event.model)) in self._overrides

    def _linear_prices(
        self, model: str, provider_id: str | None, at: datetime
    ) -> tuple[_LinearPrices | None, bool]:
        """Per-token prices of a model's genai-prices price at ``at`` (``None``: it has none), and
        whether that price holds at every time (genai-prices knows no other price for the model).

        genai-prices resolves units and validates coverage on every call (about a millisecond), the
        bulk of ingest time. Below its first tier start (everywhere, without tiers) a price is linear in
        each token kind, so the coefficients are read once, by pricing a round number of tokens of
        each kind through genai-prices itself, and reused;
        ``tests/billing/test_upstream_costs_linear.py`` checks both paths agree exactly.
        """
        info = _model_info(model, provider_id)
        time_independent = isinstance(info.prices, genai_prices.types.ModelPrice)
        model_price = info.get_prices(at)
        key = (provider_id, model.lower(), id(model_price))
        if key in _LINEAR_PRICES:
            return _LINEAR_PRICES[key], time_independent
        first_tier_start = _first_tier_start(model_price)
        linear: _LinearPrices | None = None
        if first_tier_start is None or first_tier_start >= 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                linear = _LinearPrices.probe(model, provider_id, at, first_tier_start)
        _LINEAR_PRICES[key] = linear
        return linear, time_independent

    def _unknown(self, event: UsageEvent, reason: str) -> UpstreamCost:
        key = (event.provider, event.model)
        if key not in self.warnings:
            logger.warning("no upstream cost for provider %s model %s: %s", key[0], key[1], reason)
        self.warnings[key] += 1
        return UpstreamCost(None, None, None, reason)
