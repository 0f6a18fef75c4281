from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spanledger.billing.errors import ConfigurationError
from spanledger.billing.pricing import (
    CostPlus,
    Graduated,
    InvalidPriceError,
    Package,
    PerUnit,
    Price,
    Tier,
    Volume,
    price_usage,
    round_line_amount,
)

GRADUATED_EXAMPLE = Graduated(
    (
        Tier(D(100_000), D("0.02")),
        Tier(D(1_000_000), D("0.015")),
        Tier(D(10_000_000), D("0.01")),
        Tier(None, D("0.008")),  # the configurable custom rate above 10M
    ),
    unit_size=D(1000),
)


def test_graduated_example_from_the_issue_is_30_50():
    line = price_usage(Price(GRADUATED_EXAMPLE), D(2_500_000))
    assert line.amount == D("30.50")
    assert [t.amount for t in line.tiers] == [D("2.00"), D("13.500"), D("15.00")]
    assert [t.quantity for t in line.tiers] == [D(100_000), D(900_000), D(1_500_000)]


def test_graduated_custom_rate_applies_above_ten_million():
    line = price_usage(Price(GRADUATED_EXAMPLE), D(12_000_000))
    # 2 + 13.5 + 90 + 2,000,000 × 0.008 / 1000 = 16
    assert line.amount == D("121.50")
    assert line.tiers[-1].unit_price == D("0.008")


def test_writer_overage_is_priced_after_included_units():
    writer = Price(PerUnit(D("0.02"), unit_size=D(1000)), included_units=D(50_000))
    assert price_usage(writer, D(40_000)).amount == D("0.00")
    line = price_usage(writer, D(175_000))
    assert (line.included_units, line.billable_quantity, line.amount) == (D(50_000), D(125_000), D("2.50"))


def test_package_rounds_blocks_up():
    price = Price(Package(D("5"), D(1000)))
    assert price_usage(price, D(0)).amount == D("0.00")
    assert price_usage(price, D(1)).amount == D("5.00")
    assert price_usage(price, D(1000)).amount == D("5.00")
    assert price_usage(price, D(1001)).amount == D("10.00")


def test_volume_prices_all_units_at_the_tier_reached():
    price = Price(Volume((Tier(D(1000), D("0.10")), Tier(None, D("0.05"), flat_fee=D(1)))))
    assert price_usage(price, D(1000)).amount == D("100.00")
    assert price_usage(price, D(1001)).amount == D("51.05")
    assert price_usage(price, D(0)).amount == D("0.00")


def test_cost_plus_doubles_two_fifty_per_million_to_five():
    price = Price(CostPlus(D(100)))
    line = price_usage(price, D(1_000_000), upstream_cost=D("2.50"))
    assert line.amount == D("5.00")


def test_cost_plus_fee_per_unit_and_included_fraction():
    price = Price(CostPlus(D(20), fee_per_unit=D("0.001"), unit_size=D(1000)), included_units=D(500_000))
    line = price_usage(price, D(1_000_000), upstream_cost=D("10"))
    # half the usage is included: 5 × 1.2 + 500 × 0.001 = 6.5
    assert line.amount == D("6.50")


def test_cost_plus_without_cost_is_an_error_not_zero():
    with pytest.raises(InvalidPriceError, match="upstream cost"):
        price_usage(Price(CostPlus(D(100))), D(10))


def test_minimum_and_maximum_clamp_the_period():
    price = Price(PerUnit(D("0.01")), minimum_amount=D(5), maximum_amount=D(20))
    assert (price_usage(price, D(0)).amount, price_usage(price, D(0)).clamped_to) == (D("5.00"), "minimum")
    assert price_usage(price, D(1000)).amount == D("10.00")
    assert (price_usage(price, D(10**6)).amount, price_usage(price, D(10**6)).clamped_to) == (
        D("20.00"),
        "maximum",
    )


def test_rounding_is_half_up_to_the_minor_unit():
    assert round_line_amount(D("0.125"), "USD") == D("0.13")
    assert round_line_amount(D("0.124999"), "usd") == D("0.12")
    assert round_line_amount(D("2.5"), "JPY") == D("3")
    assert round_line_amount(D("0.0005"), "KWD") == D("0.001")
    with pytest.raises(ConfigurationError):
        round_line_amount(D(1), "dollars")
    with pytest.raises(TypeError):
        round_line_amount(1.5, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: PerUnit(D("0.0000000000001")), "more than 12 decimal places"),
        (lambda: PerUnit(D("-1")), "must not be negative"),
        (lambda: PerUnit(D(1), unit_size=D(0)), "positive"),
        (lambda: Graduated((Tier(D(10), D(1)),)), "last tier"),
        (lambda: Graduated((Tier(D(10), D(1)), Tier(D(5), D(1)), Tier(None, D(1)))), "must increase"),
        (lambda: Graduated(()), "at least one tier"),
        (lambda: Price(PerUnit(D(1)), minimum_amount=D(10), maximum_amount=D(5)), "below minimum"),
        (lambda: Price(PerUnit(D(1)), currency="US"), "ISO 4217"),
        (lambda: PerUnit(0.5), "decimal number"),  # type: ignore[arg-type]
    ],
)
def test_bad_definitions_say_why(build, message):
    with pytest.raises(InvalidPriceError, match=message):
        build()


def test_negative_quantity_is_refused():
    with pytest.raises(InvalidPriceError, match="zero or more"):
        price_usage(Price(PerUnit(D(1))), D(-1))


# --- properties -------------------------------------------------------------------------------

prices = st.decimals(min_value=D(0), max_value=D(100), places=4, allow_nan=False, allow_infinity=False)
bounds = st.lists(st.integers(min_value=1, max_value=5_000), min_size=0, max_size=4, unique=True).map(sorted)


@st.composite
def tier_lists(draw):
    ups = draw(bounds)
    return (*(Tier(D(up), draw(prices)) for up in ups), Tier(None, draw(prices)))


def brute_force_graduated(tiers, quantity):
    """Price unit by unit: unit n (1-based) costs the price of the tier whose range holds n."""
    total = D(0)
    for unit in range(1, quantity + 1):
        for tier in tiers:
            if tier.up_to is None or unit <= tier.up_to:
                total += tier.unit_price
                break
    return total


def brute_force_volume(tiers, quantity):
    for tier in tiers:
        if tier.up_to is None or quantity <= tier.up_to:
            return tier.unit_price * quantity
    raise AssertionError


@given(tier_lists(), st.integers(min_value=0, max_value=6_000))
def test_graduated_matches_brute_force(tiers, quantity):
    line = price_usage(Price(Graduated(tiers)), D(quantity))
    assert line.exact_amount == brute_force_graduated(tiers, quantity)
    assert sum(t.quantity for t in line.tiers) == quantity


@given(tier_lists(), st.integers(min_value=0, max_value=6_000))
def test_volume_matches_brute_force(tiers, quantity):
    line = price_usage(Price(Volume(tiers)), D(quantity))
    assert line.exact_amount == brute_force_volume(tiers, quantity)


@given(tier_lists(), st.lists(st.integers(min_value=0, max_value=2_000), min_size=1, max_size=30))
def test_totals_do_not_depend_on_how_usage_is_split(tiers, parts):
    price = Price(Graduated(tiers, unit_size=D(1000)), included_units=D(700))
    whole = price_usage(price, D(sum(parts)))
    # The same usage arriving as any split (and in any order) sums to the same quantity.
    split_total = sum((D(p) for p in reversed(parts)), D(0))
    assert price_usage(price, split_total) == whole


@given(
    st.decimals(min_value=D("0.000001"), max_value=D("0.01"), places=6),
    st.lists(st.integers(min_value=1, max_value=10_000), min_size=2, max_size=20),
)
def test_rounding_happens_once_per_line(unit_price, quantities):
    price = Price(PerUnit(unit_price))
    line = price_usage(price, D(sum(quantities)))
    exact = sum((D(q) * unit_price for q in quantities), D(0))
    assert line.exact_amount == exact
    assert line.amount == round_line_amount(exact, "USD")
    # Rounding per event would drift; the line never does it (it is at most half a cent off exact).
    assert abs(line.amount - exact) <= D("0.005")
