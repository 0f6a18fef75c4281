from decimal import Decimal as D

import pytest
import yaml

from spanledger.billing.catalog.schema import (
    CatalogError,
    parse_catalog,
    plan_from_json,
    plan_to_json,
    price_from_json,
    price_to_json,
)
from spanledger.billing.pricing import price_usage

CATALOG = """
meters:
  - name: tokens
    aggregation: sum
    field: total_tokens
credit_meters:
  - meter: tokens
    units_per_credit: 1000
plans:
  - code: writer
    name: Writer
    base_fee: 29
    prices:
      - meter: tokens
        model: per_unit
        unit_price: 0.02
        unit_size: 1000
        included_units: 50000
  - code: growth
    name: Growth
    base_fee: 0
    prices:
      - meter: tokens
        model: graduated
        unit_size: 1000
        tiers:
          - {up_to: 100000, unit_price: 0.02}
          - {up_to: 1000000, unit_price: 0.015}
          - {up_to: 10000000, unit_price: 0.01}
          - {up_to: null, unit_price: "0.008"}
credit_packs:
  - {code: starter, name: Starter, meter: tokens, credits: 10000, price: 29}
  - {code: enterprise, name: Enterprise, meter: tokens, credits: unlimited, price: 999, valid_days: 30}
price_overrides:
  - provider: vllm
    model: llama-70b
    valid_from: 2026-01-01
    input_per_million: 0.2
    output_per_million: 0.6
"""


def test_catalog_reads_yaml_floats_as_exact_decimals():
    catalog = parse_catalog(yaml.safe_load(CATALOG))
    growth = catalog.plans[1]
    assert price_usage(growth.price_for("tokens"), D(2_500_000)).amount == D("30.50")
    assert catalog.plans[0].price_for("tokens").model.unit_price == D("0.02")
    assert catalog.credit_packs[1].unlimited
    assert catalog.credit_meters[0].units_per_credit == D(1000)
    assert catalog.price_overrides[0].input_per_million == D("0.2")


def test_plans_and_prices_round_trip_through_json():
    catalog = parse_catalog(yaml.safe_load(CATALOG))
    for plan in catalog.plans:
        assert plan_from_json(plan_to_json(plan)) == plan
        for plan_price in plan.prices:
            assert price_from_json(price_to_json(plan_price.price)) == plan_price.price


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"plans": [{"code": "x", "prices": [{"meter": "t", "model": "flat"}]}]},
            r"plans\[0\]\.prices\[0\]\.model",
        ),
        (
            {"plans": [{"code": "x", "prices": [{"meter": "t", "model": "per_unit", "unit_price": "abc"}]}]},
            r"plans\[0\]\.prices\[0\]\.unit_price: 'abc' is not a number",
        ),
        ({"plans": [{"code": "x", "base_fee": 1, "colour": "red"}]}, r"plans\[0\]: unknown key\(s\) colour"),
        (
            {"credit_packs": [{"code": "p", "meter": "t", "credits": None, "price": 1}]},
            r"credit_packs\[0\]: .*valid_days",
        ),
        ({"meters": [{"name": "m", "aggregation": "median"}]}, r"meters\[0\]"),
        ({"plans": [{"code": "a"}, {"code": "a"}]}, r"plans\[1\]\.code: 'a' is declared twice"),
        (
            {
                "price_overrides": [
                    {"provider": "p", "model": "m", "input_per_million": 1, "output_per_million": 1}
                ]
            },
            r"price_overrides\[0\]\.valid_from",
        ),
        ({"stuff": []}, r"catalog: unknown key"),
    ],
)
def test_bad_catalog_errors_carry_their_yaml_path(document, message):
    with pytest.raises(CatalogError, match=message):
        parse_catalog(document)
