"""The billing CLI: apply, prices, plans, subscriptions, credits, costs, margins (``--json``, errors)."""

import json

import pytest
from billing_cli_support import EXAMPLE_CATALOG, cli_json, run_cli


@pytest.fixture
def db(database_url):
    assert run_cli(database_url, "db", "upgrade").exit_code == 0
    return database_url


@pytest.fixture
def catalog_db(db):
    assert run_cli(db, "apply", str(EXAMPLE_CATALOG)).exit_code == 0
    return db


def test_apply_dry_run_then_apply_then_nothing_to_change(db):
    preview = cli_json(db, "apply", str(EXAMPLE_CATALOG), "--dry-run")
    assert preview["dry_run"] and preview["changed"]
    assert {"kind": "plan", "name": "team", "action": "created", "detail": ""} in preview["changes"]
    assert cli_json(db, "plans", "list") == []  # the dry run wrote nothing

    applied = run_cli(db, "apply", str(EXAMPLE_CATALOG))
    assert applied.exit_code == 0 and "applied" in applied.output
    again = run_cli(db, "apply", str(EXAMPLE_CATALOG))
    assert again.exit_code == 0 and "Nothing to change" in again.output


def test_apply_bad_file_prints_the_yaml_path_and_exits_1(db, tmp_path):
    bad = tmp_path / "catalog.yaml"
    bad.write_text("plans:\n  - code: writer\n    base_fee: lots\n")
    result = run_cli(db, "apply", str(bad))
    assert result.exit_code == 1
    assert "Error: plans[0].base_fee: 'lots' is not a number" in result.output


def test_plans_and_prices(catalog_db):
    plans = cli_json(catalog_db, "plans", "list")
    assert [p["code"] for p in plans] == ["agency", "team", "writer"]
    team = cli_json(catalog_db, "plans", "show", "team")
    assert team["base_fee"] == "99" and team["seats"] == {"included": 5, "price_per_seat": "12"}
    prices = cli_json(catalog_db, "prices", "list", "--plan", "writer")
    assert prices == [
        {"plan": "writer", "meter": "tokens", "model": "per_unit", "unit_price": "0.02", "unit_size": "1000",
         "currency": "USD", "included_units": "50000"}
    ]  # fmt: skip
    shown = run_cli(catalog_db, "prices", "show", "writer", "tokens")
    assert shown.exit_code == 0 and "0.02" in shown.output and "50000" in shown.output
    missing = run_cli(catalog_db, "prices", "show", "writer", "images")
    assert missing.exit_code == 1 and "has no price for meter 'images'" in missing.output
    assert run_cli(catalog_db, "plans", "show", "gold").exit_code == 1


def test_subscription_lifecycle(catalog_db):
    assert run_cli(catalog_db, "customers", "create", "acme").exit_code == 0
    created = cli_json(
        catalog_db, "subscriptions", "create", "acme", "writer", "--start", "2024-11-01", "--seats", "3"
    )
    assert (created["plan"], created["seats"]) == ("writer", 3)
    sub = str(created["id"])
    changed = cli_json(catalog_db, "subscriptions", "change", sub, "team", "--at", "2024-11-16")
    assert changed["change_effective_at"] == "2024-11-16T00:00:00Z"
    assert [p["plan"] for p in changed["phases"]] == ["writer", "team"]
    duplicate = run_cli(catalog_db, "subscriptions", "create", "acme", "agency", "--start", "2024-11-20")
    assert duplicate.exit_code == 1 and "already has subscription" in duplicate.output
    canceled = cli_json(catalog_db, "subscriptions", "cancel", sub, "--at", "2024-11-20")
    assert canceled["ends_at"] == "2024-12-01T00:00:00Z"
    listed = cli_json(catalog_db, "subscriptions", "list", "--customer", "acme")
    assert [s["id"] for s in listed] == [created["id"]]
    assert (
        cli_json(catalog_db, "subscriptions", "show", sub)["status"] == "canceled"
    )  # now is after 2024-12-01
    assert run_cli(catalog_db, "subscriptions", "show", "999").exit_code == 1


def test_credits_grant_topup_balance_ledger(catalog_db):
    run_cli(catalog_db, "customers", "create", "acme")
    granted = cli_json(
        catalog_db, "credits", "grant", "acme", "agent-tokens", "500", "--reason", "welcome", "--key", "w1"
    )
    assert granted["balance"] == "500.000000000000"
    repeated = cli_json(catalog_db, "credits", "grant", "acme", "agent-tokens", "500", "--key", "w1")
    assert repeated["entry"] is None and repeated["balance"] == "500.000000000000"
    topped = cli_json(catalog_db, "credits", "topup", "acme", "starter")
    assert topped["balance"] == "10500.000000000000"
    balances = cli_json(catalog_db, "credits", "balance", "acme")
    assert balances == [
        {"customer": "acme", "meter": "agent-tokens", "balance": "10500.000000000000", "unlimited": False}
    ]
    ledger = cli_json(catalog_db, "credits", "ledger", "acme", "agent-tokens")
    assert [(e["kind"], e["source"], e["pack"]) for e in ledger] == [
        ("grant", "one_time", None),
        ("grant", "purchase", "starter"),
    ]
    zero = run_cli(catalog_db, "credits", "grant", "acme", "agent-tokens", "0")
    assert zero.exit_code == 1 and "must add credits" in zero.output
    bad = run_cli(catalog_db, "credits", "grant", "acme", "agent-tokens", "lots")
    assert bad.exit_code == 1 and "'lots' is not a number of credits" in bad.output
    assert "no credit pack 'gold'" in run_cli(catalog_db, "credits", "topup", "acme", "gold").output


def test_costs_reprice_after_an_override_and_margins(catalog_db, tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text(
        json.dumps({"dedupe_key": "e1", "occurred_at": "2026-11-03T10:00:00Z", "customer_external_id": "acme",
                    "provider": "vllm", "request_model": "llama-70b", "input_tokens": 1_000_000,
                    "output_tokens": 500_000}) + "\n"
    )  # fmt: skip
    assert run_cli(catalog_db, "events", "import", str(events)).exit_code == 0
    before = cli_json(catalog_db, "costs", "--by", "model")
    assert before["rows"] == [
        {"key": "llama-70b", "events": 1, "upstream_cost": "0", "unknown_cost_events": 1}
    ]

    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(
        "price_overrides:\n  - {provider: vllm, model: llama-70b, valid_from: 2026-01-01,"
        " input_per_million: 0.2, output_per_million: 0.6}\n"
    )
    assert run_cli(catalog_db, "apply", str(overrides)).exit_code == 0
    after = cli_json(catalog_db, "costs", "--reprice")
    assert after["repriced"] == {"examined": 1, "priced": 1}
    assert after["rows"][0]["upstream_cost"] == "0.500000000000"  # 1M × 0.2/M + 0.5M × 0.6/M

    margins = cli_json(catalog_db, "margins", "--by", "provider")
    assert margins["rows"][0]["key"] == "vllm" and margins["rows"][0]["gross_margin"] == "-0.500000000000"
    negative = cli_json(catalog_db, "margins", "--negative")
    assert [r["key"] for r in negative["rows"]] == ["acme"]
    assert "n/a" in run_cli(catalog_db, "margins", "--by", "month").output
    bad = run_cli(catalog_db, "margins", "--by", "planet")
    assert bad.exit_code == 1 and "cannot group margins by 'planet'" in bad.output
