"""The calculator's remembered per-pair prices give exactly what its full path (``_priced``) gives.

``UpstreamCostCalculator.cost`` applies the linear prices it remembered for a provider and model
directly; ``_priced`` works every event out in full (overrides, genai-prices lookups, tiers). Both must
agree on every field — amount to the last digit, currency, source, reason — for any event: known and
unknown models, tiered and time-dependent prices, USD and non-USD overrides, missing, zero and huge
token counts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import genai_prices
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spanledger.billing.costs import UpstreamCostCalculator
from spanledger.billing.costs.upstream import PriceOverride
from spanledger.billing.usage_event import UsageEvent

PAIRS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-2024-08-06"),
    ("OpenAI ", "gpt-4o-mini"),  # provider names are normalised for genai-prices
    ("anthropic", "claude-sonnet-4-5-20250929"),  # tiered above 200k input tokens
    ("anthropic", "claude-sonnet-4-6"),  # a price that starts on a date: never remembered
    ("deepseek", "deepseek-chat"),  # an off-peak price by time of day: never remembered
    ("gcp.gen_ai", "gemini-2.5-flash"),
    ("gcp.gemini", "gemini-2.5-pro"),  # tiered
    (None, "gpt-4o"),  # no provider: genai-prices finds the model on its own
    ("openai", "no-such-model"),  # unknown: no cost
    ("no-such-provider", "gpt-4o"),
    ("acme-llm", "acme-1"),  # known only from an override
    ("openai", "gpt-4o-mini-2024-07-18"),  # overridden in EUR from a date on, genai-prices before it
]
OVERRIDES = [
    PriceOverride("acme-llm", "ACME-1", date(2020, 1, 1), Decimal("1.25"), Decimal("3"), currency="USD"),
    PriceOverride(
        "openai",
        "gpt-4o-mini-2024-07-18",
        date(2026, 6, 1),
        Decimal("0.1"),
        Decimal("0.4"),
        cache_read_per_million=Decimal("0.025"),
        reasoning_per_million=Decimal("0.5"),
        currency="EUR",
    ),
]
TOKENS = st.one_of(st.none(), st.just(0), st.integers(0, 300_000), st.just(10_000_000_000))


@st.composite
def events(draw) -> UsageEvent:
    provider, model = draw(st.sampled_from(PAIRS))
    input_tokens = draw(TOKENS)
    output_tokens = draw(TOKENS)
    cache_read = draw(st.one_of(st.none(), st.integers(0, input_tokens or 0)))
    cache_write = draw(st.one_of(st.none(), st.integers(0, (input_tokens or 0) - (cache_read or 0))))
    reasoning = draw(st.one_of(st.none(), st.integers(0, output_tokens or 0)))
    occurred_at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 365 * 24 * 60)))
    as_response_model = draw(st.booleans())
    return UsageEvent(
        dedupe_key="k",
        occurred_at=occurred_at,
        provider=provider,
        request_model=None if as_response_model else model,
        response_model=model if as_response_model else None,
        input_tokens=input_tokens,
        cache_read_input_tokens=cache_read,
        cache_write_input_tokens=cache_write,
        output_tokens=output_tokens,
        reasoning_tokens=reasoning,
    )


# One calculator across examples, so its remembered prices are used as they are in a long batch.
_REMEMBERING = UpstreamCostCalculator(OVERRIDES)


@settings(max_examples=400, deadline=None)
@given(event=events())
def test_remembered_prices_equal_the_full_path(event):
    remembered = _REMEMBERING.cost(event)
    full = UpstreamCostCalculator(OVERRIDES)
    if event.model is None or (event.input_tokens is None and event.output_tokens is None):
        expected = full.cost(event)  # refused before any price is looked up
    else:
        expected = full._priced(event, event.model)
    assert remembered == expected
    if remembered.amount is not None:
        assert remembered.amount.as_tuple().exponent == -12  # the same rounding point, to the digit


def _event(provider, model, input_tokens=1000, output_tokens=100, at=datetime(2026, 11, 3, 12, tzinfo=UTC)):
    return UsageEvent(
        dedupe_key="k",
        occurred_at=at,
        provider=provider,
        request_model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )


def test_only_time_independent_unoverridden_prices_are_remembered():
    calculator = UpstreamCostCalculator(OVERRIDES)
    for provider, model in PAIRS:
        calculator.cost(_event(provider, model))
    assert set(calculator._fixed_prices) == {
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-2024-08-06"),
        ("OpenAI ", "gpt-4o-mini"),
        ("anthropic", "claude-sonnet-4-5-20250929"),
        ("gcp.gen_ai", "gemini-2.5-flash"),
        ("gcp.gemini", "gemini-2.5-pro"),
        (None, "gpt-4o"),
    }


def test_remembered_prices_are_used_and_agree_with_genai_prices():
    calculator = UpstreamCostCalculator()
    first = calculator.cost(_event("openai", "gpt-4o"))
    assert ("openai", "gpt-4o") in calculator._fixed_prices
    for input_tokens, output_tokens in [(0, 0), (1, 0), (0, 1), (123_456, 7_890), (10_000_000_000, 3)]:
        event = _event("openai", "gpt-4o", input_tokens, output_tokens)
        expected = genai_prices.calc_price(
            genai_prices.Usage(input_tokens=input_tokens, output_tokens=output_tokens),
            model_ref="gpt-4o",
            provider_id="openai",
            genai_request_timestamp=event.occurred_at,
        ).total_price
        assert calculator.cost(event).amount == Decimal(expected).quantize(Decimal("1e-12"))
    assert first.source == calculator.cost(_event("openai", "gpt-4o")).source


def test_a_tiered_price_above_its_first_tier_is_worked_out_in_full():
    calculator = UpstreamCostCalculator()
    below = calculator.cost(_event("gcp.gemini", "gemini-2.5-pro", 1000))
    assert below.amount is not None
    above = _event("gcp.gemini", "gemini-2.5-pro", 250_000)
    assert calculator.cost(above) == UpstreamCostCalculator()._priced(above, "gemini-2.5-pro")
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=250_000, output_tokens=100),
        model_ref="gemini-2.5-pro",
        provider_id="google",
        genai_request_timestamp=above.occurred_at,
    ).total_price
    assert calculator.cost(above).amount == Decimal(expected).quantize(Decimal("1e-12"))


def test_a_new_price_data_snapshot_is_not_served_from_remembered_prices(monkeypatch):
    calculator = UpstreamCostCalculator()
    event = _event("openai", "gpt-4o")
    before = calculator.cost(event)
    assert ("openai", "gpt-4o") in calculator._fixed_prices
    calls = []
    real_priced = calculator._priced

    def counting_priced(event, model):
        calls.append(model)
        return real_priced(event, model)

    monkeypatch.setattr(calculator, "_priced", counting_priced)
    calculator.cost(event)
    assert calls == []  # served from the remembered prices
    other_snapshot = object()
    monkeypatch.setattr(genai_prices.data_snapshot, "get_snapshot", lambda: other_snapshot)
    with pytest.raises(AttributeError):  # the fake snapshot cannot answer: it was really asked
        calculator.cost(event)
    assert calls == ["gpt-4o"]
    monkeypatch.undo()
    assert calculator.cost(event) == before
