"""``credits grant --at`` and ``credits topup --at``: a grant or purchase dated after a finalized month
(the month's invoice finalized before it ends), refused inside it with the date to pass instead."""

from __future__ import annotations

import pytest
from billing_cli_support import EXAMPLE_CATALOG, cli_json, run_cli


@pytest.fixture
def november_finalized(database_url) -> str:
    """acme on writer since November 1; its November invoice finalized."""
    for command in (
        ("db", "upgrade"),
        ("apply", str(EXAMPLE_CATALOG)),
        ("customers", "create", "acme"),
        ("subscriptions", "create", "acme", "writer", "--start", "2026-11-01"),
        ("invoices", "run", "--period", "2026-11"),
    ):
        assert run_cli(database_url, *command).exit_code == 0, command
    [invoice] = cli_json(database_url, "invoices", "list")
    assert run_cli(database_url, "invoices", "finalize", str(invoice["id"])).exit_code == 0
    return database_url


def _ledger(url: str) -> list[tuple[str, str, str]]:
    entries = cli_json(url, "credits", "ledger", "acme", "agent-tokens")
    return [(e["kind"], e["amount"], e["occurred_at"]) for e in entries]


def test_grant_and_topup_inside_the_finalized_month_are_refused_with_the_date_to_pass(november_finalized):
    url = november_finalized
    grant = run_cli(url, "credits", "grant", "acme", "agent-tokens", "500", "--at", "2026-11-20")
    topup = run_cli(url, "credits", "topup", "acme", "starter", "--at", "2026-11-30T23:59:59Z")
    for result in (grant, topup):
        assert result.exit_code == 1
        assert "the earliest allowed date is 2026-12-01; pass --at 2026-12-01 (or later)" in result.output
    assert "granting 500 credits to 'acme' at 2026-11-20 would change what invoice" in grant.output
    assert "buying pack 'starter' for 'acme' at 2026-11-30T23:59:59Z" in topup.output
    assert _ledger(url) == []


def test_grant_and_topup_dated_after_the_finalized_month_are_recorded_then(november_finalized):
    url = november_finalized
    granted = cli_json(url, "credits", "grant", "acme", "agent-tokens", "500", "--at", "2026-12-01")
    assert granted["entry"]["occurred_at"] == "2026-12-01T00:00:00Z"
    topped = cli_json(url, "credits", "topup", "acme", "starter", "--at", "2026-12-01T09:30:00+01:00")
    assert topped["entry"]["occurred_at"] == "2026-12-01T08:30:00Z"  # UTC
    assert _ledger(url) == [
        ("grant", "500.000000000000", "2026-12-01T00:00:00Z"),
        ("grant", "10000.000000000000", "2026-12-01T08:30:00Z"),
    ]
    # The pack is billed on December's invoice, the finalized November one is untouched.
    assert run_cli(url, "invoices", "run", "--period", "2026-12").exit_code == 0
    invoices = {i["period"]: i for i in cli_json(url, "invoices", "list")}
    december = cli_json(url, "invoices", "show", str(invoices["2026-12"]["id"]))
    assert [line["description"] for line in december["lines"] if line["kind"] == "credit_pack"] == [
        "Credit pack Starter"
    ]
    assert invoices["2026-11"]["status"] == "finalized"


def test_bad_at_and_an_expiry_before_it_are_refused(november_finalized):
    url = november_finalized
    bad = run_cli(url, "credits", "grant", "acme", "agent-tokens", "500", "--at", "soon")
    assert bad.exit_code == 1
    assert "--at 'soon' is not a date (2026-11-01) or an ISO 8601 time" in bad.output
    assert run_cli(url, "credits", "topup", "acme", "starter", "--at", "2026-13-01").exit_code == 1
    grant = ("credits", "grant", "acme", "agent-tokens", "500")
    early = run_cli(url, *grant, "--at", "2026-12-10", "--expires", "2026-12-10")
    assert early.exit_code == 1
    assert "a grant must expire after it takes effect (2026-12-10), not at 2026-12-10" in early.output
    assert _ledger(url) == []
