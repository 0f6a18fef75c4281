from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from spanledger.billing.costs import (
    GENAI_PRICES_SOURCE,
    PriceOverride,
    UpstreamCostCalculator,
    genai_prices_provider,
)
from spanledger.billing.pricing import CostPlus, Price, price_usage
from spanledger.billing.usage_event import UsageEvent

AT = datetime(2026, 11, 2, tzinfo=UTC)


def call(model="gpt-4o", provider="openai", **tokens):
    return UsageEvent("k", AT, "acme", provider=provider, response_model=model, **tokens)


def test_gpt_4o_input_and_output_from_genai_prices():
    cost = UpstreamCostCalculator().cost(call(input_tokens=1_000_000, output_tokens=100_000))
    assert cost.amount == D("3.5")  # 2.50 + 0.1 × 10
    assert (cost.currency, cost.source) == ("USD", GENAI_PRICES_SOURCE)


def test_cached_tokens_are_part_of_input_and_priced_at_the_cache_rate():
    # 1M input of which 400K were cache reads: 600K × 2.50/M + 400K × 1.25/M = 1.50 + 0.50
    cost = UpstreamCostCalculator().cost(call(input_tokens=1_000_000, cache_read_input_tokens=400_000))
    assert cost.amount == D("2.000000000000")


def test_cache_writes_are_priced_at_the_write_rate():
    # Claude Sonnet 4.5 below its 200K-token long-context tier: input $3/M, cache write $3.75/M.
    event = call("claude-sonnet-4-5", "anthropic", input_tokens=100_000, cache_write_input_tokens=60_000)
    assert UpstreamCostCalculator().cost(event).amount == D("0.345")  # 40K × 3/M + 60K × 3.75/M


def test_reasoning_tokens_are_part_of_output_and_not_counted_twice():
    plain = UpstreamCostCalculator().cost(call("o3", input_tokens=0, output_tokens=1_000_000))
    reasoning = UpstreamCostCalculator().cost(
        call("o3", input_tokens=0, output_tokens=1_000_000, reasoning_tokens=800_000)
    )
    assert plain.amount == reasoning.amount == D(8)


def test_unknown_model_is_none_and_counted_never_zero():
    calculator = UpstreamCostCalculator()
    for _ in range(3):
        cost = calculator.cost(call("our-own-model-7b", input_tokens=10))
        assert cost.amount is None and cost.source is None
    assert "genai-prices does not know" in cost.reason
    assert calculator.warnings[("openai", "our-own-model-7b")] == 3
    assert calculator.cost(call(None, input_tokens=10)).amount is None
    assert calculator.cost(call()).amount is None  # no token counts at all
    assert calculator.unknown_count == 5


def test_override_wins_and_picks_the_price_valid_at_the_call():
    overrides = [
        PriceOverride("openai", "gpt-4o", date(2026, 1, 1), D("2.00"), D("8.00")),
        PriceOverride(
            "OpenAI", "GPT-4o", date(2026, 11, 1), D("1.00"), D("4.00"), cache_read_per_million=D("0.1")
        ),
        PriceOverride("openai", "gpt-4o", date(2027, 1, 1), D("0.50"), D("2.00")),
    ]
    calculator = UpstreamCostCalculator(overrides)
    cost = calculator.cost(
        call(input_tokens=1_000_000, cache_read_input_tokens=500_000, output_tokens=1_000_000)
    )
    assert cost.amount == D("4.55")  # 0.5 × 1 + 0.5 × 0.1 + 1 × 4
    assert cost.source == "override:OpenAI/GPT-4o@2026-11-01"


def test_override_prices_a_self_hosted_model_with_reasoning_rate():
    override = PriceOverride(
        "vllm", "llama-70b", date(2026, 1, 1), D("0.2"), D("0.6"), reasoning_per_million=D("1")
    )
    cost = UpstreamCostCalculator([override]).cost(
        call("llama-70b", "vllm", input_tokens=1_000_000, output_tokens=1_000_000, reasoning_tokens=500_000)
    )
    assert cost.amount == D("1.0")  # 0.2 + 0.5 × 0.6 + 0.5 × 1


@pytest.mark.parametrize(
    ("otel", "ours"), [("gcp.gen_ai", "google"), ("aws.bedrock", "aws"), ("openai", "openai")]
)
def test_provider_names_map_to_genai_prices(otel, ours):
    assert genai_prices_provider(otel) == ours


def test_gemini_through_the_otel_provider_name():
    cost = UpstreamCostCalculator().cost(call("gemini-2.5-flash", "gcp.gen_ai", input_tokens=1_000_000))
    assert cost.amount is not None and cost.amount > 0


def test_cost_plus_on_a_real_upstream_cost():
    cost = UpstreamCostCalculator().cost(call(input_tokens=1_000_000, output_tokens=0))
    assert cost.amount == D("2.5")
    assert price_usage(Price(CostPlus(D(100))), D(1_000_000), upstream_cost=cost.amount).amount == D("5.00")
