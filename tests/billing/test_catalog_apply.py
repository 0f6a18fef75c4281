"""Catalog as code: apply creates, updates, is idempotent, dry-runs without writing, and is safe for
plans that have subscribers."""

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from spanledger.billing.catalog import (
    Action,
    CatalogError,
    apply_catalog,
    load_catalog_file,
    parse_catalog,
    plan_from_json,
)
from spanledger.billing.customers import create_customer
from spanledger.billing.errors import ConflictError
from spanledger.billing.models import CreditMeter, CreditPackRecord, Meter, PlanRecord, PriceOverrideRecord
from spanledger.billing.subscriptions.service import subscribe

EXAMPLE = Path(__file__).parents[2] / "examples" / "catalog.yaml"

BASE = {
    "meters": [{"name": "tokens", "aggregation": "sum", "field": "total_tokens"}],
    "credit_meters": [{"meter": "tokens", "units_per_credit": 1000}],
    "plans": [
        {
            "code": "writer",
            "name": "Writer",
            "base_fee": 29,
            "prices": [
                {
                    "meter": "tokens",
                    "model": "per_unit",
                    "unit_price": 0.02,
                    "unit_size": 1000,
                    "included_units": 50000,
                },
            ],
        }
    ],
    "credit_packs": [
        {"code": "starter", "name": "Starter", "meter": "tokens", "credits": 10000, "price": 29}
    ],
    "price_overrides": [
        {
            "provider": "vllm",
            "model": "llama-70b",
            "valid_from": "2026-01-01",
            "input_per_million": 0.2,
            "output_per_million": 0.6,
        },
    ],
}


def actions(diff):
    return {(c.kind, c.name): c.action for c in diff.changes}


def test_first_apply_creates_everything_and_the_second_changes_nothing(session):
    catalog = parse_catalog(BASE)
    first = apply_catalog(session, catalog)
    session.commit()
    assert actions(first) == {
        ("meter", "tokens"): Action.CREATED,
        ("credit_meter", "tokens"): Action.CREATED,
        ("plan", "writer"): Action.CREATED,
        ("price", "writer/tokens"): Action.CREATED,
        ("credit_pack", "starter"): Action.CREATED,
        ("price_override", "vllm/llama-70b@2026-01-01"): Action.CREATED,
    }
    stored = session.scalar(select(PlanRecord).where(PlanRecord.code == "writer"))
    assert plan_from_json(stored.definition) == catalog.plans[0]
    assert session.scalar(select(CreditMeter.units_per_credit)) == Decimal(1000)
    assert session.scalar(select(PriceOverrideRecord.input_per_million)) == Decimal("0.2")

    second = apply_catalog(session, parse_catalog(BASE))
    assert not second.changed
    assert set(actions(second).values()) == {Action.UNCHANGED}
    assert second.summary().startswith("Nothing to change")


def test_dry_run_reports_the_diff_and_writes_nothing(session):
    diff = apply_catalog(session, parse_catalog(BASE), dry_run=True)
    assert diff.count(Action.CREATED) == 6
    assert "dry run" in diff.summary()
    for table in (Meter, PlanRecord, CreditPackRecord, CreditMeter, PriceOverrideRecord):
        assert session.scalar(select(func.count()).select_from(table)) == 0


def test_changed_price_is_updated_and_named_in_the_diff(session):
    apply_catalog(session, parse_catalog(BASE))
    changed = {
        **BASE,
        "plans": [{**BASE["plans"][0], "prices": [{**BASE["plans"][0]["prices"][0], "unit_price": "0.025"}]}],
    }
    preview = apply_catalog(session, parse_catalog(changed), dry_run=True)
    assert actions(preview)[("price", "writer/tokens")] is Action.UPDATED
    assert "unit_price" in next(c.detail for c in preview.changes if c.kind == "price")
    stored = session.scalar(select(PlanRecord).where(PlanRecord.code == "writer"))
    assert stored.definition["prices"][0]["unit_price"] == "0.02"  # dry run left it alone

    diff = apply_catalog(session, parse_catalog(changed))
    assert actions(diff)[("plan", "writer")] is Action.UPDATED
    session.refresh(stored)
    assert stored.definition["prices"][0]["unit_price"] == "0.025"


def test_plan_with_subscribers_updates_prices_but_refuses_a_new_interval(session):
    apply_catalog(session, parse_catalog(BASE))
    create_customer(session, "acme")
    subscribe(session, "acme", "writer", start=datetime(2026, 11, 1, tzinfo=UTC))
    cheaper = {**BASE, "plans": [{**BASE["plans"][0], "base_fee": 25}]}
    diff = apply_catalog(session, parse_catalog(cheaper))
    plan_change = next(c for c in diff.changes if c.kind == "plan")
    assert plan_change.action is Action.UPDATED
    assert "1 subscription(s) affected" in plan_change.detail

    yearly = {**BASE, "plans": [{**BASE["plans"][0], "interval": "year"}]}
    with pytest.raises(ConflictError, match=r"plans\[0\]\.interval"):
        apply_catalog(session, parse_catalog(yearly), dry_run=True)


def test_unknown_meter_reference_fails_with_its_yaml_path(session):
    bad = {**BASE, "meters": [], "credit_meters": [], "credit_packs": []}
    with pytest.raises(CatalogError, match=r"^plans\[0\]\.prices\[0\]\.meter: no meter named 'tokens'"):
        apply_catalog(session, parse_catalog(bad))
    not_credited = {**BASE, "credit_meters": []}
    with pytest.raises(CatalogError, match=r"^credit_packs\[0\]\.meter: meter 'tokens' is not listed"):
        apply_catalog(session, parse_catalog(not_credited))


def test_the_example_catalog_applies_cleanly_twice(session):
    catalog = load_catalog_file(EXAMPLE)
    assert [p.code for p in catalog.plans] == ["writer", "team", "agency"]
    assert [p.code for p in catalog.credit_packs] == ["starter", "pro", "enterprise"]
    assert apply_catalog(session, catalog).changed
    assert not apply_catalog(session, load_catalog_file(EXAMPLE)).changed


def test_bad_yaml_and_bad_values_name_the_problem(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("plans:\n  - code: [unclosed\n")
    with pytest.raises(CatalogError, match="not valid YAML at line"):
        load_catalog_file(broken)
    bad_value = tmp_path / "bad.yaml"
    bad_value.write_text(
        "plans:\n  - code: x\n    prices:\n      - {meter: t, model: per_unit, unit_price: abc}\n"
    )
    with pytest.raises(CatalogError, match=r"plans\[0\]\.prices\[0\]\.unit_price: 'abc' is not a number"):
        load_catalog_file(bad_value)
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog_file(tmp_path / "missing.yaml")
