"""The cached per-token prices give exactly what genai-prices computes call by call."""

from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spanledger.billing.costs import UpstreamCostCalculator
from spanledger.billing.costs.upstream import genai_prices_provider
from spanledger.billing.usage_event import UsageEvent

MODELS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
    ("gcp.gemini", "gemini-2.5-flash"),
    ("gcp.gemini", "gemini-2.5-pro"),  # tiered above 200k input tokens: linear below, call by call above
    ("openai", "text-embedding-3-small"),
]
AT = datetime(2026, 11, 15, 12, tzinfo=UTC)


@st.composite
def usages(draw):
    input_tokens = draw(st.integers(0, 2_000_000))
    cache_read = draw(st.integers(0, input_tokens))
    cache_write = draw(st.integers(0, input_tokens - cache_read))
    output = draw(st.integers(0, 200_000))
    reasoning = draw(st.integers(0, output))
    return input_tokens, cache_read, cache_write, output, reasoning


@settings(max_examples=150, deadline=None)
@given(model=st.sampled_from(MODELS), usage=usages())
def test_calculator_equals_genai_prices_exactly(model, usage):
    _assert_calculator_equals_genai_prices(model, usage)


def _assert_calculator_equals_genai_prices(model, usage):
    provider, name = model
    input_tokens, cache_read, cache_write, output, reasoning = usage
    event = UsageEvent(
        dedupe_key="k",
        occurred_at=AT,
        provider=provider,
        request_model=name,
        input_tokens=input_tokens,
        cache_read_input_tokens=cache_read,
        cache_write_input_tokens=cache_write,
        output_tokens=output,
        reasoning_tokens=reasoning,
    )
    expected = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=input_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            output_tokens=output,
            output_reasoning_tokens=reasoning,
        ),
        model_ref=name,
        provider_id=genai_prices_provider(provider),
        genai_request_timestamp=AT,
    ).total_price
    calculator = _CALCULATOR
    assert calculator.cost(event).amount == Decimal(expected).quantize(Decimal("1e-12"))


_CALCULATOR = UpstreamCostCalculator()


def test_gpt_4o_per_token_prices_are_read_from_genai_prices():
    event = UsageEvent(
        dedupe_key="k",
        occurred_at=AT,
        provider="openai",
        request_model="gpt-4o",
        input_tokens=1_000_000,
        cache_read_input_tokens=400_000,
        output_tokens=100_000,
    )
    # 600k uncached at $2.50/M + 400k cached at $1.25/M + 100k output at $10/M
    assert UpstreamCostCalculator().cost(event).amount == Decimal("3.000000000000")


@pytest.mark.parametrize("model", [("anthropic", "claude-sonnet-4-5"), ("gcp.gemini", "gemini-2.5-pro")])
@pytest.mark.parametrize("input_tokens", [0, 1, 199_999, 200_000, 200_001, 1_000_000])
def test_tiered_models_agree_on_both_sides_of_the_first_tier(model, input_tokens):
    # genai-prices switches every token to the tier price once input exceeds the start (strictly).
    _assert_calculator_equals_genai_prices(
        model, (input_tokens, input_tokens // 3, input_tokens // 5, 4321, 321)
    )
